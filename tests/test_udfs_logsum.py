"""Built-in ``LogsumUDF`` against NumPy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs.logsum import LogsumUDF, run_logsum
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE

LoadFn = Callable[..., DataSet]


def numpy_logsum(frames: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """LiberTEM's definition in float64: the sum over frames of ``log(frame - min(frame) + 1)``."""
    exact = frames.astype(np.float64)
    sig_axes = tuple(range(1, exact.ndim))
    return np.log(exact - exact.min(axis=sig_axes, keepdims=True) + 1).sum(axis=0)


def sample(rng: np.random.Generator, dtype: str) -> np.ndarray[Any, Any]:
    """Counts for uint16; values of both signs for float32 (the per-frame minimum makes every term >= 0)."""
    if dtype == "uint16":
        return rng.integers(0, 4000, size=DATA_SHAPE).astype(np.uint16)
    return (50 * rng.standard_normal(DATA_SHAPE)).astype(np.float32)


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_logsum_is_the_sum_of_log_scaled_frames_shifted_by_their_minimum(
    ctx: gpuudf.Context, load_partitioned: LoadFn, rng: np.random.Generator, data_dtype: str
) -> None:
    data = sample(rng, data_dtype)
    result = ctx.run_udf(dataset=load_partitioned(data), udf=LogsumUDF())
    assert set(result) == {"logsum"}
    logsum = result["logsum"]
    assert logsum.kind == "sig"
    assert logsum.data.shape == SIG_SHAPE
    assert logsum.data.dtype == np.float32
    assert_allclose(logsum.data, numpy_logsum(data.reshape(-1, *SIG_SHAPE)), rtol=1e-5)


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_logsum_with_a_roi_sums_only_the_selected_frames(
    ctx: gpuudf.Context, rng: np.random.Generator, data_dtype: str
) -> None:
    data = sample(rng, data_dtype)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[1:4, ::2] = True
    dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
    result = run_logsum(ctx, dataset, roi=roi)
    assert_allclose(result["logsum"].data, numpy_logsum(data[roi]), rtol=1e-5)


def test_logsum_highlights_what_many_frames_share_over_what_one_frame_has() -> None:
    # LiberTEM's example: one bright pixel in one frame against a slightly brighter pixel in all of them
    frames = np.ones((10, 1, 2), dtype=np.float32)
    frames[:, 0, 0] = 11
    frames[0, 0, 1] = 101
    with gpuudf.Context.make_with("inline") as ctx:
        result = ctx.run_udf(dataset=ctx.load("memory", data=frames, sig_dims=2), udf=LogsumUDF())
    logsum = result["logsum"].data[0]
    assert logsum[0] > logsum[1]
    assert_allclose(logsum, numpy_logsum(frames)[0], rtol=1e-6)


def test_logsum_works_for_frames_of_any_rank(ctx: gpuudf.Context, rng: np.random.Generator) -> None:
    data = rng.integers(0, 100, size=(4, 3, 5, 6)).astype(np.float32)
    result = ctx.run_udf(dataset=ctx.load("memory", data=data, sig_dims=3), udf=LogsumUDF())
    assert_allclose(result["logsum"].data, numpy_logsum(data), rtol=1e-5)


def test_logsum_gives_the_same_results_on_every_backend(rng: np.random.Generator) -> None:
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[:, 2:5] = True
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=sample(rng, "uint16"), sig_dims=2, num_partitions=3)
    assert_backends_agree(LogsumUDF(), dataset)
    assert_backends_agree(LogsumUDF(), dataset, roi=roi)


def test_logsum_refuses_complex_data_before_reading_a_frame() -> None:
    data = np.ones(DATA_SHAPE, dtype=np.complex64)
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=data, sig_dims=2)
        with pytest.raises(gpuudf.UDFDefinitionError, match=r"needs real data.*complex64"):
            ctx.run_udf(dataset=dataset, udf=LogsumUDF())


def test_logsum_runs_on_numpy_and_cupy_and_copies_cleanly() -> None:
    udf = LogsumUDF()
    assert udf.get_backends() == ("numpy", "cupy")
    assert type(udf.copy()) is LogsumUDF
