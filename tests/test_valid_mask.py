"""Valid masks as LiberTEM defines them: ``UDF.with_mask``, ``valid_mask``, damage, masked data, slices.

The expected masks, bounding and inner slices were taken from LiberTEM 0.16
running the same UDFs and masks.  New names (``InvalidMaskError``,
``BufferWrapper(kind, ...)``) are looked up inside the tests, so each test
stands or falls on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, BufferWrapper, Shape
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE, AnyBackendUDF

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

NAV_AXES = (0, 1)
FRAMES = math.prod(NAV_SHAPE)
GRID = (8, 6)  # extra_shape of the "single" buffer custom masks are tried on

#: An irregular ROI: a partial row, a whole row and a lone frame.
ROI = np.zeros(NAV_SHAPE, dtype=bool)
ROI[0, 1:4] = True
ROI[2, :] = True
ROI[4, 6] = True


def broadcast_nav(nav_mask: np.ndarray[Any, Any], extra: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """A nav-shaped mask broadcast over ``extra``: what a nav buffer's default valid mask is."""
    return np.broadcast_to(nav_mask.reshape(*nav_mask.shape, *(1,) * len(extra)), (*nav_mask.shape, *extra))


def picked_mask(selected: int) -> np.ndarray[Any, Any]:
    """The custom mask of ``picked``, in the flat ROI-compressed shape get_results sees."""
    mask = np.zeros((selected, 2), dtype=bool)
    mask[::2, 1] = True
    return mask


class MaskedResultsUDF(AnyBackendUDF):
    """One buffer per kind of valid mask; ``grid_mask`` is the mask of the ``single`` buffer ``grid``."""

    def __init__(self, grid_mask: Any = True) -> None:
        super().__init__(grid_mask=grid_mask)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "summed": self.buffer(kind="sig", extra_shape=(3,), dtype="float64"),
            "hidden": self.buffer(kind="sig", dtype="float64"),
            "plain": self.buffer(kind="sig", extra_shape=(2,), dtype="float64"),  # no mask given
            "grid": self.buffer(kind="single", extra_shape=GRID, dtype="float64"),
            "per_frame": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "picked": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "everywhere": self.buffer(kind="nav", dtype="float64"),
            "nowhere": self.buffer(kind="nav", dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        total = self.xp.sum(frame)
        self.results.summed += frame[..., None]
        self.results.hidden += frame
        self.results.plain += frame[..., None]
        self.results.grid += 1
        self.results.per_frame[:] = total
        self.results.picked[:] = total
        self.results.everywhere[:] = total
        self.results.nowhere[:] = total

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.summed += src.summed
        dest.hidden += src.hidden
        dest.plain += src.plain
        dest.grid += src.grid
        for name in ("per_frame", "picked", "everywhere", "nowhere"):
            getattr(dest, name)[:] = getattr(src, name)

    def get_results(self) -> Mapping[str, Any]:
        return {
            "summed": self.with_mask(self.results.summed, mask=True),
            "hidden": self.with_mask(self.results.hidden, mask=False),
            "grid": self.with_mask(self.results.grid, mask=self.params.grid_mask),
            "picked": self.with_mask(self.results.picked, mask=picked_mask(len(self.results.picked))),
            "everywhere": self.with_mask(self.results.everywhere, mask=True),
            "nowhere": self.with_mask(self.results.nowhere, mask=False),
        }


def selected_of(roi: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any]:
    return np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi


# ---------------------------------------------------------------- with_mask in get_results


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_with_mask_true_and_false_mark_a_result_wholly_valid_or_invalid(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=MaskedResultsUDF(), roi=roi)
    assert_array_equal(res["summed"].valid_mask, np.ones((*SIG_SHAPE, 3), dtype=bool))
    assert_array_equal(res["hidden"].valid_mask, np.zeros(SIG_SHAPE, dtype=bool))
    # on a nav buffer, "all valid" still means only the ROI's frames, as in LiberTEM
    assert_array_equal(res["everywhere"].valid_mask, selected_of(roi))
    assert_array_equal(res["nowhere"].valid_mask, np.zeros(NAV_SHAPE, dtype=bool))
    # the mask does not change the data
    selected = selected_of(roi)
    assert_array_equal(res["summed"].data, np.repeat(data[selected].sum(axis=0)[..., None], 3, axis=-1))
    assert_array_equal(res["nowhere"].data[selected], data.sum(axis=(2, 3))[selected])


@pytest.mark.parametrize(
    "mask_shape",
    [(), (1,), (1, 1), (1, GRID[1]), (GRID[0], 1), GRID],
    ids=["scalar", "1", "1x1", "row", "column", "full"],
)
def test_a_custom_mask_broadcastable_to_the_data_is_broadcast_to_its_shape(
    ctx: gpuudf.Context, random_counts: CountsFn, mask_shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(7)
    mask = rng.integers(0, 2, size=mask_shape).astype(bool)
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    grid = ctx.run_udf(dataset=ds, udf=MaskedResultsUDF(grid_mask=mask))["grid"]
    assert grid.valid_mask.shape == GRID
    assert_array_equal(grid.valid_mask, np.broadcast_to(mask, GRID))
    assert_array_equal(grid.data, np.full(GRID, FRAMES))


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_a_custom_nav_mask_given_flat_over_the_roi_frames_is_placed_at_those_frames(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    picked = ctx.run_udf(dataset=ds, udf=MaskedResultsUDF(), roi=roi)["picked"]
    selected = selected_of(roi).reshape(-1)
    expected = np.zeros((FRAMES, 2), dtype=bool)
    expected[selected] = picked_mask(int(selected.sum()))
    assert picked.valid_mask.shape == (*NAV_SHAPE, 2)
    assert_array_equal(picked.valid_mask, expected.reshape(*NAV_SHAPE, 2))
    assert_array_equal(picked.raw_masked_data.mask, ~picked_mask(int(selected.sum())))


@pytest.mark.parametrize(
    "mask",
    [
        pytest.param(np.zeros(GRID, dtype=int), id="int"),
        pytest.param(np.zeros(GRID, dtype="float32"), id="float32"),
        pytest.param(np.zeros(GRID, dtype="complex64"), id="complex64"),
        pytest.param(np.zeros(GRID[::-1], dtype=bool), id="transposed"),
        pytest.param(np.zeros((2, GRID[1]), dtype=bool), id="too-few-rows"),
        pytest.param(np.zeros((*GRID, 1), dtype=bool), id="extra-axis"),
        pytest.param(np.zeros((1, 1, 1), dtype=bool), id="too-many-axes"),
    ],
)
def test_a_mask_that_is_not_bool_or_does_not_broadcast_fails_the_run_with_invalid_mask_error(
    ctx: gpuudf.Context, random_counts: CountsFn, mask: np.ndarray[Any, Any]
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(gpuudf.InvalidMaskError, match="valid mask"):
        ctx.run_udf(dataset=ds, udf=MaskedResultsUDF(grid_mask=mask))


def test_with_mask_checks_its_mask_at_once_and_invalid_mask_error_is_a_value_error() -> None:
    assert issubclass(gpuudf.InvalidMaskError, ValueError)
    with pytest.raises(gpuudf.InvalidMaskError, match="dtype bool"):
        UDF.with_mask(np.zeros(3), np.zeros(3, dtype=np.uint8))
    with pytest.raises(gpuudf.InvalidMaskError, match=r"shape \(2,\) does not fit its data of shape \(3,\)"):
        UDF.with_mask(np.zeros(3), np.ones(2, dtype=bool))
    masked = UDF.with_mask(np.zeros((2, 3)), np.array([True, False, True]))
    assert_array_equal(masked.mask, [[True, False, True]] * 2)


# ---------------------------------------------------------------- default valid masks


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_valid_mask_has_the_shape_of_data_and_is_false_only_outside_the_roi(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=MaskedResultsUDF(), roi=roi)
    per_frame = res["per_frame"]
    assert per_frame.valid_mask.shape == per_frame.data.shape == (*NAV_SHAPE, 2)
    assert_array_equal(per_frame.valid_mask, broadcast_nav(selected_of(roi), (2,)))
    # sig and single buffers with an extra_shape: all valid, in the shape of data
    plain = res["plain"]
    assert plain.valid_mask.shape == plain.data.shape == (*SIG_SHAPE, 2)
    assert plain.valid_mask.all()
    grid = res["grid"]
    assert grid.valid_mask.shape == grid.data.shape == GRID
    assert grid.valid_mask.all()
    assert_array_equal(
        per_frame.data[selected_of(roi)], np.repeat(data.sum(axis=(2, 3))[selected_of(roi)], 2, axis=-1).reshape(-1, 2)
    )


# ---------------------------------------------------------------- partial results


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_partial_results_are_valid_where_the_damage_says_and_damage_is_a_nav_bool_buffer(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    data = random_counts(DATA_SHAPE)
    sums = data.sum(axis=(2, 3))
    selected = selected_of(roi)
    steps = 0
    for step in ctx.run_udf_iter(dataset=load_partitioned(data), udf=MaskedResultsUDF(), roi=roi):
        steps += 1
        damage = step.damage
        assert isinstance(damage, BufferWrapper)
        assert (damage.kind, damage.dtype) == ("nav", np.dtype(bool))
        assert damage.data.shape == NAV_SHAPE
        assert damage.raw_data.shape == (int(selected.sum()),)
        assert not damage.data[~selected].any()
        assert_array_equal(damage.data[selected], damage.raw_data)
        assert_array_equal(np.asarray(damage), damage.data)

        per_frame = step.buffers[0]["per_frame"]
        assert_array_equal(per_frame.valid_mask, broadcast_nav(damage.data, (2,)))
        assert_array_equal(per_frame.masked_data.mask, ~per_frame.valid_mask)
        assert_array_equal(per_frame.masked_data.compressed(), np.repeat(sums[damage.data], 2))
        assert_array_equal(per_frame.raw_masked_data.mask, ~broadcast_nav(damage.raw_data, (2,)))
        assert_array_equal(per_frame.raw_masked_data.compressed(), np.repeat(sums[damage.data], 2))
        # frames not merged yet hold the fill value in data
        assert np.isnan(per_frame.data[~damage.data]).all()
        # a mask given with with_mask replaces the damage, as in LiberTEM
        assert_array_equal(step.buffers[0]["everywhere"].valid_mask, selected)
        assert step.buffers[0]["summed"].valid_mask.all()
        assert step.buffers[0]["plain"].valid_mask.all()  # sig buffers are valid while partial, too
    assert steps >= 1
    assert_array_equal(damage.data, selected)


def test_masked_data_masks_what_is_not_valid(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data)
    res = ctx.run_udf(dataset=ds, udf=MaskedResultsUDF(), roi=ROI)
    for name, buf in res.items():
        masked = buf.masked_data
        assert isinstance(masked, np.ma.MaskedArray), name
        assert_array_equal(masked.mask, ~buf.valid_mask)
        assert np.sum(buf.data[buf.valid_mask]) == masked.sum() or masked.mask.all(), name
        raw_masked = buf.raw_masked_data
        assert raw_masked.shape == buf.raw_data.shape, name
        assert np.sum(buf.data[buf.valid_mask]) == raw_masked.sum() or np.all(raw_masked.mask), name
    assert res["hidden"].masked_data.mask.all()
    assert_array_equal(res["per_frame"].raw_masked_data.mask, np.zeros((int(ROI.sum()), 2), dtype=bool))


# ---------------------------------------------------------------- bounding and inner slices


def _mask(shape: tuple[int, ...], *parts: Any) -> np.ndarray[Any, Any]:
    mask = np.zeros(shape, dtype=bool)
    for part in parts:
        mask[part] = True
    return mask


@pytest.mark.parametrize(
    ("mask", "bounding", "inner"),
    [
        # bounding: LiberTEM's valid_slice_bounding; inner: its get_valid_slice_inner per axis (None: empty)
        pytest.param(np.ones(GRID, dtype=bool), np.s_[0:8, 0:6], [np.s_[0:8, :], np.s_[:, 0:6]], id="all"),
        pytest.param(_mask(GRID, np.s_[2:5], (6, 1)), np.s_[2:7, 0:6], [np.s_[2:5, :], None], id="rows"),
        pytest.param(_mask(GRID, np.s_[:, 1:4]), np.s_[0:8, 1:4], [None, np.s_[:, 1:4]], id="columns"),
        pytest.param(_mask(GRID, (3, 4)), np.s_[3:4, 4:5], [None, None], id="one-entry"),
        pytest.param(np.zeros(GRID, dtype=bool), None, [None, None], id="none"),
    ],
)
def test_valid_slices_bound_the_valid_entries_as_libertem_does(
    ctx: gpuudf.Context,
    random_counts: CountsFn,
    mask: np.ndarray[Any, Any],
    bounding: tuple[slice, ...] | None,
    inner: list[tuple[slice, ...] | None],
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    grid = ctx.run_udf(dataset=ds, udf=MaskedResultsUDF(grid_mask=mask))["grid"]
    if bounding is None:
        assert grid.data[grid.valid_slice_bounding].size == 0
    else:
        assert grid.valid_slice_bounding == bounding
        assert grid.valid_mask[grid.valid_slice_bounding].sum() == mask.sum()
    for axis, expected in enumerate(inner):
        got = grid.get_valid_slice_inner(axis=axis)
        if expected is None:
            assert grid.data[got].size == 0, axis
        else:
            assert got == expected, axis
        assert grid.valid_mask[got].all(), axis


def test_the_inner_slice_is_the_first_run_of_valid_rows_as_in_libertem(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    mask = _mask(GRID, np.s_[0:1], np.s_[3:6])
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    grid = ctx.run_udf(dataset=ds, udf=MaskedResultsUDF(grid_mask=mask))["grid"]
    inner = grid.get_valid_slice_inner(axis=0)
    assert inner == np.s_[0:1, :]  # LiberTEM's first run, not the longest (3:6)
    assert grid.valid_mask[inner].all()
    assert grid.valid_slice_bounding == np.s_[0:6, 0:6]


def test_the_bounding_slice_of_a_partial_nav_result_bounds_the_merged_frames(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    for step in ctx.run_udf_iter(dataset=load_partitioned(data), udf=MaskedResultsUDF()):
        per_frame = step.buffers[0]["per_frame"]
        merged = np.argwhere(step.damage.data)
        low, high = merged.min(axis=0), merged.max(axis=0) + 1
        assert per_frame.valid_slice_bounding == (slice(low[0], high[0]), slice(low[1], high[1]), slice(0, 2))
        assert per_frame.valid_mask[per_frame.get_valid_slice_inner(axis=0)].all()


# ---------------------------------------------------------------- BufferWrapper as a declaration


class WrapperDeclaredUDF(AnyBackendUDF):
    """Declares its buffers the way older LiberTEM code does: ``BufferWrapper(kind, extra_shape, dtype)``."""

    def get_result_buffers(self) -> Mapping[str, Any]:
        return {
            "pair": BufferWrapper("nav", (2,), "float64"),
            "total": BufferWrapper(kind="sig", dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.pair[:] = self.xp.sum(frame)
        self.results.total += frame

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.pair[:] = src.pair
        dest.total += src.total


def test_buffer_wrappers_returned_by_get_result_buffers_declare_buffers(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=WrapperDeclaredUDF(), roi=ROI)
    assert res["pair"].data.shape == (*NAV_SHAPE, 2)
    assert res["pair"].dtype == np.dtype("float64")
    assert_array_equal(res["pair"].raw_data, np.repeat(data.sum(axis=(2, 3))[ROI], 2).reshape(-1, 2))
    assert_array_equal(res["total"].data, data[ROI].sum(axis=0))


def test_a_declaring_buffer_wrapper_holds_no_data() -> None:
    decl = BufferWrapper(kind="nav", extra_shape=(1, 2), dtype="float32")
    assert (decl.kind, decl.extra_shape, decl.dtype) == ("nav", (1, 2), np.dtype("float32"))
    with pytest.raises(ValueError, match="declares a buffer"):
        _ = decl.data


# ---------------------------------------------------------------- make_default_mask


def test_the_default_mask_of_a_nav_buffer_is_the_valid_nav_mask_over_extra_shape() -> None:
    buf = BufferWrapper(kind="nav", extra_shape=(1, 2), dtype="float32")
    valid_nav = np.array([True, True, False])
    mask = buf.make_default_mask(valid_nav_mask=valid_nav, dataset_shape=Shape((3, 1, 16, 16), sig_dims=2), roi=None)
    assert mask.shape == (3, 1, 2)
    assert_array_equal(mask, np.broadcast_to(valid_nav.reshape(3, 1, 1), (3, 1, 2)))


def test_the_default_mask_of_a_nav_buffer_with_a_roi_covers_the_roi_frames_only() -> None:
    buf = BufferWrapper(kind="nav", extra_shape=(1, 2), dtype="float32")
    valid_nav = np.array([True, False])
    mask = buf.make_default_mask(
        valid_nav_mask=valid_nav, dataset_shape=Shape((3, 1, 16, 16), sig_dims=2), roi=np.array([True, False, True])
    )
    assert mask.shape == (2, 1, 2)
    assert_array_equal(mask, np.broadcast_to(valid_nav.reshape(2, 1, 1), (2, 1, 2)))


@pytest.mark.parametrize(
    ("kind", "expected_shape"), [("sig", (32, 32, 1, 2)), ("single", (1, 2))], ids=["sig", "single"]
)
def test_the_default_mask_of_sig_and_single_buffers_is_all_valid(kind: str, expected_shape: tuple[int, ...]) -> None:
    buf = BufferWrapper(kind=kind, extra_shape=(1, 2), dtype="float32")
    mask = buf.make_default_mask(
        valid_nav_mask=np.array([True, True, False]), dataset_shape=Shape((3, 1, 32, 32), sig_dims=2)
    )
    assert mask.shape == expected_shape
    assert mask.all()
