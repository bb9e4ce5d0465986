"""What a UDF sees of its buffers (API.md §2.1, §2.3): ``self.results`` in process_* and get_results, merge's views.

These follow LiberTEM: ``result_only`` buffers read as ``None`` where they
do not exist, ``dest``/``src`` support ``in``, iteration and (discouraged)
item access, and ``get_results`` sees nav buffers flat over the selected
frames, so that get_results code written for LiberTEM works unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDFDefinitionError
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, AnyBackendUDF, ProcessCalledError

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

NAV_AXES = (0, 1)
SIG_AXES = (2, 3)
FRAMES = math.prod(NAV_SHAPE)

ROI = np.zeros(NAV_SHAPE, dtype=bool)
ROI[1, 2:6] = True
ROI[3, :] = True
ROI[4, 0] = True


def selected_of(roi: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any]:
    return np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi


# ---------------------------------------------------------------- result_only buffers on workers


class ResultOnlyViewsUDF(AnyBackendUDF):
    """``halved`` (nav) and ``mean`` (sig) are result_only; ``method`` picks the process method.

    ``write=True`` writes ``halved`` after checking that it reads as ``None``.
    """

    def __init__(self, method: str = "frame", write: bool = False) -> None:
        super().__init__(method=method, write=write)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
            "halved": self.buffer(kind="nav", dtype="float64", use="result_only"),
            "mean": self.buffer(kind="sig", dtype="float64", use="result_only"),
        }

    def get_method(self) -> Any:
        return self.params.method

    def _check_result_only(self) -> None:
        try:
            seen = (self.results.halved, self.results.mean)
        except AttributeError as exc:
            msg = f"reading a result_only buffer raised {exc!r} instead of giving None"
            raise ProcessCalledError(msg) from None
        if seen != (None, None):
            msg = f"result_only buffers read as {seen!r} inside process_*, not None"
            raise ProcessCalledError(msg)
        if self.params.write:
            self.results.halved = 1.0

    def _add(self, stack: Any) -> None:
        self._check_result_only()
        self.results.per_frame[:] = self.xp.sum(stack, axis=tuple(range(1, stack.ndim)))
        self.results.total += self.xp.sum(stack, axis=0)

    def process_frame(self, frame: Any) -> None:
        self._add(frame[None])

    def process_tile(self, tile: Any) -> None:
        self._add(tile)

    def process_partition(self, partition: Any) -> None:
        self._add(partition)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.per_frame[:] = src.per_frame
        dest.total += src.total

    def get_results(self) -> Mapping[str, Any]:
        return {"halved": self.results.per_frame / 2, "mean": self.results.total / len(self.results.per_frame)}


@pytest.mark.parametrize("method", ["frame", "tile", "partition"])
def test_result_only_buffers_read_as_none_inside_every_process_method(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, method: str
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=ResultOnlyViewsUDF(method=method))
    assert_array_equal(res["halved"].data, data.sum(axis=SIG_AXES) / 2)
    assert_array_equal(res["mean"].data, data.mean(axis=NAV_AXES, dtype=np.float64))


@pytest.mark.parametrize("method", ["frame", "tile"])
def test_writing_a_result_only_buffer_inside_process_raises_an_attribute_error_naming_it(
    ctx: gpuudf.Context, random_counts: CountsFn, method: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(AttributeError, match="ResultOnlyViewsUDF buffer 'halved' is result_only"):
        ctx.run_udf(dataset=ds, udf=ResultOnlyViewsUDF(method=method, write=True))


# ---------------------------------------------------------------- merge's dest and src


class MergeMappingUDF(AnyBackendUDF):
    """Checks ``in`` and iteration on ``dest``/``src``; ``item_access`` merges through ``dest[name]``."""

    BOUND = frozenset({"per_frame", "total", "count", "scratch"})

    def __init__(self, item_access: bool = False) -> None:
        super().__init__(item_access=item_access)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
            "count": self.buffer(kind="single", dtype="int64"),
            "scratch": self.buffer(kind="nav", dtype="float64", use="private"),
            "derived": self.buffer(kind="single", dtype="float64", use="result_only"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.scratch[:] = self.xp.max(frame)
        self.results.total += frame
        self.results.count += 1

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        for views in (dest, src):
            if set(views) != self.BOUND or "derived" in views or "per_frame" not in views:
                msg = f"merge sees {sorted(views)}, 'derived' in it: {'derived' in views}"
                raise AssertionError(msg)
        if self.params.item_access:
            dest["per_frame"][:] = src["per_frame"]
            dest["scratch"][:] = src["scratch"]
            dest["total"][:] += src["total"]
            dest["count"][:] += src["count"]
        else:
            for name in src:
                if name in {"per_frame", "scratch"}:
                    getattr(dest, name)[:] = getattr(src, name)
                else:
                    getattr(dest, name)[:] += getattr(src, name)

    def get_results(self) -> Mapping[str, Any]:
        return {"derived": np.array([self.results.scratch.max()])}


def test_merge_views_support_in_and_iterate_over_every_buffer_but_result_only_ones(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=MergeMappingUDF())
    assert set(res) == {"per_frame", "total", "count", "derived"}
    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES))
    assert_array_equal(res["total"].data, data.sum(axis=NAV_AXES))
    assert_array_equal(res["count"].data, [FRAMES])
    assert_array_equal(res["derived"].data, [data.max()])


def test_item_access_on_merge_views_works_and_warns_that_it_is_discouraged(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    with pytest.warns(gpuudf.UseDiscouragedWarning) as warned:
        res = ctx.run_udf(dataset=load_partitioned(data), udf=MergeMappingUDF(item_access=True))
    assert "write .per_frame instead of ['per_frame']" in {str(w.message).split(": ", 1)[1] for w in warned}
    assert issubclass(gpuudf.UseDiscouragedWarning, FutureWarning)
    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES))
    assert_array_equal(res["total"].data, data.sum(axis=NAV_AXES))
    assert_array_equal(res["count"].data, [FRAMES])


def test_item_access_for_an_undeclared_name_raises_attribute_error_naming_it() -> None:
    views = BufferViews("SomeUDF", {})
    with (
        pytest.warns(gpuudf.UseDiscouragedWarning),
        pytest.raises(AttributeError, match="SomeUDF declares no buffer 'missing'"),
    ):
        views["missing"]
    assert "missing" not in views
    assert list(views) == []


# ---------------------------------------------------------------- get_results sees flat nav buffers


class LiberTEMStyleResultsUDF(AnyBackendUDF):
    """get_results written for LiberTEM: computes on nav buffers flat over the selected frames."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "pair": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "fraction": self.buffer(kind="nav", dtype="float64", use="result_only"),
            "embedded": self.buffer(kind="nav", dtype="float64", use="result_only"),
            "shapes": self.buffer(kind="single", extra_shape=(3,), dtype="int64", use="result_only"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.pair[:] = self.xp.max(frame)

    def get_results(self) -> Mapping[str, Any]:
        selected = self.meta.dataset_shape.nav.size if self.meta.roi is None else np.count_nonzero(self.meta.roi)
        # LiberTEM code assigns and computes on the flat view
        self.results.pair[:, 1] = self.results.per_frame
        embedded = np.full(tuple(self.meta.dataset_shape.nav), -1.0)
        if self.meta.roi is None:
            embedded[...] = self.results.per_frame.reshape(embedded.shape)
        else:
            embedded[self.meta.roi] = self.results.per_frame  # LiberTEM's way to embed a result
        return {
            "fraction": self.results.per_frame / self.results.per_frame.sum(),
            "embedded": embedded,
            "shapes": np.array([*self.results.pair.shape, selected]),
        }


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_get_results_sees_nav_buffers_flat_over_the_selected_frames(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    data = random_counts(DATA_SHAPE, high=20)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=LiberTEMStyleResultsUDF(), roi=roi)
    selected = selected_of(roi)
    count = int(selected.sum())
    assert_array_equal(res["shapes"].data, [count, 2, count])
    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    assert_array_equal(res["pair"].raw_data[:, 1], sums[selected])
    assert_array_equal(res["pair"].raw_data[:, 0], data.max(axis=SIG_AXES)[selected])
    np.testing.assert_allclose(res["fraction"].raw_data, sums[selected] / sums[selected].sum(), rtol=1e-12)
    assert res["fraction"].data.shape == NAV_SHAPE


def test_a_full_shape_nav_result_with_a_roi_is_kept_as_given(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=LiberTEMStyleResultsUDF(), roi=ROI)
    embedded = res["embedded"]
    expected = np.where(ROI, data.sum(axis=SIG_AXES), -1.0)
    assert_array_equal(embedded.data, expected)  # LiberTEM keeps the values outside the ROI too
    assert_array_equal(embedded.raw_data, expected[ROI])
    assert_array_equal(embedded.valid_mask, ROI)


class ReturnedShapeUDF(AnyBackendUDF):
    """get_results returns ``doubled`` (nav, extra (2,)) in the form ``form`` names.

    ``flat`` and ``nav-shaped`` cover every frame, ``wrong`` has one entry too many
    (the compressed form, one entry per selected frame, is what
    :class:`LiberTEMStyleResultsUDF` returns).
    """

    def __init__(self, form: str) -> None:
        super().__init__(form=form)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "doubled": self.buffer(kind="nav", extra_shape=(2,), dtype="float64", use="result_only"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)

    def get_results(self) -> Mapping[str, Any]:
        nav = tuple(self.meta.dataset_shape.nav)
        compressed = 2 * self.results.per_frame
        full = np.zeros((math.prod(nav), 2))
        flat_roi = slice(None) if self.meta.roi is None else self.meta.roi.reshape(-1)
        full[flat_roi] = compressed
        if self.params.form == "flat":
            return {"doubled": full}
        if self.params.form == "nav-shaped":
            return {"doubled": full.reshape(*nav, 2)}
        return {"doubled": np.zeros((len(compressed) + 1, 2))}


@pytest.mark.parametrize("form", ["flat", "nav-shaped"])
@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_get_results_may_return_a_nav_array_flat_or_nav_shaped_over_all_frames_as_well(
    ctx: gpuudf.Context, random_counts: CountsFn, form: str, roi: np.ndarray[Any, Any] | None
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=ReturnedShapeUDF(form=form), roi=roi)
    selected = selected_of(roi)
    doubled = res["doubled"]
    assert doubled.data.shape == (*NAV_SHAPE, 2)
    assert_array_equal(doubled.raw_data, np.repeat(2 * data.sum(axis=SIG_AXES)[selected], 2).reshape(-1, 2))
    assert_array_equal(doubled.data[selected], doubled.raw_data)


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_a_nav_result_of_a_wrong_shape_is_a_definition_error_naming_the_buffer(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    count = int(selected_of(roi).sum())
    with pytest.raises(
        UDFDefinitionError,
        match=rf"returned 'doubled' with shape \({count + 1}, 2\); a nav buffer takes \(5, 7, 2\) or \(35, 2\)",
    ):
        ctx.run_udf(dataset=ds, udf=ReturnedShapeUDF(form="wrong"), roi=roi)


class LossyResultUDF(AnyBackendUDF):
    """Returns a float result for an integer buffer (``lossy``), or an int for a float one."""

    def __init__(self, lossy: bool = True) -> None:
        super().__init__(lossy=lossy)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        dtype = "int64" if self.params.lossy else "float64"
        return {"counts": self.buffer(kind="single", dtype=dtype, use="result_only")}

    def process_tile(self, tile: Any) -> None:
        pass

    def get_results(self) -> Mapping[str, Any]:
        return {"counts": np.array([2.5]) if self.params.lossy else np.array([2])}


def test_a_result_whose_dtype_would_lose_values_is_a_definition_error_as_in_libertem(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=r"returned 'counts' as float64, which the buffer's int64 cannot hold"):
        ctx.run_udf(dataset=ds, udf=LossyResultUDF(lossy=True))
    assert_array_equal(ctx.run_udf(dataset=ds, udf=LossyResultUDF(lossy=False))["counts"].data, [2.0])


class FullNavResultUDF(AnyBackendUDF):
    """Returns a nav-shaped result for every frame: -7 outside the ROI, the frame's first pixel inside."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "first": self.buffer(kind="nav", dtype="float64"),
            "full": self.buffer(kind="nav", dtype="float64", use="result_only"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.first[:] = frame.reshape(-1)[0]

    def get_results(self) -> Mapping[str, Any]:
        full = np.full(self.meta.dataset_shape.nav, -7.0)
        roi = self.meta.roi
        full.reshape(-1)[slice(None) if roi is None else roi.reshape(-1)] = self.results.first
        return {"full": full}


@pytest.mark.parametrize("with_roi", [False, True])
def test_a_full_shape_nav_result_of_a_partial_step_holds_the_fill_value_for_frames_not_merged_yet(
    ctx: gpuudf.Context, random_counts: CountsFn, with_roi: bool
) -> None:
    data = random_counts(DATA_SHAPE)
    roi = (np.arange(math.prod(NAV_SHAPE)) % 4 != 1).reshape(NAV_SHAPE) if with_roi else None
    ds = ctx.load("memory", data=data, num_partitions=5)
    firsts = data.reshape(*NAV_SHAPE, -1)[..., 0]
    for step in ctx.run_udf_iter(dataset=ds, udf=FullNavResultUDF(), roi=roi):
        full = step.buffers[0]["full"].data
        merged = step.damage.data
        assert_array_equal(full[merged], firsts[merged])
        inside = np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi
        assert np.isnan(full[inside & ~merged]).all()
        assert (full[~inside] == -7).all()  # as get_results gave them, as in LiberTEM


class EmptyEntriesUDF(AnyBackendUDF):
    """A nav result with zero values per frame, returned nav-shaped."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"empty": self.buffer(kind="nav", extra_shape=(0,), dtype="float32", use="result_only")}

    def process_tile(self, tile: Any) -> None:
        pass

    def get_results(self) -> Mapping[str, Any]:
        return {"empty": np.zeros((*self.meta.dataset_shape.nav, 0), dtype=np.float32)}


def test_a_nav_result_with_empty_entries_keeps_its_shape(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[1, 2:5] = True
    res = ctx.run_udf(dataset=ctx.load("memory", data=random_counts(DATA_SHAPE)), udf=EmptyEntriesUDF(), roi=roi)
    assert res["empty"].data.shape == (*NAV_SHAPE, 0)
    assert res["empty"].raw_data.shape == (3, 0)
