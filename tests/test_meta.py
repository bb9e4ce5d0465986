"""``self.meta`` as LiberTEM's ``UDFMeta``: slices, coordinates, shapes, valid masks, threads.

The expected ``meta.slice`` values of :data:`LIBERTEM_SLICES` were recorded
with LiberTEM 0.16 (``MemoryDataSet(data, num_partitions=3, tileshape=(3, 3, 4))``
on the inline executor, same data, ROI and process method).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import Shape, Slice, UDFMethod
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.context import UDFResultsIterator
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE, AnyBackendUDF, ExecutorCase, selected_partitions

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

METHODS = ["frame", "tile", "partition"]

#: Selects frames in every partition layout of ``load_partitioned``, but not all.
ROI = np.random.default_rng(5).random(NAV_SHAPE) < 0.5
ROI[0, 0] = ROI[4, 6] = True
ROI[1, :] = False

#: The dataset LiberTEM ran: 24 frames in three partitions of 8, tiles of 3 frames.
LT_NAV, LT_SIG = (4, 6), (3, 4)
LT_ROI = np.zeros(LT_NAV, dtype=bool)
LT_ROI.flat[[0, 2, 3, 9, 10, 17, 23]] = True

#: Per selected frame, ``meta.slice`` in the call that processed it in LiberTEM 0.16: origin[0], shape[0].
LIBERTEM_SLICES = {
    ("frame", False): (list(range(24)), [1] * 24),
    ("tile", False): (
        [0, 0, 0, 3, 3, 3, 6, 6, 8, 8, 8, 11, 11, 11, 14, 14, 16, 16, 16, 19, 19, 19, 22, 22],
        [3, 3, 3, 3, 3, 3, 2, 2] * 3,
    ),
    ("partition", False): ([0] * 8 + [8] * 8 + [16] * 8, [8] * 24),
    ("frame", True): (list(range(7)), [1] * 7),
    ("tile", True): ([0, 0, 0, 3, 3, 5, 5], [3, 3, 3, 2, 2, 2, 2]),
    ("partition", True): ([0, 0, 0, 3, 3, 5, 5], [3, 3, 3, 2, 2, 2, 2]),
}
#: Per selected frame, ``meta.slice`` in ``preprocess`` (the partition) and ``partition_shape[0]``, in LiberTEM 0.16.
LIBERTEM_PARTITIONS = {
    False: ([0] * 8 + [8] * 8 + [16] * 8, [8] * 24),
    True: ([0, 0, 0, 3, 3, 5, 5], [3, 3, 3, 2, 2, 2, 2]),
}


class SliceProbeUDF(AnyBackendUDF):
    """Records ``meta.slice`` and what it selects, per frame, for the call that processed the frame.

    ``lookup`` is a flat array with one entry per selected frame (compressed
    to the ROI); ``picked`` gets its entries through ``meta.slice.get``.
    """

    def __init__(self, lookup: np.ndarray[Any, Any], method: str = "frame", depth: int | None = None) -> None:
        super().__init__(lookup=lookup, method=method, depth=depth)

    def get_method(self) -> UDFMethod:
        return UDFMethod(self.params.method)

    def get_tiling_preferences(self) -> Mapping[str, int]:
        return {} if self.params.depth is None else {"depth": self.params.depth}

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        nav_dims = len(self.meta.dataset_shape.nav)
        return {
            "origin": self.buffer(kind="nav", dtype="int64"),
            "count": self.buffer(kind="nav", dtype="int64"),
            "pre_origin": self.buffer(kind="nav", dtype="int64"),
            "pre_count": self.buffer(kind="nav", dtype="int64"),
            "partition_frames": self.buffer(kind="nav", dtype="int64"),
            "picked": self.buffer(kind="nav", dtype="int64"),
            "picked_by_get": self.buffer(kind="nav", dtype="int64"),
            "coords": self.buffer(kind="nav", extra_shape=(nav_dims,), dtype="int64"),
            "checks": self.buffer(kind="nav", dtype=object),
        }

    def preprocess(self) -> None:
        block = self.meta.slice
        if block is None:  # LiberTEM's host preprocess has no position
            return
        self.results.pre_origin[:] = block.origin[0]
        self.results.pre_count[:] = block.shape[0]

    def _record(self, data: Any) -> None:
        meta, results = self.meta, self.results
        block = meta.slice
        assert isinstance(block, Slice)
        results.origin[:] = block.origin[0]
        results.count[:] = block.shape[0]
        results.partition_frames[:] = meta.partition_shape[0]
        results.picked[:] = self.params.lookup[block.get(nav_only=True)]
        results.picked_by_get[:] = block.get(self.params.lookup, nav_only=True)
        results.coords[:] = self.xp.asarray(meta.coordinates.reshape(results.coords.shape))
        sig = meta.dataset_shape.sig
        checks = {
            "sig_part": (block.origin[1:], tuple(block.shape)[1:], block.shape.sig_dims),
            "sig_slice": meta.sig_slice == Slice.from_shape(tuple(sig), sig_dims=len(sig)),
            "sig_only_keeps_data": tuple(block.get(data, sig_only=True).shape) == tuple(data.shape),
            "frames_match": block.shape[0] == len(meta.coordinates),
        }
        for i in range(len(results.checks)):
            results.checks[i] = checks

    def process_frame(self, frame: Any) -> None:
        self._record(frame)

    def process_tile(self, tile: Any) -> None:
        self._record(tile)

    def process_partition(self, partition: Any) -> None:
        self._record(partition)


def lookup_for(roi: np.ndarray[Any, Any] | None, nav_size: int) -> np.ndarray[Any, Any]:
    """Distinct values, one per selected frame, in the order of the ROI's frames."""
    selected = nav_size if roi is None else int(np.count_nonzero(roi))
    return 10 * np.arange(selected, dtype=np.int64) + 7


@pytest.mark.parametrize("with_roi", [False, True], ids=["no-roi", "roi"])
@pytest.mark.parametrize("method", METHODS)
def test_slice_matches_libertem_for_the_same_data_roi_and_method(
    ctx: gpuudf.Context, random_counts: CountsFn, method: str, with_roi: bool
) -> None:
    roi = LT_ROI if with_roi else None
    dataset = ctx.load(
        "memory", data=random_counts((*LT_NAV, *LT_SIG)), num_partitions=3, tileshape=(3, *LT_SIG), sig_dims=2
    )

    res = ctx.run_udf(dataset=dataset, udf=SliceProbeUDF(lookup_for(roi, 24), method), roi=roi)

    origins, counts = LIBERTEM_SLICES[method, with_roi]
    assert res["origin"].raw_data.tolist() == origins
    assert res["count"].raw_data.tolist() == counts
    partition_origins, partition_frames = LIBERTEM_PARTITIONS[with_roi]
    assert res["pre_origin"].raw_data.tolist() == partition_origins
    assert res["pre_count"].raw_data.tolist() == partition_frames
    assert res["partition_frames"].raw_data.tolist() == partition_frames
    for checks in res["checks"].raw_data:
        assert checks["sig_part"] == ((0, 0), LT_SIG, 2)


@pytest.mark.parametrize("with_roi", [False, True], ids=["no-roi", "roi"])
@pytest.mark.parametrize("method", METHODS)
def test_slice_get_picks_the_current_frames_from_a_flat_array_compressed_to_the_roi(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, method: str, with_roi: bool
) -> None:
    roi = ROI if with_roi else None
    dataset = load_partitioned(random_counts(DATA_SHAPE))
    lookup = lookup_for(roi, dataset.shape.nav_size)

    res = ctx.run_udf(dataset=dataset, udf=SliceProbeUDF(lookup, method, depth=3), roi=roi)

    assert_array_equal(res["picked"].raw_data, lookup)
    assert_array_equal(res["picked_by_get"].raw_data, lookup)
    ranks = np.arange(len(lookup))
    origins, counts = res["origin"].raw_data, res["count"].raw_data
    assert np.all((origins <= ranks) & (ranks < origins + counts))
    for checks in res["checks"].raw_data:
        assert checks["sig_part"] == ((0, 0), SIG_SHAPE, 2)
        assert checks["sig_only_keeps_data"]
        assert checks["frames_match"]


@pytest.mark.parametrize("with_roi", [False, True], ids=["no-roi", "roi"])
def test_partition_shape_and_the_preprocess_slice_are_the_partitions_selected_frames(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, with_roi: bool
) -> None:
    roi = ROI if with_roi else None
    dataset = load_partitioned(random_counts(DATA_SHAPE))

    res = ctx.run_udf(dataset=dataset, udf=SliceProbeUDF(lookup_for(roi, 35), "tile", depth=2), roi=roi)

    groups = selected_partitions(dataset, roi)
    starts = np.cumsum([0] + [len(g) for g in groups])[:-1]
    assert_array_equal(res["pre_origin"].raw_data, np.repeat(starts, [len(g) for g in groups]))
    expected_frames = np.repeat([len(g) for g in groups], [len(g) for g in groups])
    assert_array_equal(res["pre_count"].raw_data, expected_frames)
    assert_array_equal(res["partition_frames"].raw_data, expected_frames)


@pytest.mark.parametrize("with_roi", [False, True], ids=["no-roi", "roi"])
@pytest.mark.parametrize("method", METHODS)
def test_coordinates_are_the_nav_coordinates_of_the_frames_the_slice_spans(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, method: str, with_roi: bool
) -> None:
    roi = ROI if with_roi else None
    dataset = load_partitioned(random_counts(DATA_SHAPE))

    res = ctx.run_udf(dataset=dataset, udf=SliceProbeUDF(lookup_for(roi, 35), method, depth=3), roi=roi)

    mask = np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi
    assert_array_equal(res["coords"].raw_data, np.argwhere(mask))
    assert all(checks["frames_match"] for checks in res["checks"].raw_data)


def test_sig_slice_is_the_whole_frame(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=2)

    res = ctx.run_udf(dataset=dataset, udf=SliceProbeUDF(lookup_for(None, 35), "tile"))

    assert all(checks["sig_slice"] for checks in res["checks"].raw_data)


class HostMetaUDF(AnyBackendUDF):
    """Records what ``meta`` says on workers (``seen``) and on the host (``host``).

    ``rank`` holds each frame's position among the selected frames, so that
    ``merge`` knows which frames the partition it merges holds.
    """

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "rank": self.buffer(kind="nav", dtype="int64"),
            "seen": self.buffer(kind="single", dtype=object),
            "host": self.buffer(kind="single", dtype=object, use="result_only"),
        }

    def process_tile(self, tile: Any) -> None:
        meta = self.meta
        block = meta.slice
        assert block is not None
        self.results.rank[:] = self.xp.arange(block.origin[0], block.origin[0] + block.shape[0])
        shape = meta.dataset_shape
        self.results.seen[0] = {
            "threads_per_worker": meta.threads_per_worker,
            "roi": None if meta.roi is None else meta.roi.copy(),
            "nav_size": shape.nav.size,
            "nav_dims": shape.nav.dims,
            "sig_dims": shape.sig.dims,
            "sig_size": shape.sig.size,
            "nav_is_shape": isinstance(shape.nav, Shape) and shape.nav.sig_dims == 0,
            "valid_mask": meta.get_valid_nav_mask(),
            "valid_mask_full": meta.get_valid_nav_mask(full_nav=True),
        }

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.rank[:] = src.rank
        dest.seen[0] = src.seen[0]
        mask = self.meta.get_valid_nav_mask()
        full = self.meta.get_valid_nav_mask(full_nav=True)
        assert mask is not None
        assert full is not None
        self._merges = [*getattr(self, "_merges", []), (self.meta.slice, mask.copy(), full.copy(), src.rank.copy())]

    def get_results(self) -> Mapping[str, Any]:
        host = np.empty(1, dtype=object)
        host[0] = {
            "merges": self._merges,
            "slice": self.meta.slice,
            "valid_mask": self.meta.get_valid_nav_mask(),
            "valid_mask_full": self.meta.get_valid_nav_mask(full_nav=True),
        }
        return {"host": host}


def test_threads_per_worker_is_none_inline_and_one_on_cpu_worker_processes(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)

    res = ctx.run_udf(dataset=dataset, udf=HostMetaUDF())

    in_cpu_worker = executor_case.in_processes and executor_case.device_class == "cpu"
    assert res["seen"].data[0]["threads_per_worker"] == (1 if in_cpu_worker else None)


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_meta_describes_the_dataset_and_roi_with_libertems_shape_parts(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: Any
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)

    res = ctx.run_udf(dataset=dataset, udf=HostMetaUDF(), roi=roi)

    seen = res["seen"].data[0]
    assert (seen["nav_size"], seen["nav_dims"], seen["sig_dims"], seen["sig_size"]) == (35, 2, 2, 99)
    assert seen["nav_is_shape"]
    if roi is None:
        assert seen["roi"] is None
    else:
        assert_array_equal(seen["roi"], roi)


def test_valid_nav_mask_is_none_on_workers(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)

    res = ctx.run_udf(dataset=dataset, udf=HostMetaUDF(), roi=ROI)

    assert res["seen"].data[0]["valid_mask"] is None
    assert res["seen"].data[0]["valid_mask_full"] is None


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_slice_is_none_and_the_valid_mask_holds_the_frames_merged_before_in_merge(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, roi: Any
) -> None:
    dataset = load_partitioned(random_counts(DATA_SHAPE))
    mask = np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi
    selected = int(mask.sum())

    res = ctx.run_udf(dataset=dataset, udf=HostMetaUDF(), roi=roi)

    host = res["host"].data[0]
    assert len(host["merges"]) == len(selected_partitions(dataset, roi))
    merged = np.zeros(selected, dtype=bool)
    for block, valid, valid_full, ranks in host["merges"]:
        assert block is None
        assert_array_equal(valid, merged)  # compressed to the ROI, the partitions merged before this one
        full = np.zeros(NAV_SHAPE, dtype=bool)
        full[mask] = merged
        assert_array_equal(valid_full, full.reshape(-1))
        merged[ranks] = True
    assert merged.all()


@pytest.mark.parametrize("roi", [None, ROI], ids=["no-roi", "roi"])
def test_slice_is_none_and_the_valid_mask_holds_every_merged_frame_in_get_results(
    ctx: gpuudf.Context, random_counts: CountsFn, roi: Any
) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    mask = np.ones(NAV_SHAPE, dtype=bool) if roi is None else roi

    res = ctx.run_udf(dataset=dataset, udf=HostMetaUDF(), roi=roi)

    host = res["host"].data[0]
    assert host["slice"] is None
    assert_array_equal(host["valid_mask"], np.ones(int(mask.sum()), dtype=bool))
    assert_array_equal(host["valid_mask_full"], mask.reshape(-1))


def test_partial_results_see_only_the_merged_frames_as_valid(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    dataset = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    valid_counts = []

    steps = ctx.run_udf_iter(dataset=dataset, udf=HostMetaUDF(), roi=ROI)
    assert isinstance(steps, UDFResultsIterator)
    for part in steps:
        host = part.buffers[0]["host"].data[0]
        valid_counts.append(int(np.count_nonzero(host["valid_mask"])))
        assert host["valid_mask"].shape == (int(ROI.sum()),)
        assert np.count_nonzero(host["valid_mask_full"]) == valid_counts[-1]

    per_partition = [len(group) for group in selected_partitions(dataset, ROI)]
    assert valid_counts[-1] == sum(per_partition)
    assert all(a < b for a, b in itertools.pairwise(valid_counts))
