"""Built-in ``FEMUDF`` against NumPy: the standard deviation in a ring, per frame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs.fem import FEMUDF, ring_mask, run_fem
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


def numpy_ring(sig_shape: tuple[int, int], row: float, column: float, rad_in: float, rad_out: float) -> Any:
    """LiberTEM's ring, written out: ``rad_in**2 < d2 <= rad_out**2`` around ``(row, column)``."""
    rows, columns = np.mgrid[: sig_shape[0], : sig_shape[1]]
    d2 = (rows - row) ** 2 + (columns - column) ** 2
    return (d2 > rad_in**2) & (d2 <= rad_out**2)


def numpy_fem(data: np.ndarray[Any, Any], ring: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return data[..., ring].astype(np.float64).std(axis=-1)


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_fem_is_the_standard_deviation_of_the_ring_pixels_of_each_frame(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, data_dtype: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype=data_dtype, high=1000)
    udf = FEMUDF(center=(3.5, 6.25), rad_in=1.5, rad_out=4)
    result = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    assert set(result) == {"intensity"}
    intensity = result["intensity"]
    assert intensity.kind == "nav"
    assert intensity.dtype == np.float32
    assert intensity.data.shape == NAV_SHAPE
    assert_allclose(intensity.data, numpy_fem(data, numpy_ring(SIG_SHAPE, 3.5, 6.25, 1.5, 4)), rtol=1e-5)


def test_fem_with_a_roi_fills_the_other_frames_with_nan(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[1:4, ::3] = True
    dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
    result = run_fem(ctx, dataset, center=(4, 5), rad_in=0, rad_out=3, roi=roi)
    expected = np.where(roi, numpy_fem(data, numpy_ring(SIG_SHAPE, 4, 5, 0, 3)), np.nan)
    assert_allclose(result["intensity"].data, expected, rtol=1e-5)
    assert_array_equal(result["intensity"].valid_mask, roi)


def test_fem_center_is_row_then_column_as_libertems_code_measures_it() -> None:
    frame = np.zeros((9, 15), dtype=np.float32)
    frame[2, 7] = 8.0  # on the ring around (row 2, column 4), far from one around (row 4, column 2)
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=frame[np.newaxis], sig_dims=2)
        (std,) = ctx.run_udf(dataset=dataset, udf=FEMUDF(center=(2, 4), rad_in=2, rad_out=3))["intensity"].data
    ring = numpy_ring((9, 15), 2, 4, 2, 3)
    assert ring[2, 7]
    assert std == pytest.approx(frame[ring].std())
    assert std > 0


def test_ring_mask_leaves_out_the_inner_radius_and_keeps_the_outer_one() -> None:
    mask = ring_mask((7, 7), (3, 3), 1, 2)
    assert_array_equal(mask, numpy_ring((7, 7), 3, 3, 1, 2))
    assert not mask[3, 3]
    assert not mask[3, 4]  # at rad_in
    assert mask[3, 5]  # at rad_out
    assert not mask[3, 6]


def test_fem_gives_the_same_results_on_every_backend(random_counts: CountsFn) -> None:
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[::2] = True
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=random_counts(DATA_SHAPE, dtype="float32"), sig_dims=2, num_partitions=3)
    assert_backends_agree(FEMUDF(center=(4, 5), rad_in=1, rad_out=4), dataset)
    assert_backends_agree(FEMUDF(center=(4, 5), rad_in=1, rad_out=4), dataset, roi=roi)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"center": (1, 2, 3)}, TypeError, r"center must be two numbers .*\(1, 2, 3\)", id="center-3"),
        pytest.param({"center": 5}, TypeError, "center must be two numbers", id="center-scalar"),
        pytest.param({"center": ("a", 1)}, TypeError, "center must be two numbers", id="center-str"),
        pytest.param({"rad_in": "1"}, TypeError, "rad_in must be a number, got '1'", id="rad_in-str"),
        pytest.param({"rad_out": None}, TypeError, "rad_out must be a number, got None", id="rad_out-none"),
        pytest.param({"rad_in": -1}, ValueError, "rad_in must not be negative", id="rad_in-negative"),
        pytest.param({"rad_out": -2.0}, ValueError, "rad_out must not be negative", id="rad_out-negative"),
    ],
)
def test_fem_rejects_a_center_or_radius_that_is_not_a_position_or_length(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {"center": (4, 5), "rad_in": 1, "rad_out": 3, **kwargs}
    with pytest.raises(error, match=message):
        FEMUDF(**arguments)


@pytest.mark.parametrize(
    ("center", "rad_in", "rad_out"),
    [
        pytest.param((4, 5), 3, 3, id="rad_out-equals-rad_in"),
        pytest.param((4, 5), 4, 2, id="rad_out-below-rad_in"),
        pytest.param((100, 100), 1, 3, id="ring-outside-the-frame"),
    ],
)
def test_fem_with_a_ring_of_no_pixel_fails_before_reading_a_frame(
    center: tuple[int, int], rad_in: float, rad_out: float
) -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=np.ones(DATA_SHAPE, dtype=np.float32), sig_dims=2)
        with pytest.raises(gpuudf.UDFDefinitionError, match=r"ring \(center=.*rad_in=.*rad_out=.*\) holds no pixel"):
            ctx.run_udf(dataset=dataset, udf=FEMUDF(center=center, rad_in=rad_in, rad_out=rad_out))


def test_fem_needs_two_dimensional_frames() -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=np.ones((4, 3, 5, 6), dtype=np.float32), sig_dims=3)
        with pytest.raises(gpuudf.UDFDefinitionError, match=r"needs 2-D frames.*\(3, 5, 6\)"):
            ctx.run_udf(dataset=dataset, udf=FEMUDF(center=(2, 2), rad_in=0, rad_out=2))


def test_fem_runs_on_numpy_and_cupy_and_copies_cleanly() -> None:
    udf = FEMUDF(center=np.array([2.5, 3.0]), rad_in=1, rad_out=2.5)
    assert udf.get_backends() == ("numpy", "cupy")
    assert_array_equal(udf.copy().params.center, [2.5, 3.0])
