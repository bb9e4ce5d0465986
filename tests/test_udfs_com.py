"""Built-in ``CoMUDF`` against a NumPy reference, hand-computed corrections and LiberTEM 0.16's numbers."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.errors import UDFDefinitionError
from gpuudf.executors import InlineExecutor
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs.com import (
    CoMParams,
    CoMUDF,
    GuessResult,
    RegressionOptions,
    apply_correction,
    coordinate_check,
    guess_corrections,
)

LoadFn = Callable[..., DataSet]
Array = np.ndarray[Any, Any]

REFERENCE_FILE = Path(__file__).parent / "data" / "com_libertem_reference.npz"
NAV = (5, 7)
SIG = (9, 11)
NAV_RESULTS = ("raw_com", "raw_shifts", "field", "field_y", "field_x", "magnitude", "divergence", "curl")
ALL_RESULTS = {*NAV_RESULTS, "regression"}


# ---------------------------------------------------------------- reference and data


def reference_com(
    data: Array,
    *,
    cy: float | None = None,
    cx: float | None = None,
    r: float = math.inf,
    ri: float = 0.0,
    scan_rotation: float = 0.0,
    flip_y: bool = False,
) -> dict[str, Array]:
    """Plain NumPy CoM of a dense (ny, nx, sy, sx) stack: com, shifts and the corrected field (float64)."""
    sy, sx = data.shape[-2:]
    cy = sy // 2 if cy is None else cy
    cx = sx // 2 if cx is None else cx
    yy, xx = np.mgrid[:sy, :sx]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    mask = d2 <= r * r
    if ri > 0:
        mask &= d2 > ri * ri
    frames = data.astype(np.float64)
    total = np.einsum("abyx,yx->ab", frames, mask)
    safe = np.where(total != 0, total, 1.0)
    com_y = np.where(total != 0, np.einsum("abyx,yx->ab", frames, mask * yy) / safe, cy)
    com_x = np.where(total != 0, np.einsum("abyx,yx->ab", frames, mask * xx) / safe, cx)
    dy, dx = com_y - cy, com_x - cx
    flipped = -dy if flip_y else dy
    angle = np.deg2rad(scan_rotation)
    field_y = np.cos(angle) * flipped + np.sin(angle) * dx
    field_x = -np.sin(angle) * flipped + np.cos(angle) * dx
    return {
        "raw_com": np.stack([com_y, com_x], axis=-1),
        "raw_shifts": np.stack([dy, dx], axis=-1),
        "field": np.stack([field_y, field_x], axis=-1),
    }


def derived(field: Array) -> dict[str, Array]:
    """field_y/x, magnitude, divergence and curl of a nav-shaped (ny, nx, 2) field."""
    fy, fx = field[..., 0], field[..., 1]
    return {
        "field": field,
        "field_y": fy,
        "field_x": fx,
        "magnitude": np.sqrt(fy**2 + fx**2),
        "divergence": np.gradient(fy, axis=0) + np.gradient(fx, axis=1),
        "curl": np.gradient(fy, axis=1) - np.gradient(fx, axis=0),
    }


def moving_disk(nav: tuple[int, int] = NAV, sig: tuple[int, int] = SIG, dtype: Any = "float32", seed: int = 7) -> Array:
    """A bright disk whose centre moves with the scan (linear descan plus a smooth field), Poisson noise."""
    rng = np.random.default_rng(seed)
    scan_y, scan_x = np.mgrid[: nav[0], : nav[1]]
    centre_y = sig[0] / 2 + 0.3 * scan_y - 0.2 * scan_x + 0.7 * np.sin(scan_x)
    centre_x = sig[1] / 2 - 0.25 * scan_y + 0.15 * scan_x + 0.5 * np.cos(scan_y)
    pix_y, pix_x = np.mgrid[: sig[0], : sig[1]]
    d2 = (pix_y - centre_y[..., None, None]) ** 2 + (pix_x - centre_x[..., None, None]) ** 2
    return rng.poisson(np.where(d2 <= 9.0, 150.0, 2.0)).astype(dtype)


def assert_results_close(res: Any, expected: dict[str, Array], rtol: float = 1e-5, atol: float = 1e-5) -> None:
    for name, value in expected.items():
        assert_allclose(res[name].data, value, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def inline_dataset(data: Array, **kwargs: Any) -> DataSet:
    with gpuudf.Context(executor=InlineExecutor()) as ctx:
        return ctx.load("memory", data=data, **kwargs)


# ---------------------------------------------------------------- against NumPy


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="whole-frame"),
        pytest.param({"cy": 4.5, "cx": 5.25, "r": 3.5}, id="disk"),
        pytest.param({"r": 4.0, "ri": 1.5, "scan_rotation": 33.0, "flip_y": True}, id="annulus-rotated-flipped"),
    ],
)
def test_com_udf_matches_a_numpy_reference_on_every_executor_and_partitioning(
    ctx: gpuudf.Context, load_partitioned: LoadFn, params: dict[str, Any]
) -> None:
    data = moving_disk()
    res = ctx.run_udf(dataset=load_partitioned(data), udf=CoMUDF.with_params(**params))
    assert set(res) == ALL_RESULTS
    expected = reference_com(data, **params)
    expected.update(derived(expected["field"]))
    assert_results_close(res, expected)
    assert_array_equal(res["regression"].data, np.zeros((3, 2)))


def test_result_buffers_have_libertems_kinds_shapes_and_dtypes(ctx: gpuudf.Context) -> None:
    res = ctx.run_udf(dataset=ctx.load("memory", data=moving_disk(dtype="uint16")), udf=CoMUDF())
    shapes = {name: (*NAV, 2) if name in {"raw_com", "raw_shifts", "field"} else NAV for name in NAV_RESULTS}
    for name, shape in shapes.items():
        assert res[name].kind == "nav", name
        assert res[name].use == "result_only", name
        assert res[name].data.shape == shape, name
        assert res[name].dtype == np.float32, name
    assert res["regression"].kind == "single"
    assert res["regression"].data.shape == (3, 2)
    assert res["regression"].dtype == np.float64


@pytest.mark.parametrize(
    ("data_dtype", "result_dtype"),
    [("uint16", "float32"), ("float32", "float32"), ("float64", "float64"), ("int32", "float64")],
)
def test_results_come_in_the_result_type_of_the_data_and_float32(
    ctx: gpuudf.Context, data_dtype: str, result_dtype: str
) -> None:
    data = moving_disk(dtype=data_dtype)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(r=4.0, scan_rotation=-20.0))
    for name in NAV_RESULTS:
        assert res[name].data.dtype == np.dtype(result_dtype), name
    expected = reference_com(data, r=4.0, scan_rotation=-20.0)
    expected.update(derived(expected["field"]))
    tolerance = 1e-5 if result_dtype == "float32" else 1e-10
    assert_results_close(res, expected, rtol=tolerance, atol=tolerance)


def test_the_centre_defaults_to_half_the_frame_size_rounded_down(ctx: gpuudf.Context) -> None:
    for sig in [(9, 11), (8, 6)]:
        res = ctx.run_udf(dataset=ctx.load("memory", data=moving_disk(sig=sig)), udf=CoMUDF())
        centre = res["raw_com"].data - res["raw_shifts"].data
        assert_allclose(centre, np.broadcast_to([sig[0] // 2, sig[1] // 2], centre.shape), atol=1e-5)


def test_an_annulus_leaves_out_the_inner_disk_and_counts_pixels_on_the_outer_border(ctx: gpuudf.Context) -> None:
    data = np.zeros((2, 2, 9, 9), dtype=np.float32)
    data[..., 4, 4] = 100.0  # the centre pixel
    data[..., 4, 7] = 1.0  # on the border of r=3
    data[..., 0, 0] = 1000.0  # outside r=3
    ds = ctx.load("memory", data=data)
    disk = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(r=3.0))["raw_com"].data
    assert_allclose(disk[0, 0], [4.0, 4.0 + 3.0 / 101.0], rtol=1e-6)
    annulus = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(r=3.0, ri=0.5))["raw_com"].data
    assert_allclose(annulus[0, 0], [4.0, 7.0], rtol=1e-6)
    almost_zero = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(r=3.0, ri=1e-12))["raw_com"].data
    assert_allclose(almost_zero, disk)  # as LiberTEM: an ri close to 0 keeps the centre pixel


def test_frames_without_intensity_in_the_mask_have_zero_shift_and_no_warnings(ctx: gpuudf.Context) -> None:
    data = np.zeros((3, 4, 9, 11), dtype=np.uint16)
    data[1:, :, 0, 0] = 50  # only outside the r=2 disk
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(cy=4.0, cx=6.0, r=2.0))
    assert_array_equal(res["raw_shifts"].data, np.zeros((3, 4, 2)))
    assert_array_equal(res["raw_com"].data, np.broadcast_to([4.0, 6.0], (3, 4, 2)))
    for name in ("field", "magnitude", "divergence", "curl"):
        assert_array_equal(res[name].data, 0.0, err_msg=name)


# ---------------------------------------------------------------- corrections


SHIFT = (1, 2)  # (dy, dx) of the bright pixel from the default centre (4, 5) of a 9x11 frame


@pytest.mark.parametrize(
    ("scan_rotation", "flip_y", "expected"),
    [
        pytest.param(0.0, False, (1.0, 2.0), id="none"),
        pytest.param(90.0, False, (2.0, -1.0), id="90"),
        pytest.param(-90.0, False, (-2.0, 1.0), id="minus-90"),
        pytest.param(180.0, False, (-1.0, -2.0), id="180"),
        pytest.param(0.0, True, (-1.0, 2.0), id="flip"),
        pytest.param(90.0, True, (2.0, 1.0), id="flip-then-90"),
        pytest.param(30.0, False, (math.sqrt(3) / 2 + 1.0, -0.5 + math.sqrt(3)), id="30"),
    ],
)
def test_scan_rotation_and_flip_y_transform_the_shift_as_computed_by_hand(
    ctx: gpuudf.Context, scan_rotation: float, flip_y: bool, expected: tuple[float, float]
) -> None:
    data = np.zeros((2, 3, 9, 11), dtype=np.float32)
    data[..., 4 + SHIFT[0], 5 + SHIFT[1]] = 7.0
    udf = CoMUDF.with_params(scan_rotation=scan_rotation, flip_y=flip_y)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=udf)
    assert_allclose(res["raw_shifts"].data, np.broadcast_to(SHIFT, (2, 3, 2)), atol=1e-6)
    assert_allclose(res["field"].data, np.broadcast_to(expected, (2, 3, 2)), atol=1e-6)
    assert_allclose(res["field_y"].data, expected[0], atol=1e-6)
    assert_allclose(res["field_x"].data, expected[1], atol=1e-6)
    assert_allclose(res["magnitude"].data, math.sqrt(5.0), rtol=1e-6)


def test_apply_correction_backward_undoes_forward() -> None:
    rng = np.random.default_rng(3)
    y, x = rng.normal(size=(2, 4, 5))
    fy, fx = apply_correction(y, x, scan_rotation=37.0, flip_y=True)
    by, bx = apply_correction(fy, fx, scan_rotation=37.0, flip_y=True, forward=False)
    assert fy.shape == (4, 5)
    assert_allclose(by, y, atol=1e-12)
    assert_allclose(bx, x, atol=1e-12)


def plane_fit(field: Array, valid: Array) -> Array:
    y, x = np.nonzero(valid)
    design = np.stack([np.ones(len(y)), y, x], axis=-1)
    coefficients: Array = np.linalg.lstsq(design, field[valid], rcond=None)[0]
    return coefficients


def plane(coefficients: Array, nav: tuple[int, int]) -> Array:
    y, x = np.indices(nav)
    return coefficients[0] + y[..., None] * coefficients[1] + x[..., None] * coefficients[2]


EXPLICIT = np.array([[0.5, -0.25], [0.1, 0.0], [0.0, -0.05]])


@pytest.mark.parametrize(
    "regression",
    [
        pytest.param(RegressionOptions.NO_REGRESSION, id="no-regression"),
        pytest.param(RegressionOptions.SUBTRACT_MEAN, id="subtract-mean"),
        pytest.param(RegressionOptions.SUBTRACT_LINEAR, id="subtract-linear"),
        pytest.param(1, id="subtract-linear-as-int"),
        pytest.param(EXPLICIT, id="explicit-array"),
    ],
)
def test_each_regression_option_subtracts_what_it_fits_from_the_field(ctx: gpuudf.Context, regression: Any) -> None:
    data = moving_disk()
    udf = CoMUDF.with_params(scan_rotation=15.0, regression=regression)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=udf)
    raw = reference_com(data, scan_rotation=15.0)
    field = raw["field"]
    if isinstance(regression, np.ndarray):
        expected_regression = regression
    elif regression == RegressionOptions.NO_REGRESSION:
        expected_regression = np.zeros((3, 2))
    elif regression == RegressionOptions.SUBTRACT_MEAN:
        expected_regression = np.zeros((3, 2))
        expected_regression[0] = field.reshape(-1, 2).mean(axis=0)
    else:
        expected_regression = plane_fit(field, np.ones(NAV, dtype=bool))
    assert_allclose(res["regression"].data, expected_regression, rtol=1e-5, atol=1e-6)
    expected = {"raw_com": raw["raw_com"], "raw_shifts": raw["raw_shifts"]}
    expected.update(derived(field - plane(expected_regression, NAV)))
    assert_results_close(res, expected)


def test_a_linear_regression_removes_a_pure_descan_entirely(ctx: gpuudf.Context) -> None:
    nav = (6, 8)
    data = np.zeros((*nav, 16, 16), dtype=np.float32)
    for iy, ix in np.ndindex(nav):
        data[iy, ix, 4 + iy, 2 + ix] = 1.0  # the shift grows by one pixel per scan step
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(regression=1))
    assert_allclose(res["regression"].data, [[-4.0, -6.0], [1.0, 0.0], [0.0, 1.0]], atol=1e-10)
    assert_allclose(res["field"].data, 0.0, atol=1e-5)
    mean = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(regression=0))
    assert_allclose(mean["field"].data.reshape(-1, 2).mean(axis=0), 0.0, atol=1e-5)


# ---------------------------------------------------------------- ROI and partial results


def test_a_roi_selects_frames_fits_the_regression_on_them_and_makes_gradients_next_to_others_nan(
    ctx: gpuudf.Context,
) -> None:
    data = moving_disk()
    roi = np.zeros(NAV, dtype=bool)
    roi[1:5, 1:7] = True
    roi[2, 3] = False
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(regression=1), roi=roi)
    raw = reference_com(data)
    field = np.where(roi[..., None], raw["field"], np.nan)
    coefficients = plane_fit(field, roi)
    assert_allclose(res["regression"].data, coefficients, rtol=1e-5, atol=1e-6)
    expected = {"raw_com": raw["raw_com"], "raw_shifts": raw["raw_shifts"]}
    expected.update(derived(field - plane(coefficients, NAV)))
    expected = {name: np.where(roi.reshape(*NAV, *(1,) * (v.ndim - 2)), v, np.nan) for name, v in expected.items()}
    assert_results_close(res, expected)
    divergence = res["divergence"].data
    assert np.isnan(divergence[~roi]).all()
    assert np.isnan(divergence[2, 2])  # next to the hole
    assert np.isnan(divergence[1, 3])
    assert np.isfinite(divergence[3, 5])
    assert res["raw_com"].raw_data.shape == (int(roi.sum()), 2)
    assert_array_equal(res["field"].valid_mask, np.broadcast_to(roi[..., None], (*NAV, 2)))


def test_partial_results_hold_nan_for_frames_not_merged_yet(ctx: gpuudf.Context) -> None:
    data = moving_disk()
    ds = ctx.load("memory", data=data, num_partitions=3)
    udf = CoMUDF.with_params(regression=0)
    steps = 0
    for step in ctx.run_udf_iter(dataset=ds, udf=udf):
        merged = step.damage.data
        field = step.buffers[0]["field"].data
        assert np.isfinite(field[merged]).all()
        assert np.isnan(field[~merged]).all()
        steps += 1
    assert steps == 3
    final = ctx.run_udf(dataset=ds, udf=udf)
    assert_allclose(np.asarray(field), final["field"].data)


def test_a_scan_line_of_one_row_gives_nan_divergence_and_curl(ctx: gpuudf.Context) -> None:
    data = moving_disk(nav=(1, 6))
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF())
    assert_allclose(res["raw_com"].data, reference_com(data)["raw_com"], rtol=1e-5)
    assert np.isnan(res["divergence"].data).all()
    assert np.isnan(res["curl"].data).all()


# ---------------------------------------------------------------- devices


@pytest.mark.parametrize(
    ("params", "with_roi"),
    [
        pytest.param({}, False, id="defaults"),
        pytest.param({"r": 4.0, "ri": 1.0, "scan_rotation": 45.0, "flip_y": True, "regression": 1}, True, id="all"),
    ],
)
def test_the_cpu_and_the_simulated_device_agree(params: dict[str, Any], with_roi: bool) -> None:
    data = moving_disk(dtype="uint16")
    roi = None
    if with_roi:
        roi = np.ones(NAV, dtype=bool)
        roi[0, :3] = False
    results = assert_backends_agree(CoMUDF.with_params(**params), inline_dataset(data, num_partitions=2), roi=roi)
    assert {"cpu", "sim:0"} <= set(results)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        pytest.param({"r": 0.0}, "r", id="r-zero"),
        pytest.param({"r": -2.0}, "r", id="r-negative"),
        pytest.param({"r": math.nan}, "r", id="r-nan"),
        pytest.param({"ri": -1.0}, "ri", id="ri-negative"),
        pytest.param({"r": 3.0, "ri": 3.0}, "ri", id="ri-equal-r"),
        pytest.param({"r": 3.0, "ri": 5.0}, "ri", id="ri-above-r"),
        pytest.param({"ri": math.nan}, "ri", id="ri-nan"),
        pytest.param({"scan_rotation": math.inf}, "scan_rotation", id="scan-rotation-inf"),
        pytest.param({"scan_rotation": math.nan}, "scan_rotation", id="scan-rotation-nan"),
        pytest.param({"cy": math.nan}, "cy", id="cy-nan"),
        pytest.param({"cx": math.inf}, "cx", id="cx-inf"),
        pytest.param({"flip_y": "yes"}, "flip_y", id="flip-y-string"),
        pytest.param({"regression": 2}, "regression", id="regression-unknown-order"),
        pytest.param({"regression": np.zeros((2, 2))}, "regression", id="regression-wrong-shape"),
    ],
)
def test_bad_parameters_raise_a_value_error_naming_them_when_the_udf_is_made(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(UDFDefinitionError, match=rf"parameter {name}\b"):
        CoMUDF.with_params(**kwargs)
    with pytest.raises(ValueError, match=rf"parameter {name}\b"):
        CoMUDF(CoMParams(**kwargs))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        pytest.param({"cy": -1.0}, "cy", id="cy-above"),
        pytest.param({"cy": 8.5}, "cy", id="cy-below"),
        pytest.param({"cx": 11.0}, "cx", id="cx-right"),
        pytest.param({"cx": -0.01}, "cx", id="cx-left"),
    ],
)
def test_a_centre_outside_the_frame_fails_at_the_start_of_the_run_naming_it(
    ctx: gpuudf.Context, kwargs: dict[str, Any], name: str
) -> None:
    ds = ctx.load("memory", data=moving_disk())
    udf = CoMUDF.with_params(**kwargs)
    with pytest.raises(UDFDefinitionError, match=rf"parameter {name}=.* outside the frame"):
        ctx.run_udf(dataset=ds, udf=udf)
    with pytest.raises(UDFDefinitionError, match=rf"parameter {name}="):
        ctx.display(ds, udf)  # no frame read: the check runs when the buffers are declared


@pytest.mark.parametrize(
    ("shape", "sig_dims", "message"),
    [
        pytest.param((4, 5, 6), 1, "2D frames", id="1d-frames"),
        pytest.param((2, 3, 4, 5, 6), 2, "2D scan", id="3d-scan"),
    ],
)
def test_other_than_2d_scans_and_frames_fail_at_the_start_of_the_run(
    ctx: gpuudf.Context, shape: tuple[int, ...], sig_dims: int, message: str
) -> None:
    ds = ctx.load("memory", data=np.ones(shape, dtype=np.float32), sig_dims=sig_dims)
    with pytest.raises(UDFDefinitionError, match=message):
        ctx.run_udf(dataset=ds, udf=CoMUDF())


def test_complex_data_fail_at_the_start_of_the_run(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.ones((2, 2, 4, 4), dtype=np.complex64))
    with pytest.raises(UDFDefinitionError, match="real-valued"):
        ctx.run_udf(dataset=ds, udf=CoMUDF())


# ---------------------------------------------------------------- parameters


def test_with_params_has_libertems_defaults_and_the_udf_copies_and_pickles_cleanly() -> None:
    assert CoMUDF().params.com_params == CoMParams()
    assert CoMUDF.with_params().params.com_params == CoMParams(
        cy=None, cx=None, r=math.inf, ri=0.0, scan_rotation=0.0, flip_y=False, regression=-1
    )
    assert [(o.name, o.value) for o in RegressionOptions] == [
        ("NO_REGRESSION", -1),
        ("SUBTRACT_MEAN", 0),
        ("SUBTRACT_LINEAR", 1),
    ]
    udf = CoMUDF.with_params(cy=3.0, cx=4.0, r=5.0, ri=1.0, scan_rotation=10.0, flip_y=True, regression=EXPLICIT)
    assert udf.get_backends() == ("numpy", "cupy")
    for twin in (udf.copy(), pickle.loads(pickle.dumps(udf))):
        assert isinstance(twin, CoMUDF)
        params = twin.params.com_params
        assert params[:6] == (3.0, 4.0, 5.0, 1.0, 10.0, True)
        assert_array_equal(params.regression, EXPLICIT)


# ---------------------------------------------------------------- guessing corrections


def rms_curl_brute_force(y: Array, x: Array, angle: float, flip_y: bool) -> float:
    fy, fx = apply_correction(y, x, scan_rotation=angle, flip_y=flip_y)
    curl = np.gradient(fy, axis=1) - np.gradient(fx, axis=0)
    return float(np.sqrt(np.mean(curl[:-1, :-1] ** 2)))


def test_coordinate_check_gives_the_rms_curl_of_every_whole_degree() -> None:
    rng = np.random.default_rng(5)
    y, x = rng.normal(size=(2, 6, 7))
    straight, flipped = coordinate_check(y, x)
    assert straight.shape == flipped.shape == (360,)
    for angle in (0, 1, 45, 179, 300):
        assert straight[angle] == pytest.approx(rms_curl_brute_force(y, x, angle, flip_y=False), rel=1e-9)
        assert flipped[angle] == pytest.approx(rms_curl_brute_force(y, x, angle, flip_y=True), rel=1e-9)


@pytest.mark.parametrize(("scan_rotation", "flip_y"), [(0, False), (-60, False), (135, True), (180, True)])
def test_guess_corrections_recovers_the_rotation_and_flip_of_an_electrostatic_field(
    scan_rotation: int, flip_y: bool
) -> None:
    # atoms as Gaussian potential peaks; the beam is deflected up the potential: shift = grad V
    yy, xx = np.mgrid[:24, :24].astype(np.float64)
    potential = sum(
        np.exp(-((yy - ay) ** 2 + (xx - ax) ** 2) / 3.0)
        for ay in (3.3, 9.1, 15.2, 20.9)
        for ax in (2.8, 9.4, 14.7, 21.1)
    )
    field_y, field_x = np.gradient(potential)
    # what the detector sees: the inverse of the correction, plus a centre offset
    angle = np.deg2rad(scan_rotation)
    cos, sin = np.cos(angle), np.sin(angle)
    det_y = cos * field_y - sin * field_x
    det_x = sin * field_y + cos * field_x
    if flip_y:
        det_y = -det_y
    guess = guess_corrections(det_y + 7.0, det_x + 8.0)
    assert isinstance(guess, GuessResult)
    assert guess.scan_rotation == scan_rotation
    assert guess.flip_y is flip_y
    assert guess.cy == pytest.approx(np.mean((det_y + 7.0)[:-1, :-1]))
    assert guess.cx == pytest.approx(np.mean((det_x + 8.0)[:-1, :-1]))
    udf = CoMUDF.with_params(**guess._asdict())
    assert udf.params.com_params.scan_rotation == scan_rotation


# ---------------------------------------------------------------- LiberTEM 0.16


def libertem_reference() -> tuple[Any, dict[str, dict[str, Any]]]:
    stored = np.load(REFERENCE_FILE)
    return stored, json.loads(str(stored["cases"]))


LIBERTEM_CASES = list(libertem_reference()[1])


@pytest.mark.parametrize("case", LIBERTEM_CASES)
def test_results_match_libertem_0_16(ctx: gpuudf.Context, case: str) -> None:
    stored, cases = libertem_reference()
    params = dict(cases[case]["params"])
    if isinstance(params.get("regression"), list):
        params["regression"] = np.array(params["regression"])
    roi = None if cases[case]["roi"] is None else stored["roi"]
    res = ctx.run_udf(dataset=ctx.load("memory", data=stored["data"]), udf=CoMUDF.with_params(**params), roi=roi)
    for name in ALL_RESULTS:
        expected = stored[f"{case}__{name}"]
        assert res[name].data.shape == expected.shape, name
        assert_array_equal(np.isnan(res[name].data), np.isnan(expected), err_msg=name)
        assert_allclose(res[name].data, expected, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=name)


def test_guess_corrections_matches_libertem_0_16() -> None:
    stored, _ = libertem_reference()
    com = stored["default__raw_com"]
    guess = guess_corrections(com[..., 0], com[..., 1])
    scan_rotation, flip_y, cy, cx = stored["guess"]
    assert guess.scan_rotation == int(scan_rotation)
    assert guess.flip_y is bool(flip_y)
    assert guess.cy == pytest.approx(cy, rel=1e-6)
    assert guess.cx == pytest.approx(cx, rel=1e-6)
