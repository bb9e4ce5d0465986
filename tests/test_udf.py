"""The UDF life cycle of API.md §2.2-2.5, checked against plain NumPy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, UDFDefinitionError
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import (
    DATA_SHAPE,
    NAV_SHAPE,
    SIG_SHAPE,
    AnyBackendUDF,
    ExecutorCase,
    MaxUDF,
    ProbeUDF,
    ProcessCalledError,
    SumFrameUDF,
    SumPartitionUDF,
    SumTileUDF,
    selected_partitions,
)

NAV_AXES = (0, 1)
SIG_AXES = (2, 3)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


# ---------------------------------------------------------------- process methods


@pytest.mark.parametrize(
    ("udf_class", "depth"),
    [
        pytest.param(SumFrameUDF, None, id="frame"),
        pytest.param(SumTileUDF, None, id="tile"),
        pytest.param(SumTileUDF, 1, id="tile-depth-1"),
        pytest.param(SumTileUDF, 4, id="tile-depth-4"),
        pytest.param(SumPartitionUDF, None, id="partition"),
    ],
)
def test_every_process_method_gives_the_numpy_result(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, udf_class: type[UDF], depth: int | None
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=udf_class(depth=depth))
    assert_array_equal(res["per_frame"].data, data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=NAV_AXES, dtype=np.float64))
    assert_array_equal(res["count"].data, [math.prod(NAV_SHAPE)])


def _method_recorder(methods: tuple[str, ...]) -> type[UDF]:
    """A UDF class defining exactly ``methods``; each records its own code in ``called``."""
    codes = {"tile": 1, "frame": 2, "partition": 3}

    def make(method: str) -> Callable[[UDF, Any], None]:
        def process(self: UDF, data: Any) -> None:
            self.results.called[:] = codes[method]

        return process

    def get_result_buffers(self: UDF) -> Mapping[str, BufferDeclaration]:
        return {"called": self.buffer(kind="nav", dtype="int8")}

    namespace: dict[str, Any] = {f"process_{m}": make(m) for m in methods}
    namespace["get_result_buffers"] = get_result_buffers
    return type("Recorder_" + "_".join(methods), (AnyBackendUDF,), namespace)


@pytest.mark.parametrize(
    ("methods", "expected_code"),
    [
        pytest.param(("tile", "frame", "partition"), 1, id="all-three-use-tile"),
        pytest.param(("tile", "frame"), 1, id="tile-and-frame-use-tile"),
        pytest.param(("tile", "partition"), 1, id="tile-and-partition-use-tile"),
        pytest.param(("frame", "partition"), 2, id="frame-and-partition-use-frame"),
        pytest.param(("frame",), 2, id="frame-alone"),
        pytest.param(("partition",), 3, id="partition-alone"),
    ],
)
def test_process_method_precedence_is_tile_then_frame_then_partition(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, methods: tuple[str, ...], expected_code: int
) -> None:
    res = ctx.run_udf(dataset=load_partitioned(random_counts(DATA_SHAPE)), udf=_method_recorder(methods)())
    assert_array_equal(res["called"].data, np.full(NAV_SHAPE, expected_code))


class ChooseMethodUDF(AnyBackendUDF):
    """Defines all three process methods; ``get_method`` picks one by parameter."""

    def __init__(self, method: str) -> None:
        super().__init__(method=method)

    def get_method(self) -> str:
        return str(self.params.method)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"called": self.buffer(kind="nav", dtype="U9")}

    def process_tile(self, tile: Any) -> None:
        self.results.called[:] = "tile"

    def process_frame(self, frame: Any) -> None:
        self.results.called[:] = "frame"

    def process_partition(self, partition: Any) -> None:
        self.results.called[:] = "partition"


@pytest.mark.parametrize("method", ["tile", "frame", "partition"])
def test_get_method_override_selects_the_process_method(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, method: str
) -> None:
    res = ctx.run_udf(dataset=load_partitioned(random_counts(DATA_SHAPE)), udf=ChooseMethodUDF(method=method))
    assert_array_equal(res["called"].data, np.full(NAV_SHAPE, method))


def test_get_method_naming_a_method_the_udf_lacks_is_an_error(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    only_frame = _method_recorder(("frame",))
    lying = type("LyingUDF", (only_frame,), {"get_method": lambda self: "tile"})
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=r"LyingUDF\.get_method\(\) returned 'tile'"):
        ctx.run_udf(dataset=ds, udf=lying())


def test_get_method_naming_an_unknown_method_is_an_error(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match="returned 'pixel'"):
        ctx.run_udf(dataset=ds, udf=ChooseMethodUDF(method="pixel"))


class NoProcessUDF(AnyBackendUDF):
    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"x": self.buffer(kind="nav")}


def test_a_udf_without_process_method_is_rejected_by_name(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match="NoProcessUDF has no process method"):
        ctx.run_udf(dataset=ds, udf=NoProcessUDF())


class NoBuffersUDF(AnyBackendUDF):
    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


def test_a_udf_without_get_result_buffers_is_rejected_by_name(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=r"NoBuffersUDF must implement get_result_buffers\(\)"):
        ctx.run_udf(dataset=ds, udf=NoBuffersUDF())


# ---------------------------------------------------------------- positions seen by the UDF


ROI_CASES = [
    pytest.param(None, id="no-roi"),
    pytest.param("sparse", id="roi"),
]


def _roi_for(kind: str | None, rng: np.random.Generator) -> np.ndarray[Any, Any] | None:
    if kind is None:
        return None
    roi = rng.random(NAV_SHAPE) < 0.6
    roi[0, 0] = roi[-1, -1] = True
    roi[1, 2] = False
    return roi


@pytest.mark.parametrize(
    ("method", "depth"),
    [
        pytest.param("frame", None, id="frame"),
        pytest.param("tile", None, id="tile"),
        pytest.param("tile", 3, id="tile-depth-3"),
        pytest.param("partition", None, id="partition"),
    ],
)
@pytest.mark.parametrize("roi_kind", ROI_CASES)
def test_meta_positions_and_views_match_the_frames_of_each_call(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    rng: np.random.Generator,
    method: str,
    depth: int | None,
    roi_kind: str | None,
) -> None:
    ds = load_partitioned(random_counts(DATA_SHAPE))
    roi = _roi_for(roi_kind, rng)
    res = ctx.run_udf(dataset=ds, udf=ProbeUDF(method=method, depth=depth), roi=roi)

    flat_roi = np.ones(math.prod(NAV_SHAPE), dtype=bool) if roi is None else roi.reshape(-1)
    positions = np.flatnonzero(flat_roi)
    assert_array_equal(res["coords"].raw_data, np.stack(np.unravel_index(positions, NAV_SHAPE), axis=-1))

    starts = res["slice_start"].raw_data
    stops = res["slice_stop"].raw_data
    shapes = res["view_shapes"].raw_data
    extra = ProbeUDF.EXTRA
    calls = 0
    index = 0  # into the raw (selected, flat-ordered) entries
    for part in selected_partitions(ds, roi):
        part_index = slice(index, index + len(part))
        # preprocess and postprocess see the whole partition
        assert_array_equal(res["pre_start"].raw_data[part_index], part[0])
        assert_array_equal(res["pre_stop"].raw_data[part_index], part[-1] + 1)
        assert_array_equal(res["post_frames"].raw_data[part_index], len(part))
        i = 0
        while i < len(part):
            n = shapes[index + i]["frames"]
            if method == "frame":
                assert n == 1
            elif method == "partition":
                assert n == len(part)
            else:
                assert 1 <= n <= len(part) - i
                assert depth is None or n <= depth
            call = part[i : i + n]
            for k in range(n):
                assert starts[index + i + k] == call[0]
                assert stops[index + i + k] == call[-1] + 1
                assert shapes[index + i + k] == {
                    "plain": (n,),
                    "with_extra": extra if method == "frame" else (n, *extra),
                    "sig": SIG_SHAPE,
                    "single": (1,),
                    "data": SIG_SHAPE if method == "frame" else (n, *SIG_SHAPE),
                    "frames": n,
                }
            i += n
            calls += 1
        index += len(part)
    assert index == len(positions)
    assert_array_equal(res["sig_calls"].data, np.full(SIG_SHAPE, calls))
    assert_array_equal(res["frames_seen"].data, [len(positions)])


@pytest.mark.parametrize("method", ["frame", "tile", "partition"])
@pytest.mark.parametrize("nav", [(13,), (3, 2, 5)], ids=["nav1", "nav3"])
def test_meta_coordinates_fit_any_nav_rank(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, nav: tuple[int, ...], method: str
) -> None:
    ds = load_partitioned(random_counts((*nav, 4, 3)))
    res = ctx.run_udf(dataset=ds, udf=ProbeUDF(method=method, depth=2))
    assert res["coords"].data.shape == (*nav, len(nav))
    assert_array_equal(res["coords"].data, np.moveaxis(np.indices(nav), 0, -1))
    flat = np.arange(math.prod(nav)).reshape(nav)
    assert (res["slice_start"].data <= flat).all()
    assert (flat < res["slice_stop"].data).all()


# ---------------------------------------------------------------- preprocess / postprocess


def test_preprocess_runs_on_the_host_so_merging_starts_from_its_initial_values(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = -1 - random_counts(DATA_SHAPE)  # all negative: a zero start would win the maximum
    res = ctx.run_udf(dataset=load_partitioned(data), udf=MaxUDF())
    assert_array_equal(res["maxbuf"].data, data.max(axis=NAV_AXES))


class ObjectListUDF(AnyBackendUDF):
    """Collects the flat positions it saw in a Python list (an object ``single`` buffer)."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"seen": self.buffer(kind="single", dtype=object)}

    def preprocess(self) -> None:
        self.results.seen[0] = []

    def process_frame(self, frame: Any) -> None:
        self.results.seen[0].append(int(self.meta.flat_positions[0]))

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.seen[0] = dest.seen[0] + src.seen[0]


def test_merging_object_buffers_starts_from_the_preprocess_value(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    res = ctx.run_udf(dataset=load_partitioned(random_counts(DATA_SHAPE)), udf=ObjectListUDF())
    assert sorted(res["seen"].data[0]) == list(range(math.prod(NAV_SHAPE)))


class PostprocessUDF(AnyBackendUDF):
    """``scaled`` is filled in postprocess from what the partition's frames wrote."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "scaled": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.total += frame

    def postprocess(self) -> None:
        self.results.scaled[:] = self.results.per_frame * 10
        self.results.total *= 2

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.per_frame[:] = src.per_frame
        dest.scaled[:] = src.scaled
        dest.total += src.total


def test_postprocess_runs_once_per_partition_after_its_last_frame(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=PostprocessUDF())
    assert_array_equal(res["scaled"].data, 10 * data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["total"].data, 2 * data.sum(axis=NAV_AXES, dtype=np.float64))


# ---------------------------------------------------------------- merge


class NavOnlyUDF(AnyBackendUDF):
    """Nav buffers only, no merge of its own: the default merge places them."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "frame_sum": self.buffer(kind="nav", dtype="float64"),
            "corners": self.buffer(kind="nav", extra_shape=(2,), dtype="float32"),
        }

    def process_tile(self, tile: Any) -> None:
        self.results.frame_sum[:] = self.xp.sum(tile, axis=(1, 2))
        self.results.corners[:, 0] = tile[:, 0, 0]
        self.results.corners[:, 1] = tile[:, -1, -1]


def test_default_merge_puts_nav_buffers_in_place(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=NavOnlyUDF())
    assert_array_equal(res["frame_sum"].data, data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["corners"].data, np.stack([data[..., 0, 0], data[..., -1, -1]], axis=-1))


class OffsetMergeUDF(AnyBackendUDF):
    """A custom merge that checks what it is given and writes a shifted nav slice."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
            "merges": self.buffer(kind="single", dtype="int64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.total += frame

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        assert self.xp is np
        for name in ("per_frame", "total", "merges"):
            assert type(getattr(dest, name)) is np.ndarray
            assert type(getattr(src, name)) is np.ndarray
            assert getattr(dest, name).shape == getattr(src, name).shape
        dest.per_frame[:] = src.per_frame + 1000
        dest.total += src.total
        dest.merges += 1


def test_custom_merge_gets_numpy_views_with_the_partition_slice_of_nav_buffers(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load_partitioned(data)
    res = ctx.run_udf(dataset=ds, udf=OffsetMergeUDF())
    assert_array_equal(res["per_frame"].data, 1000 + data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=NAV_AXES, dtype=np.float64))
    assert_array_equal(res["merges"].data, [len(ds.get_partitions())])


# ---------------------------------------------------------------- get_results


class NormalisedUDF(AnyBackendUDF):
    """Private accumulators; ``mean`` and ``fraction`` computed in get_results."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64", use="private"),
            "frames": self.buffer(kind="single", dtype="int64", use="private"),
            "mean": self.buffer(kind="sig", dtype="float64", use="result_only"),
            "fraction": self.buffer(kind="nav", dtype="float64", use="result_only"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.total += frame
        self.results.frames += 1

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.per_frame[:] = src.per_frame
        dest.total += src.total
        dest.frames += src.frames

    def get_results(self) -> Mapping[str, Any]:
        assert self.xp is np
        per_frame = self.results.per_frame
        assert per_frame.shape == (self.meta.dataset_shape.nav.size,)  # LiberTEM's view: flat
        return {
            "mean": self.results.total / self.results.frames[0],
            "fraction": per_frame / np.nansum(per_frame),
        }


def test_get_results_computes_result_only_buffers_from_private_ones(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=NormalisedUDF())
    assert set(res) == {"per_frame", "mean", "fraction"}
    np.testing.assert_allclose(res["mean"].data, data.mean(axis=NAV_AXES, dtype=np.float64), rtol=1e-12)
    sums = data.sum(axis=SIG_AXES, dtype=np.float64)
    np.testing.assert_allclose(res["fraction"].data, sums / sums.sum(), rtol=1e-12)


class DoublingResultsUDF(SumFrameUDF):
    """Replaces a declared buffer with what get_results returns."""

    def get_results(self) -> Mapping[str, Any]:
        return {"per_frame": 2 * self.results.per_frame}


def test_get_results_replaces_the_buffers_it_returns_and_keeps_the_others(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=DoublingResultsUDF())
    assert set(res) == {"per_frame", "total", "count"}
    assert_array_equal(res["per_frame"].data, 2 * data.sum(axis=SIG_AXES, dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=NAV_AXES, dtype=np.float64))


# ---------------------------------------------------------------- task data


class TaskDataUDF(AnyBackendUDF):
    """Weights made once per worker in get_task_data, read by attribute and by item."""

    def get_task_data(self) -> Mapping[str, Any]:
        sig = self.meta.dataset_shape.sig
        return {"weights": self.xp.arange(math.prod(sig), dtype=self.meta.input_dtype).reshape(sig)}

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "by_attribute": self.buffer(kind="nav", dtype="float64"),
            "by_item": self.buffer(kind="nav", dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.by_attribute[:] = self.xp.sum(frame * self.task_data.weights)
        self.results.by_item[:] = self.xp.sum(frame * self.task_data["weights"])


def test_task_data_is_available_by_attribute_and_by_item(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=TaskDataUDF())
    weights = np.arange(math.prod(SIG_SHAPE), dtype=np.float64).reshape(SIG_SHAPE)
    expected = (data * weights).sum(axis=SIG_AXES)
    assert_array_equal(res["by_attribute"].data, expected)
    assert_array_equal(res["by_item"].data, expected)


class MissingTaskDataUDF(TaskDataUDF):
    def process_frame(self, frame: Any) -> None:
        self.results.by_item[:] = self.xp.sum(self.task_data.mask)


def test_reading_a_missing_task_data_entry_names_the_entries(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(AttributeError, match=r"task data has no entry 'mask'; entries: \['weights'\]"):
        ctx.run_udf(dataset=ds, udf=MissingTaskDataUDF())


# ---------------------------------------------------------------- input dtype


class DTypeProbeUDF(AnyBackendUDF):
    """Records the dtype of the frames it gets; ``first`` keeps the first pixel in the input dtype."""

    def __init__(self, preferred: Any = None) -> None:
        super().__init__(preferred=preferred)

    def get_preferred_input_dtype(self) -> Any:
        if self.params.preferred is None:
            return super().get_preferred_input_dtype()
        return self.params.preferred

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "first": self.buffer(kind="nav", dtype=self.meta.input_dtype),
            "seen": self.buffer(kind="nav", dtype=object),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.first[:] = frame[0, 0]
        self.results.seen[0] = (str(frame.dtype), str(self.meta.input_dtype), str(self.meta.dataset_dtype))


@pytest.mark.parametrize(
    ("data_dtype", "preferred", "expected"),
    [
        pytest.param("uint16", None, "float32", id="uint16-default-float32"),
        pytest.param("uint16", UDF.USE_NATIVE_DTYPE, "uint16", id="uint16-native-stays-uint16"),
        pytest.param("float64", None, "float64", id="float64-default-float64"),
        pytest.param("int32", None, "float64", id="int32-default-float64"),
        pytest.param("uint8", np.float16, "float16", id="uint8-prefers-float16"),
        pytest.param("uint16", np.int8, "int32", id="uint16-prefers-int8-gives-int32"),
        pytest.param("float32", UDF.USE_NATIVE_DTYPE, "float32", id="float32-native"),
        pytest.param("complex64", None, "complex64", id="complex64-default"),
        pytest.param("bool", UDF.USE_NATIVE_DTYPE, "bool", id="bool-native"),
    ],
)
def test_input_dtype_is_the_result_type_of_preferred_and_data(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    rng: np.random.Generator,
    data_dtype: str,
    preferred: Any,
    expected: str,
) -> None:
    high = 2 if data_dtype == "bool" else 100
    data = rng.integers(0, high, size=DATA_SHAPE).astype(data_dtype)
    if data_dtype == "uint16":
        data[0, 0, 0, 0] = 65535  # survives only without a narrowing cast
    res = ctx.run_udf(dataset=load_partitioned(data), udf=DTypeProbeUDF(preferred=preferred))
    assert res["first"].dtype == np.dtype(expected)
    assert_array_equal(res["first"].data, data[..., 0, 0].astype(expected))
    assert set(res["seen"].data.reshape(-1)) == {(expected, expected, data_dtype)}


# ---------------------------------------------------------------- params and meta


class ParamsUDF(AnyBackendUDF):
    def __init__(self, factor: float, offset: float = 0.0) -> None:
        super().__init__(factor=factor, offset=offset)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"value": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        self.results.value[:] = self.xp.sum(frame) * self.params.factor + self.params["offset"]


def test_params_are_the_constructor_arguments_by_attribute_and_item(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    udf = ParamsUDF(3, offset=2.5)
    assert udf.params.factor == 3
    assert udf.params["offset"] == 2.5
    res = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    assert_array_equal(res["value"].data, data.sum(axis=SIG_AXES, dtype=np.float64) * 3 + 2.5)


class MetaProbeUDF(AnyBackendUDF):
    """Records ``self.meta`` and ``self.xp`` as each frame saw them."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"meta": self.buffer(kind="nav", dtype=object)}

    def process_frame(self, frame: Any) -> None:
        meta = self.meta
        self.results.meta[0] = {
            "shape_type": type(meta.dataset_shape),
            "dataset_shape": tuple(meta.dataset_shape),
            "nav": meta.dataset_shape.nav,
            "sig": meta.dataset_shape.sig,
            "dataset_dtype": meta.dataset_dtype,
            "input_dtype": meta.input_dtype,
            "roi": meta.roi,
            "device_class": meta.device_class,
            "device_id": meta.device_id,
            "array_backend": meta.array_backend,
            "frame_is_xp_array": type(frame) is type(self.xp.zeros(0)),
        }


@pytest.mark.parametrize(
    ("nav", "sig"),
    [
        pytest.param((13,), (17,), id="nav1-sig1"),
        pytest.param(NAV_SHAPE, SIG_SHAPE, id="nav2-sig2"),
        pytest.param((3, 2, 5), (3, 4, 5), id="nav3-sig3"),
    ],
)
def test_meta_describes_dataset_dtypes_and_device(
    ctx: gpuudf.Context,
    executor_case: ExecutorCase,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    nav: tuple[int, ...],
    sig: tuple[int, ...],
) -> None:
    data = random_counts((*nav, *sig), dtype="uint16")
    res = ctx.run_udf(dataset=load_partitioned(data, sig_dims=len(sig)), udf=MetaProbeUDF())
    expected = {
        "shape_type": gpuudf.Shape,
        "dataset_shape": (*nav, *sig),
        "nav": nav,
        "sig": sig,
        "dataset_dtype": np.dtype("uint16"),
        "input_dtype": np.dtype("float32"),
        "roi": None,
        "device_class": executor_case.device_class,
        "device_id": executor_case.device_id,
        "array_backend": executor_case.array_backend,
        "frame_is_xp_array": True,
    }
    for seen in res["meta"].data.reshape(-1):
        assert seen == expected


# ---------------------------------------------------------------- forbuf and where


class ForbufUDF(AnyBackendUDF):
    """Accumulates into a host buffer and a default buffer, converting with forbuf."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "on_host": self.buffer(kind="sig", dtype="float64", where="host"),
            "default": self.buffer(kind="sig", dtype="float64"),
            "types_ok": self.buffer(kind="nav", dtype=bool),
        }

    def process_frame(self, frame: Any) -> None:
        host = self.results.on_host
        default = self.results.default
        to_host = self.forbuf(frame, host)
        to_default = self.forbuf(frame, default)
        host_weights = np.ones(host.shape)
        self.results.types_ok[:] = (
            type(to_host) is np.ndarray
            and type(to_default) is type(default)
            and type(self.forbuf(host_weights, default)) is type(default)
        )
        host += to_host
        default += to_default

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.on_host += src.on_host
        dest.default += src.default
        dest.types_ok[:] = src.types_ok


def test_forbuf_converts_arrays_to_the_module_of_the_target_buffer(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=ForbufUDF())
    expected = data.sum(axis=NAV_AXES, dtype=np.float64)
    assert_array_equal(res["on_host"].data, expected)
    assert_array_equal(res["default"].data, expected)
    assert res["types_ok"].data.all()


# ---------------------------------------------------------------- clean copies


class StatefulUDF(AnyBackendUDF):
    """``offset`` is state outside the constructor's parameters."""

    offset = 0

    def __init__(self, scale: int | None = None) -> None:
        if scale is None:
            scale = 5  # defaults may be filled in before super().__init__
        super().__init__(scale=scale)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"value": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        self.results.value[:] = self.xp.sum(frame) * self.params.scale + self.offset


def test_copy_re_creates_the_udf_from_its_parameters() -> None:
    udf = StatefulUDF(scale=3)
    udf.offset = 100
    twin = udf.copy()
    assert type(twin) is StatefulUDF
    assert twin is not udf
    assert twin.params == udf.params
    assert repr(twin) == repr(udf) == "StatefulUDF(scale=3)"
    assert twin.offset == 0


def test_state_set_outside_the_constructor_does_not_reach_workers(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    udf = StatefulUDF()
    udf.offset = 100
    res = ctx.run_udf(dataset=load_partitioned(data), udf=udf)
    assert_array_equal(res["value"].data, data.sum(axis=SIG_AXES, dtype=np.float64) * 5)


class RenamingUDF(AnyBackendUDF):
    def __init__(self, radius: int = 1) -> None:
        super().__init__(r=radius)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        raise ProcessCalledError


class UninitialisedUDF(RenamingUDF):
    def __init__(self) -> None:
        pass


class DriftingUDF(RenamingUDF):
    def __init__(self, **kwargs: Any) -> None:
        UDF.__init__(self, **{name + "_": value for name, value in kwargs.items()})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: RenamingUDF(radius=2), r"RenamingUDF cannot be re-created", id="renamed-parameter"),
        pytest.param(UninitialisedUDF, r"UninitialisedUDF was never initialised", id="no-super-init"),
        pytest.param(lambda: DriftingUDF(a=1), r"DriftingUDF re-created .* must round-trip", id="drifting-parameters"),
    ],
)
def test_a_udf_that_cannot_be_re_created_fails_before_any_frame_naming_its_class(
    ctx: gpuudf.Context, random_counts: CountsFn, make: Callable[[], UDF], message: str
) -> None:
    udf = make()
    with pytest.raises(UDFDefinitionError, match=message):
        udf.copy()
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(UDFDefinitionError, match=message):
        ctx.run_udf(dataset=ds, udf=udf)


def test_use_native_dtype_is_exposed_on_the_udf_class() -> None:
    native = UDF.USE_NATIVE_DTYPE
    for dtype in ("uint16", "int8", "float16", "complex128"):
        assert np.result_type(native, np.dtype(dtype)) == np.dtype(dtype)


def test_a_constructor_that_changes_its_parameters_is_refused_by_name() -> None:
    class Doubling(gpuudf.UDF):
        def __init__(self, factor: float = 1.0) -> None:
            super().__init__(factor=2 * factor)

        def get_result_buffers(self) -> dict[str, Any]:
            return {"x": self.buffer(kind="nav")}

        def process_frame(self, frame: Any) -> None:
            self.results.x[:] = self.params.factor

    with pytest.raises(UDFDefinitionError, match=r"Doubling changes its parameters \['factor'\]"):
        Doubling(factor=2.0).copy()


class CleanupUDF(AnyBackendUDF):
    """Counts, per partition, ``postprocess`` and then ``cleanup`` (LiberTEM's hook after it)."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"calls": self.buffer(kind="single", extra_shape=(2,), dtype="int64")}

    def process_tile(self, tile: Any) -> None:
        pass

    def postprocess(self) -> None:
        self.results.calls[0] += 1

    def cleanup(self) -> None:
        self.results.calls[1] += int(self.results.calls[0])  # 1: postprocess came first

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.calls += src.calls


def test_cleanup_runs_once_per_partition_after_postprocess(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    ds = load_partitioned(random_counts(DATA_SHAPE))
    partitions = len(ds.get_partitions())
    assert_array_equal(ctx.run_udf(dataset=ds, udf=CleanupUDF())["calls"].data, [partitions, partitions])
