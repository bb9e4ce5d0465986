"""Regions of interest (API.md §4, ``roi``): every accepted form, fill values, errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import sparse
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.roi import normalize_roi
from tests.udfs_for_tests import (
    DATA_SHAPE,
    NAV_SHAPE,
    SIG_SHAPE,
    AnyBackendUDF,
    MaxUDF,
    SumFrameUDF,
    SumPartitionUDF,
    SumTileUDF,
)

NAV_AXES = (0, 1)
SIG_AXES = (2, 3)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

#: A fixed irregular mask: selected frames in every row, none in one column.
MASK = np.random.default_rng(7).random(NAV_SHAPE) < 0.5
MASK[:, 3] = False
MASK[0, 0] = MASK[4, 6] = True


def _only(*coordinates: tuple[int, ...]) -> np.ndarray[Any, Any]:
    mask = np.zeros(NAV_SHAPE, dtype=bool)
    for c in coordinates:
        mask[c] = True
    return mask


ROI_FORMS = [
    pytest.param((3, 4), _only((3, 4)), id="coordinate"),
    pytest.param((np.int64(1), np.int32(2)), _only((1, 2)), id="numpy-int-coordinate"),
    pytest.param((-1, -2), _only((4, 5)), id="negative-coordinate"),
    pytest.param([((0, 1), True), ((4, 6), True), ((2, 3), True)], _only((0, 1), (4, 6), (2, 3)), id="true-pairs"),
    pytest.param([((0, 1), False), ((4, 6), False)], ~_only((0, 1), (4, 6)), id="false-pairs"),
    pytest.param([[[2, 2], np.True_]], _only((2, 2)), id="pairs-as-lists"),
    pytest.param(MASK, MASK, id="bool-mask"),
    pytest.param(MASK.reshape(-1), MASK, id="flat-bool-mask"),
    pytest.param(MASK.reshape(-1).tolist(), MASK, id="flat-list-of-bools"),
    pytest.param(scipy.sparse.coo_matrix(MASK), MASK, id="scipy-coo-matrix"),
    pytest.param(scipy.sparse.csr_array(MASK), MASK, id="scipy-csr-array"),
    pytest.param(sparse.COO.from_numpy(MASK), MASK, id="pydata-sparse-coo"),
    pytest.param(sparse.COO.from_numpy(MASK).asformat("gcxs"), MASK, id="pydata-sparse-gcxs"),
]


@pytest.mark.parametrize("udf_class", [SumFrameUDF, SumTileUDF, SumPartitionUDF], ids=["frame", "tile", "partition"])
@pytest.mark.parametrize(("roi", "mask"), ROI_FORMS)
def test_every_roi_form_selects_its_frames(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    roi: Any,
    mask: np.ndarray[Any, Any],
    udf_class: type[UDF],
) -> None:
    data = random_counts(DATA_SHAPE)
    udf = udf_class(depth=2) if udf_class is SumTileUDF else udf_class()
    res = ctx.run_udf(dataset=load_partitioned(data), udf=udf, roi=roi)
    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["per_frame"].data, np.where(mask, sums, np.nan))
    assert_array_equal(res["per_frame"].raw_data, sums.reshape(-1)[mask.reshape(-1)])
    assert_array_equal(res["per_frame"].valid_mask, mask)
    assert_array_equal(res["total"].data, data[mask].sum(axis=0, dtype=np.float64))
    assert_array_equal(res["total"].valid_mask, np.ones(SIG_SHAPE, dtype=bool))
    assert_array_equal(res["count"].data, [mask.sum()])


@pytest.mark.parametrize(
    ("nav", "roi", "selected"),
    [
        pytest.param((13,), (4,), [4], id="nav1-coordinate"),
        pytest.param((13,), [((0,), True), ((12,), True)], [0, 12], id="nav1-pairs"),
        pytest.param((13,), np.arange(13) % 3 == 0, [0, 3, 6, 9, 12], id="nav1-mask"),
        pytest.param((13,), scipy.sparse.coo_array(np.arange(13)[None] % 5 == 1), [1, 6, 11], id="nav1-scipy-1xN"),
        pytest.param((3, 2, 5), (2, 1, 4), [29], id="nav3-coordinate"),
        pytest.param((3, 2, 5), [((0, 0, 1), True), ((1, 1, 1), True)], [1, 16], id="nav3-pairs"),
        pytest.param(
            (3, 2, 5),
            sparse.COO.from_numpy(np.arange(30).reshape(3, 2, 5) % 7 == 0),
            [0, 7, 14, 21, 28],
            id="nav3-sparse",
        ),
    ],
)
def test_rois_fit_any_nav_rank(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    nav: tuple[int, ...],
    roi: Any,
    selected: list[int],
) -> None:
    data = random_counts((*nav, 4, 3))
    res = ctx.run_udf(dataset=load_partitioned(data), udf=SumFrameUDF(), roi=roi)
    flat_sums = data.reshape(math.prod(nav), 4, 3).sum(axis=(1, 2), dtype=np.float64)
    mask = np.zeros(math.prod(nav), dtype=bool)
    mask[selected] = True
    assert_array_equal(res["per_frame"].valid_mask, mask.reshape(nav))
    assert_array_equal(res["per_frame"].raw_data, flat_sums[selected])
    assert_array_equal(res["per_frame"].data.reshape(-1), np.where(mask, flat_sums, np.nan))


@pytest.mark.parametrize(
    "roi",
    [
        pytest.param(MASK.astype(np.uint8), id="uint8"),
        pytest.param(MASK.astype(np.float32) * 0.5, id="float"),
        pytest.param(scipy.sparse.csr_matrix(MASK.astype(np.int64)), id="scipy-int"),
    ],
)
def test_a_non_bool_mask_warns_and_selects_its_non_zero_entries(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: Any
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data)
    with pytest.warns(
        UserWarning, match=r"ROI dtype is \w+, expected bool\. Attempting cast to bool \(non-zero selects\)"
    ):
        res = ctx.run_udf(dataset=ds, udf=SumFrameUDF(), roi=roi)
    assert_array_equal(res["per_frame"].valid_mask, MASK)


def test_roi_restricts_sig_reductions_to_the_selected_frames(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = -1 - random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=MaxUDF(), roi=MASK)
    assert_array_equal(res["maxbuf"].data, data[MASK].max(axis=0))


# ---------------------------------------------------------------- fill values

FILL_DTYPES = [
    pytest.param("float16", np.nan, id="float16-nan"),
    pytest.param("float32", np.nan, id="float32-nan"),
    pytest.param("float64", np.nan, id="float64-nan"),
    pytest.param("complex64", complex(np.nan, 0), id="complex64-nan"),
    pytest.param("complex128", complex(np.nan, 0), id="complex128-nan"),
    pytest.param("int8", 0, id="int8-zero"),
    pytest.param("int64", 0, id="int64-zero"),
    pytest.param("uint16", 0, id="uint16-zero"),
    pytest.param("bool", False, id="bool-false"),
    pytest.param("object", None, id="object-none"),
    pytest.param("U6", "", id="str-empty"),
    pytest.param("datetime64[s]", np.datetime64("NaT", "s"), id="datetime-nat"),
]


class FillUDF(AnyBackendUDF):
    """One nav buffer (with and without extra_shape) of the given dtype, holding 1 for each frame."""

    def __init__(self, dtype: str) -> None:
        super().__init__(dtype=dtype)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "value": self.buffer(kind="nav", dtype=self.params.dtype),
            "values": self.buffer(kind="nav", extra_shape=(2,), dtype=self.params.dtype),
        }

    def _one(self) -> Any:
        dtype = np.dtype(self.params.dtype)
        if dtype.kind == "M":
            return np.datetime64(1, "s")
        if dtype.kind == "U":
            return "one"
        return 1

    def process_frame(self, frame: Any) -> None:
        self.results.value[0] = self._one()
        self.results.values[0] = self._one()
        self.results.values[1] = self._one()


@pytest.mark.parametrize(("dtype", "fill"), FILL_DTYPES)
def test_nav_buffers_hold_the_dtypes_fill_value_outside_the_roi(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, dtype: str, fill: Any
) -> None:
    res = ctx.run_udf(dataset=load_partitioned(random_counts(DATA_SHAPE)), udf=FillUDF(dtype=dtype), roi=MASK)
    one = FillUDF(dtype=dtype)._one()
    for name, extra in (("value", ()), ("values", (2,))):
        wrapper = res[name]
        assert wrapper.dtype == np.dtype(dtype)
        assert wrapper.data.shape == (*NAV_SHAPE, *extra)
        expected = np.full((*NAV_SHAPE, *extra), fill, dtype=dtype)
        expected[MASK] = one
        assert_array_equal(wrapper.data, expected)
        assert wrapper.raw_data.shape == (MASK.sum(), *extra)
        assert_array_equal(wrapper.raw_data, np.full((MASK.sum(), *extra), one, dtype=dtype))
        assert_array_equal(
            wrapper.valid_mask, np.broadcast_to(MASK.reshape(*NAV_SHAPE, *(1,) * len(extra)), (*NAV_SHAPE, *extra))
        )


# ---------------------------------------------------------------- what the UDF sees


class RoiMetaUDF(AnyBackendUDF):
    """Records ``meta.roi`` on workers and on the host."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "seen": self.buffer(kind="nav", dtype=object),
            "pre": self.buffer(kind="nav", dtype=object),
            "host_selected": self.buffer(kind="single", dtype="int64", use="result_only"),
            "doubled": self.buffer(kind="nav", dtype="float64", use="result_only"),
            "per_frame": self.buffer(kind="nav", dtype="float64"),
        }

    def preprocess(self) -> None:
        roi = self.meta.roi
        for i in range(len(self.results.pre)):
            self.results.pre[i] = None if roi is None else roi.copy()

    def process_frame(self, frame: Any) -> None:
        roi = self.meta.roi
        self.results.seen[0] = None if roi is None else roi.copy()
        self.results.per_frame[:] = self.xp.sum(frame)

    def get_results(self) -> Mapping[str, Any]:
        roi = self.meta.roi
        count = math.prod(self.meta.dataset_shape.nav) if roi is None else int(roi.sum())
        return {"host_selected": [count], "doubled": 2 * self.results.per_frame}


@pytest.mark.parametrize("roi", [None, MASK], ids=["no-roi", "mask"])
def test_meta_roi_is_the_nav_shaped_mask_everywhere(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=RoiMetaUDF(), roi=roi)
    for name in ("seen", "pre"):
        for seen in res[name].raw_data:
            if roi is None:
                assert seen is None
            else:
                assert seen.dtype == bool
                assert_array_equal(seen, roi)
    mask = np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi
    assert_array_equal(res["host_selected"].data, [mask.sum()])
    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["doubled"].data, np.where(mask, 2 * sums, np.nan))
    assert_array_equal(res["doubled"].raw_data, 2 * sums[mask])
    assert_array_equal(res["doubled"].valid_mask, mask)


class NeverProcessUDF(AnyBackendUDF):
    """Buffers of every kind; processing a frame is an error."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float32"),
            "corners": self.buffer(kind="nav", extra_shape=(2, 2), dtype="int16"),
            "labels": self.buffer(kind="nav", dtype=object),
            "total": self.buffer(kind="sig", dtype="float64"),
            "count": self.buffer(kind="single", dtype="int64"),
        }

    def preprocess(self) -> None:
        self.results.count[:] = -5

    def process_frame(self, frame: Any) -> None:
        msg = "no frame is selected"
        raise AssertionError(msg)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        msg = "no partition is selected"
        raise AssertionError(msg)


@pytest.mark.parametrize(
    "roi",
    [
        pytest.param(np.zeros(NAV_SHAPE, dtype=bool), id="all-false"),
        pytest.param(scipy.sparse.csr_array(NAV_SHAPE, dtype=bool), id="empty-scipy"),
    ],
)
def test_a_roi_selecting_nothing_returns_well_shaped_results(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, roi: Any
) -> None:
    res = ctx.run_udf(dataset=load_partitioned(random_counts(DATA_SHAPE)), udf=NeverProcessUDF(), roi=roi)
    assert np.isnan(res["per_frame"].data).all()
    assert res["per_frame"].data.shape == NAV_SHAPE
    assert res["per_frame"].raw_data.shape == (0,)
    assert_array_equal(res["corners"].data, np.zeros((*NAV_SHAPE, 2, 2), dtype=np.int16))
    assert res["corners"].raw_data.shape == (0, 2, 2)
    assert res["labels"].data.shape == NAV_SHAPE
    assert set(res["labels"].data.reshape(-1)) == {None}
    assert not res["per_frame"].valid_mask.any()
    assert_array_equal(res["total"].data, np.zeros(SIG_SHAPE))
    assert_array_equal(res["count"].data, [-5])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("roi", "message"),
    [
        pytest.param(
            np.ones((5, 6), dtype=bool), r"ROI of shape \(5, 6\) does not fit the nav shape \(5, 7\)", id="small"
        ),
        pytest.param(np.ones((7, 5), dtype=bool), r"ROI of shape \(7, 5\) does not fit", id="transposed"),
        pytest.param(np.ones(36, dtype=bool), r"ROI of shape \(36,\) does not fit", id="flat-too-long"),
        pytest.param(np.ones((5, 7, 1), dtype=bool), r"ROI of shape \(5, 7, 1\) does not fit", id="extra-axis"),
        pytest.param(scipy.sparse.coo_matrix((7, 5), dtype=bool), r"ROI of shape \(7, 5\) does not fit", id="scipy"),
        pytest.param(sparse.COO.from_numpy(np.ones((5, 6), dtype=bool)), r"ROI of shape \(5, 6\)", id="pydata-sparse"),
        pytest.param([], r"ROI of shape \(0,\) does not fit", id="empty-list"),
        pytest.param(
            [((0, 1), True), ((2, 2), False)], r"pairs must all carry the same truth value", id="mixed-truth-values"
        ),
        pytest.param(
            (5, 0), r"ROI coordinate \(5, 0\) is outside the nav shape \(5, 7\) \(axis 0\)", id="out-of-range"
        ),
        pytest.param(
            (0, -8), r"ROI coordinate \(0, -8\) is outside the nav shape \(5, 7\) \(axis 1\)", id="too-negative"
        ),
        pytest.param([((0, 7), True)], r"ROI coordinate \(0, 7\) is outside the nav shape", id="pair-out-of-range"),
        pytest.param([((0, 1, 2), True)], r"ROI entry .* is not a \(coordinate, bool\) pair", id="pair-wrong-rank"),
        pytest.param([((0, 1),)], r"ROI entry .* is not a \(coordinate, bool\) pair", id="pair-without-bool"),
        pytest.param((1, 2, 3), r"ROI of shape \(3,\) does not fit", id="coordinate-wrong-rank"),
        pytest.param(np.full(NAV_SHAPE, "yes"), r"ROI of dtype <U3 is not a mask", id="strings"),
    ],
)
def test_a_roi_that_does_not_fit_is_a_value_error_before_any_frame(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: Any, message: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(ValueError, match=message):
        ctx.run_udf(dataset=ds, udf=NeverProcessUDF(), roi=roi)


def test_normalize_roi_returns_none_or_a_flat_contiguous_bool_mask() -> None:
    assert normalize_roi(None, NAV_SHAPE) is None
    mask = normalize_roi(MASK.T.copy().T, NAV_SHAPE)  # a Fortran-ordered input
    assert mask is not None
    assert mask.dtype == bool
    assert mask.shape == (math.prod(NAV_SHAPE),)
    assert mask.flags.c_contiguous
    assert_array_equal(mask, MASK.reshape(-1))


def test_the_users_roi_is_not_modified(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    roi = MASK.copy()
    ctx.run_udf(dataset=ctx.load("memory", data=random_counts(DATA_SHAPE)), udf=SumFrameUDF(), roi=roi)
    assert_array_equal(roi, MASK)
