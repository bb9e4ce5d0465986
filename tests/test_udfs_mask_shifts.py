"""``ApplyMasksUDF(shifts=...)``: masks moved against each frame, as LiberTEM defines it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gpuudf
from gpuudf import masks
from gpuudf.errors import UDFDefinitionError
from gpuudf.executors import InlineExecutor
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs import ApplyMasksUDF
from gpuudf.udfs.mask_shifts import overlap_windows
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE

CountsFn = Callable[..., np.ndarray[Any, Any]]


def detector_masks() -> np.ndarray[Any, Any]:
    return np.stack(
        [masks.bright_field(SIG_SHAPE, (4.0, 5.0), 2.5), masks.annular_dark_field(SIG_SHAPE, (4.0, 5.0), 2.5, 5)]
    )


def shifted_with_numpy(
    data: np.ndarray[Any, Any], stack: np.ndarray[Any, Any], shifts: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The reference, pixel by pixel: ``sum(frame[p] * mask[p - shift])`` where both exist."""
    frames = data.reshape(-1, *SIG_SHAPE).astype(np.float64)
    per_frame = np.broadcast_to(shifts, (len(frames), 2))
    result = np.zeros((len(frames), len(stack)))
    for index, (frame, (sy, sx)) in enumerate(zip(frames, per_frame.astype(int), strict=True)):
        for y in range(SIG_SHAPE[0]):
            for x in range(SIG_SHAPE[1]):
                my, mx = y - sy, x - sx
                if 0 <= my < SIG_SHAPE[0] and 0 <= mx < SIG_SHAPE[1]:
                    result[index] += frame[y, x] * stack[:, my, mx]
    return result.reshape(*data.shape[:-2], len(stack))


def per_frame_shifts(seed: int = 5) -> np.ndarray[Any, Any]:
    """Shifts of -12 to 12 px: some frames keep no overlap with the masks at all."""
    return np.random.default_rng(seed).integers(-12, 13, size=(*NAV_SHAPE, 2))


@pytest.mark.parametrize("shift", [(0, 0), (2, -3), (-4, 1), (9, 0), (0, -11)])
def test_a_constant_shift_moves_every_mask_down_and_right_by_it(
    ctx: gpuudf.Context, random_counts: CountsFn, shift: tuple[int, int]
) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ApplyMasksUDF(detector_masks, shifts=shift))
    assert_allclose(res["intensity"].data, shifted_with_numpy(data, detector_masks(), np.array(shift)), rtol=1e-5)


def test_per_frame_shifts_from_aux_data_move_each_frames_masks(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    shifts = per_frame_shifts()
    aux = ApplyMasksUDF.aux_data(shifts.reshape(-1), kind="nav", extra_shape=(2,), dtype=shifts.dtype)
    res = ctx.run_udf(
        dataset=ctx.load("memory", data=data, num_partitions=3), udf=ApplyMasksUDF(detector_masks, shifts=aux)
    )
    expected = shifted_with_numpy(data, detector_masks(), shifts.reshape(-1, 2))
    assert_allclose(res["intensity"].data, expected, rtol=1e-5, atol=1e-4)
    assert (expected == 0).any(), "some frames should have been shifted out of overlap"


def test_per_frame_shifts_with_a_roi_follow_the_selected_frames(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    shifts = per_frame_shifts(seed=8)
    roi = np.random.default_rng(1).random(NAV_SHAPE) < 0.5
    aux = ApplyMasksUDF.aux_data(shifts, kind="nav", extra_shape=(2,), dtype=int)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ApplyMasksUDF(detector_masks, shifts=aux), roi=roi)
    expected = shifted_with_numpy(data, detector_masks(), shifts.reshape(-1, 2))
    assert_allclose(res["intensity"].data[roi], expected[roi], rtol=1e-5, atol=1e-4)


def test_float_shifts_are_truncated_toward_zero_as_in_libertem(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ApplyMasksUDF(detector_masks, shifts=(1.9, -2.7)))
    assert_allclose(res["intensity"].data, shifted_with_numpy(data, detector_masks(), np.array([1, -2])), rtol=1e-5)


def test_sparse_masks_are_shifted_as_their_dense_selves(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, high=100)
    dataset = ctx.load("memory", data=data)
    dense = ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(detector_masks, shifts=(2, 3)))
    sparse = ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(detector_masks, use_sparse="sparse.pydata", shifts=(2, 3)))
    assert_array_equal(sparse["intensity"].data, dense["intensity"].data)


def test_shifted_masks_agree_on_the_cpu_and_the_simulated_gpu(random_counts: CountsFn) -> None:
    shifts = per_frame_shifts(seed=2)
    aux = ApplyMasksUDF.aux_data(shifts, kind="nav", extra_shape=(2,), dtype=int)
    with gpuudf.Context(executor=InlineExecutor()) as ctx:
        dataset = ctx.load("memory", data=random_counts(DATA_SHAPE, dtype="uint16", high=1000), num_partitions=3)
        assert_backends_agree(ApplyMasksUDF(detector_masks, shifts=aux), dataset)
        assert_backends_agree(ApplyMasksUDF(detector_masks, shifts=(-1, 2)), dataset)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"shifts": (1, 2), "use_sparse": "scipy.sparse"}, "scipy.sparse", id="flat-sparse-masks"),
        pytest.param({"shifts": "up"}, "shifts", id="not-numbers"),
        pytest.param({"shifts": [[1, 2]]}, "shifts", id="not-one-pair"),
        pytest.param(
            {"shifts": ApplyMasksUDF.aux_data(np.zeros(SIG_SHAPE), kind="sig")}, "kind='nav'", id="sig-aux-data"
        ),
    ],
)
def test_bad_shifts_fail_when_the_udf_is_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UDFDefinitionError, match=message):
        ApplyMasksUDF(mask_factories=detector_masks, **kwargs)


def test_shifts_of_another_length_than_the_signal_axes_fail_at_the_start_of_the_run(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match="2 signal axes"):
        ctx.run_udf(dataset=dataset, udf=ApplyMasksUDF(detector_masks, shifts=(1, 2, 3)))


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        pytest.param((0, 0), ((slice(0, 9), slice(0, 11)), (slice(0, 9), slice(0, 11))), id="none"),
        pytest.param((2, -3), ((slice(2, 9), slice(0, 8)), (slice(0, 7), slice(3, 11))), id="down-left"),
        pytest.param((9, 0), None, id="out-of-the-frame"),
    ],
)
def test_overlap_windows_pair_frame_pixel_p_with_mask_pixel_p_minus_shift(
    shift: tuple[int, int], expected: Any
) -> None:
    assert overlap_windows(shift, SIG_SHAPE) == expected
