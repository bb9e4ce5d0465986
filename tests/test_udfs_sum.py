"""Built-in ``SumUDF`` and ``SumSigUDF`` against NumPy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.executors import InlineExecutor
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs import SumSigUDF, SumUDF
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, nav_axes, sig_axes

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


@pytest.mark.parametrize(
    ("data_dtype", "udf_dtype", "result_dtype"),
    [
        pytest.param("uint16", None, "float32", id="uint16-default"),
        pytest.param("uint16", "float64", "float64", id="uint16-float64"),
        pytest.param("uint16", "int64", "int64", id="uint16-int64-exact"),
        pytest.param("float32", None, "float32", id="float32-default"),
        pytest.param("float64", None, "float64", id="float64-keeps-precision"),
        pytest.param("int32", None, "float64", id="int32-default"),
        pytest.param("complex64", None, "complex64", id="complex64"),
    ],
)
@pytest.mark.parametrize("udf_class", [SumUDF, SumSigUDF])
def test_sum_udfs_match_numpy_in_the_expected_dtype(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    udf_class: type[SumUDF | SumSigUDF],
    data_dtype: str,
    udf_dtype: str | None,
    result_dtype: str,
) -> None:
    data = random_counts(DATA_SHAPE, dtype=data_dtype, high=1000)
    udf = udf_class() if udf_dtype is None else udf_class(dtype=udf_dtype)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    assert set(res) == {"intensity"}
    intensity = res["intensity"]
    assert intensity.dtype == np.dtype(result_dtype)
    assert intensity.data.dtype == np.dtype(result_dtype)
    if udf_class is SumUDF:
        assert intensity.kind == "sig"
        expected = data.sum(axis=(0, 1), dtype=np.complex128 if data.dtype.kind == "c" else np.float64)
    else:
        assert intensity.kind == "nav"
        expected = data.sum(axis=(2, 3), dtype=np.complex128 if data.dtype.kind == "c" else np.float64)
    assert_array_equal(intensity.data, expected.astype(result_dtype))


@pytest.mark.parametrize(
    ("nav", "sig"),
    [
        pytest.param((13,), (17,), id="nav1-sig1"),
        pytest.param((3, 2, 5), (9, 11), id="nav3-sig2"),
        pytest.param((5, 7), (3, 4, 5), id="nav2-sig3"),
    ],
)
def test_sum_udfs_work_for_any_rank(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    nav: tuple[int, ...],
    sig: tuple[int, ...],
) -> None:
    data = random_counts((*nav, *sig))
    ds = load_partitioned(data, sig_dims=len(sig))
    total, per_frame = ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF()])
    assert_array_equal(total["intensity"].data, data.sum(axis=nav_axes(data, len(sig))))
    assert_array_equal(per_frame["intensity"].data, data.sum(axis=sig_axes(data, len(sig))))


def test_sum_udfs_respect_the_roi(ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[1:4, ::2] = True
    total, per_frame = ctx.run_udf(dataset=load_partitioned(data), udf=[SumUDF(), SumSigUDF()], roi=roi)
    assert_array_equal(total["intensity"].data, data[roi].sum(axis=0))
    sums = data.sum(axis=(2, 3))
    assert_array_equal(per_frame["intensity"].data, np.where(roi, sums, np.nan))
    assert_array_equal(per_frame["intensity"].raw_data, sums[roi])


@pytest.mark.parametrize("udf_class", [SumUDF, SumSigUDF])
def test_sum_udfs_run_on_numpy_and_cupy_and_copy_cleanly(udf_class: type[SumUDF | SumSigUDF]) -> None:
    udf = udf_class(dtype="float64")
    assert udf.get_backends() == ("numpy", "cupy")
    twin = udf.copy()
    assert type(twin) is udf_class
    assert twin.params.dtype == "float64"


@pytest.mark.parametrize("udf", [SumUDF(), SumSigUDF(), SumUDF(dtype="float64")], ids=repr)
def test_sum_udfs_agree_on_the_cpu_and_the_simulated_gpu(random_counts: CountsFn, udf: SumUDF | SumSigUDF) -> None:
    with gpuudf.Context(executor=InlineExecutor()) as ctx:
        dataset = ctx.load("memory", data=random_counts(DATA_SHAPE, dtype="uint16", high=1000), num_partitions=3)
        assert_backends_agree(udf, dataset)
