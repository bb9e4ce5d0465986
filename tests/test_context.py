"""The Context (API.md §4): construction, load, sync and async runs, progress.

Also the results iterators of ``run_udf_iter`` beyond iteration: ``throw``/``athrow``
and ``update_parameters_experimental`` (LiberTEM's names and meaning).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDFRunCancelled
from gpuudf.context import AsyncUDFResultsIterator, UDFResultsIterator
from gpuudf.datasets import DataSet
from gpuudf.executors import EXECUTOR_SPECS, InlineExecutor
from tests.udfs_for_tests import (
    DATA_SHAPE,
    NAV_SHAPE,
    CallLog,
    ExecutorCase,
    MaxUDF,
    RecordingSumUDF,
    SumFrameUDF,
    SumTileUDF,
    process_calls,
    save_data_file,
)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


def _check_sums(res: dict[str, gpuudf.BufferWrapper], data: np.ndarray[Any, Any]) -> None:
    assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3), dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=(0, 1), dtype=np.float64))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: gpuudf.Context(executor=InlineExecutor()), id="explicit-inline-executor"),
        pytest.param(lambda: gpuudf.Context.make_with("inline"), id="make-with-inline"),
        pytest.param(lambda: gpuudf.Context.make_with("inline", device="cpu"), id="make-with-inline-cpu"),
        pytest.param(gpuudf.Context, id="default"),
    ],
)
def test_contexts_made_every_documented_way_run_udfs(
    make: Callable[[], gpuudf.Context], random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    with make() as ctx:
        assert isinstance(ctx, gpuudf.Context)
        res = ctx.run_udf(dataset=ctx.load("memory", data=data, num_partitions=3), udf=SumFrameUDF())
    _check_sums(res, data)


def test_make_with_inline_uses_the_inline_executor() -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        assert isinstance(ctx.executor, InlineExecutor)
        assert repr(ctx) == "Context(executor=InlineExecutor(device='cpu'))"


def test_make_with_an_unknown_executor_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown executor 'threads'; available: 'inline'"):
        gpuudf.Context.make_with("threads")


def make_debug_executor(device: str = "cpu") -> InlineExecutor:
    """A spec registered by a test: the inline executor under another name."""
    return InlineExecutor(device)


@pytest.fixture
def debug_spec() -> Iterator[str]:
    EXECUTOR_SPECS.register("debug", make_debug_executor)
    try:
        yield "debug"
    finally:
        EXECUTOR_SPECS.unregister("debug")


def test_the_built_in_executor_specs_are_registered_in_the_order_errors_list_them() -> None:
    assert EXECUTOR_SPECS.names()[:2] == ("inline", "local")
    assert EXECUTOR_SPECS.lookup("inline") is InlineExecutor


def test_a_registered_executor_spec_is_taken_by_make_with_with_its_keywords(debug_spec: str) -> None:
    with gpuudf.Context.make_with(debug_spec, device="sim:0") as ctx:
        assert isinstance(ctx.executor, InlineExecutor)
        assert repr(ctx) == "Context(executor=InlineExecutor(device='sim:0'))"


def test_make_with_an_unknown_executor_lists_every_registered_spec_in_order(debug_spec: str) -> None:
    with pytest.raises(
        gpuudf.ExecutorSpecException,
        match=r"^unknown executor 'threads'; available: 'inline', 'local', (.*, )?'debug'$",
    ):
        gpuudf.Context.make_with("threads")


def test_a_registered_spec_given_an_argument_it_does_not_take_is_an_executor_spec_exception(debug_spec: str) -> None:
    with pytest.raises(
        gpuudf.ExecutorSpecException, match=r"make_with\('debug'\): .*unexpected keyword argument 'cpus'"
    ):
        gpuudf.Context.make_with(debug_spec, cpus=2)


def test_context_load_returns_a_dataset(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), sig_dims=2)
    assert isinstance(ds, DataSet)
    assert ds.shape.nav == NAV_SHAPE


def test_sync_false_returns_an_awaitable_with_the_same_results(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load_partitioned(data)
    expected = ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=3))

    async def run() -> Any:
        pending = ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=3), sync=False)
        assert inspect.isawaitable(pending)
        return await pending

    res = asyncio.run(run())
    assert set(res) == set(expected)
    for name in expected:
        assert_array_equal(res[name].data, expected[name].data)
    _check_sums(res, data)


def test_sync_false_with_a_list_of_udfs_gives_a_list(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)

    async def run() -> Any:
        return await ctx.run_udf(dataset=load_partitioned(data), udf=[MaxUDF(), SumFrameUDF()], sync=False)

    maximum, sums = asyncio.run(run())
    assert_array_equal(maximum["maxbuf"].data, data.max(axis=(0, 1)))
    _check_sums(sums, data)


@pytest.mark.parametrize(
    ("roi", "frames"),
    [
        pytest.param(None, 35, id="all-frames"),
        pytest.param(np.arange(35).reshape(NAV_SHAPE) % 3 == 0, 12, id="roi"),
        pytest.param(np.zeros(NAV_SHAPE, dtype=bool), 0, id="empty-roi"),
    ],
)
def test_progress_true_shows_a_bar_counted_in_frames(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    capsys: pytest.CaptureFixture[str],
    roi: np.ndarray[Any, Any] | None,
    frames: int,
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=SumFrameUDF(), progress=True, roi=roi)
    err = capsys.readouterr().err
    assert (f"{frames}/{frames}" if frames else "0frame") in err
    assert "frame" in err
    assert_array_equal(res["count"].data, [frames])


def test_progress_false_prints_nothing(
    ctx: gpuudf.Context, random_counts: CountsFn, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx.run_udf(dataset=ctx.load("memory", data=random_counts(DATA_SHAPE)), udf=SumFrameUDF())
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_a_context_is_reusable_for_many_runs(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    for _ in range(3):
        data = random_counts(DATA_SHAPE)
        _check_sums(ctx.run_udf(dataset=ctx.load("memory", data=data, num_partitions=7), udf=SumFrameUDF()), data)


# ---------------------------------------------------------------- results iterators: throw, athrow


class ThrownError(Exception):
    """What the tests throw into runs."""


def _assert_usable(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    _check_sums(ctx.run_udf(dataset=ctx.load("memory", data=data, num_partitions=3), udf=SumFrameUDF()), data)


def _started_pids(ctx: gpuudf.Context, random_counts: CountsFn) -> list[int] | None:
    """The executor's worker process ids once every worker runs (``None`` without processes)."""
    _assert_usable(ctx, random_counts)
    pids = getattr(ctx.executor, "worker_pids", None)
    return None if pids is None else list(pids)


def test_throw_during_a_run_raises_that_exception_stops_the_run_and_ends_the_iteration(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    pids = _started_pids(ctx, random_counts)
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=5)
    results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2, log=log))
    assert isinstance(results, UDFResultsIterator)
    next(results)
    thrown = ThrownError("stop here")
    with pytest.raises(ThrownError) as raised:
        results.throw(thrown)
    assert raised.value is thrown
    logged = len(log)
    if not executor_case.in_processes:
        assert len(log.hooks("postprocess")) == 1  # only the partition merged before the throw
    with pytest.raises(StopIteration):
        next(results)
    assert list(results) == []
    assert getattr(ctx.executor, "worker_pids", None) == pids, "the workers were replaced, not freed"
    _assert_usable(ctx, random_counts)
    assert len(log) == logged, "the run went on after the throw"


def test_throw_before_the_first_step_raises_it_and_processes_nothing(
    ctx: gpuudf.Context, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(log=log))
    assert isinstance(results, UDFResultsIterator)
    with pytest.raises(ThrownError, match="early"):
        results.throw(ThrownError("early"))
    assert list(results) == []
    assert process_calls(log) == 0
    _assert_usable(ctx, random_counts)


def test_throw_after_the_last_step_still_raises_the_exception(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    results = ctx.run_udf_iter(dataset=ctx.load("memory", data=data, num_partitions=3), udf=SumFrameUDF())
    assert isinstance(results, UDFResultsIterator)
    steps = list(results)
    _check_sums(steps[-1].buffers[0], data)
    with pytest.raises(ThrownError, match="late"):
        results.throw(ThrownError("late"))
    _assert_usable(ctx, random_counts)


def test_throwing_udf_run_cancelled_raises_it_unchanged(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    results = ctx.run_udf_iter(
        dataset=ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=5), udf=SumFrameUDF()
    )
    assert isinstance(results, UDFResultsIterator)
    next(results)
    cancelled = UDFRunCancelled("thrown in")
    with pytest.raises(UDFRunCancelled) as raised:
        results.throw(cancelled)
    assert raised.value is cancelled
    assert list(results) == []
    _assert_usable(ctx, random_counts)


def test_athrow_in_an_async_loop_raises_it_there_and_ends_the_async_iteration(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=5)

    async def run() -> int:
        results = ctx.run_udf_iter(dataset=ds, udf=SumTileUDF(depth=2), sync=False)
        assert isinstance(results, AsyncUDFResultsIterator)
        steps = 0
        async for _ in results:
            steps += 1
            with pytest.raises(ThrownError, match="async"):
                await results.athrow(ThrownError("async"))
        with pytest.raises(StopAsyncIteration):
            await results.__anext__()
        return steps

    assert asyncio.run(run()) == 1
    _assert_usable(ctx, random_counts)


# ---------------------------------------------------------------- update_parameters_experimental


class ParamValueUDF(gpuudf.UDF):
    """Writes its parameter ``value`` for every frame, and shows where it was seen.

    ``seen``: ``self.params.value`` in ``process_frame``; ``from_task_data``:
    the value ``get_task_data`` saw; ``merged``: the host's value when the
    frame's partition was merged; ``host``: the host's value in
    ``get_results``.
    """

    def __init__(self, value: float = 0.0, label: str = "") -> None:
        super().__init__(value=value, label=label)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def get_result_buffers(self) -> dict[str, Any]:
        return {
            "seen": self.buffer(kind="nav", dtype="float64"),
            "from_task_data": self.buffer(kind="nav", dtype="float64"),
            "merged": self.buffer(kind="nav", dtype="float64"),
            "host": self.buffer(kind="single", dtype="float64", use="result_only"),
        }

    def get_task_data(self) -> dict[str, Any]:
        return {"value": self.params.value}

    def process_frame(self, frame: Any) -> None:
        self.results.seen[:] = self.params.value
        self.results.from_task_data[:] = self.task_data.value

    def merge(self, dest: Any, src: Any) -> None:
        dest.seen[:] = src.seen
        dest.from_task_data[:] = src.from_task_data
        dest.merged[:] = self.params.value

    def get_results(self) -> dict[str, Any]:
        return {"host": np.array([self.params.value])}


def _in_flight(ctx: gpuudf.Context) -> int:
    """Most partitions an executor may have handed out ahead of the consumer: queued on each worker."""
    from gpuudf.executors.scheduling import QUEUE_DEPTH

    return len(getattr(ctx.executor, "devices", ())) * getattr(ctx.executor, "queue_depth", QUEUE_DEPTH)


def test_parameters_updated_after_the_first_step_reach_the_partitions_that_start_later_and_the_host(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=math.prod(NAV_SHAPE))
    udf = ParamValueUDF(value=1.0, label="mine")
    results = ctx.run_udf_iter(dataset=ds, udf=udf)
    assert isinstance(results, UDFResultsIterator)
    first = next(results)
    results.update_parameters_experimental([{"value": 2.0}])
    *_, last = results
    res = last.buffers[0]
    seen = res["seen"].data
    assert set(np.unique(seen)) == {1.0, 2.0}
    assert_array_equal(res["from_task_data"].data, seen)  # task data is re-computed from the new values
    assert_array_equal(seen[first.damage.data], 1.0)  # the partition merged before the update
    if executor_case.in_processes:
        # partitions already queued on a worker keep the old value
        assert np.count_nonzero(seen == 1.0) <= 1 + _in_flight(ctx)
    else:
        assert np.count_nonzero(seen == 1.0) == 1
    merged = res["merged"].data
    assert_array_equal(merged[first.damage.data], 1.0)
    assert_array_equal(merged[~first.damage.data], 2.0)  # merge on the host sees the new value
    assert_array_equal(res["host"].data, [2.0])  # and so does get_results
    assert udf.params.value == 1.0  # the user's UDF object is left as it was
    assert udf._kwargs == {"value": 1.0, "label": "mine"}


def test_parameters_updated_before_the_first_step_reach_every_partition(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=7)
    results = ctx.run_udf_iter(dataset=ds, udf=[ParamValueUDF(value=1.0), ParamValueUDF(value=5.0)])
    assert isinstance(results, UDFResultsIterator)
    results.update_parameters_experimental([{"value": 3.0}, {}])
    *_, last = results
    changed, kept = last.buffers
    assert_array_equal(changed["seen"].data, 3.0)
    assert_array_equal(changed["host"].data, [3.0])
    assert_array_equal(kept["seen"].data, 5.0)  # an empty dict leaves that UDF's parameters alone
    assert_array_equal(kept["merged"].data, 5.0)


def test_awaiting_update_parameters_experimental_in_an_async_loop_updates_later_partitions(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=math.prod(NAV_SHAPE))

    async def run() -> np.ndarray[Any, Any]:
        results = ctx.run_udf_iter(dataset=ds, udf=ParamValueUDF(value=1.0), sync=False)
        assert isinstance(results, AsyncUDFResultsIterator)
        last = None
        async for last in results:
            if last.damage.data.sum() == 1:
                await results.update_parameters_experimental([{"value": 4.0}])
        assert last is not None
        return np.array(last.buffers[0]["seen"].data)

    seen = asyncio.run(run())
    assert set(np.unique(seen)) == {1.0, 4.0}
    assert np.count_nonzero(seen == 1.0) <= 1 + _in_flight(ctx)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        pytest.param([{"value": 2.0}, {}], r"one dict per UDF of the run \(ParamValueUDF\), got 2", id="too-many"),
        pytest.param([], r"one dict per UDF of the run \(ParamValueUDF\), got 0", id="empty-list"),
        pytest.param({"value": 2.0}, r"must be a list with one dict per UDF .*got a dict", id="a-bare-dict"),
        pytest.param(["value"], r"parameters\[0\] for ParamValueUDF must be a dict", id="not-a-dict"),
        pytest.param(
            [{"value": 2.0, "scale": 3}],
            r"ParamValueUDF has no parameter 'scale' to update; it was constructed with \['label', 'value'\]",
            id="unknown-name",
        ),
    ],
)
def test_a_malformed_parameter_update_is_a_value_error_naming_the_udf_and_changes_nothing(
    random_counts: CountsFn, parameters: Any, message: str
) -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
        results = ctx.run_udf_iter(dataset=ds, udf=ParamValueUDF(value=1.0))
        assert isinstance(results, UDFResultsIterator)
        next(results)
        with pytest.raises(ValueError, match=message):
            results.update_parameters_experimental(parameters)
        *_, last = results
        assert_array_equal(last.buffers[0]["seen"].data, 1.0)
        assert_array_equal(last.buffers[0]["host"].data, [1.0])


@pytest.mark.parametrize("end", ["exhausted", "closed", "thrown", "cancelled"])
def test_updating_parameters_of_a_run_that_has_ended_is_a_runtime_error(random_counts: CountsFn, end: str) -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
        results = ctx.run_udf_iter(dataset=ds, udf=ParamValueUDF(value=1.0))
        assert isinstance(results, UDFResultsIterator)
        next(results)
        if end == "exhausted":
            list(results)
        elif end == "closed":
            results.close()
        elif end == "thrown":
            with pytest.raises(ThrownError):
                results.throw(ThrownError())
        else:
            results.cancel()
            with pytest.raises(UDFRunCancelled):
                list(results)
        with pytest.raises(RuntimeError, match="the run has ended"):
            results.update_parameters_experimental([{"value": 2.0}])


# ---------------------------------------------------------------- display (LiberTEM's Context.display)


class DisplayedUDF(gpuudf.UDF):
    """One buffer of each kind and use, for ``Context.display``."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {
            "per_frame": self.buffer(kind="nav", extra_shape=(2,), dtype="float64"),
            "frame_sum": self.buffer(kind="sig", dtype=self.meta.input_dtype),
            "count": self.buffer(kind="single", dtype="int64"),
            "scratch": self.buffer(kind="single", dtype="int64", use="private"),
            "derived": self.buffer(kind="nav", dtype="complex64", use="result_only"),
        }

    def get_preferred_input_dtype(self) -> Any:
        return np.float16

    def get_backends(self) -> tuple[str, ...]:
        return ("cupy", "numpy")

    def process_frame(self, frame: Any) -> None:
        pass

    def merge(self, dest: Any, src: Any) -> None:
        pass


DISPLAY_KINDS = ["memory", "raw", "npy", "hdf5", "hdf5-chunked", "auto"]


def load_for_display(ctx: gpuudf.Context, kind: str, data_file: Callable[..., Any], data: Any) -> DataSet:
    """``data`` loaded by the loader ``kind`` (files in a folder whose name needs HTML escaping)."""
    if kind == "memory":
        return ctx.load("memory", data=data, sync_offset=-2)
    path, kwargs = data_file("npy" if kind == "auto" else kind, data, name="scan")
    loader = {"auto": "auto", "raw": "raw", "npy": "npy"}.get(kind, "hdf5")
    return ctx.load(loader, **(kwargs if kind != "auto" else {"path": path}), sync_offset=-2)


@pytest.fixture
def escaped_data_file(tmp_path: Path) -> Any:
    """``data_file`` writing under a folder named ``a<b>&"c"``."""
    folder = tmp_path / 'a<b>&"c"'
    folder.mkdir()

    def write(kind: str, data: Any, sig_dims: int = 2, name: str = "data") -> Any:
        return save_data_file(folder, kind, data, sig_dims=sig_dims, name=name)

    return write


@pytest.mark.parametrize("kind", DISPLAY_KINDS)
def test_display_shows_a_datasets_diagnostics_as_escaped_html_and_as_text(
    ctx: gpuudf.Context, escaped_data_file: Any, random_counts: CountsFn, kind: str
) -> None:
    ds = load_for_display(ctx, kind, escaped_data_file, random_counts(DATA_SHAPE, dtype="uint16"))
    info = ctx.display(ds)
    rows = dict(info.tables[0].rows)
    assert rows["Shape"] == "(5, 7, 9, 11)"
    assert (rows["Navigation shape"], rows["Signal shape"], rows["dtype"]) == ("(5, 7)", "(9, 11)", "uint16")
    partitions = ds.get_partitions(ctx.executor.num_workers())
    assert rows["Number of partitions"] == str(len(partitions))
    assert rows["Partition shape"] == str((partitions[0].num_frames, 9, 11))
    assert rows["sync_offset"] == "-2"
    assert rows["Number of blank frames inserted at the beginning"] == "2"
    assert rows["Number of frames ignored at the end"] == "2"
    html = info._repr_html_()
    assert html.startswith(f"<h2>{type(ds).__name__}</h2>")
    assert "<tr><th>Number of blank frames inserted at the beginning</th><td>2</td></tr>" in html
    text = str(info)
    assert repr(info) == text
    assert "Number of blank frames inserted at the beginning  2" in text
    if kind != "memory":
        assert rows["File"] == str(ds.path)  # type: ignore[attr-defined]
        assert 'a<b>&"c"' in text
        assert "a&lt;b&gt;&amp;&quot;c&quot;" in html
        assert 'a<b>&"c"' not in html


def test_display_with_a_udf_lists_libertems_general_facts_and_every_returned_buffer(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=np.uint8))
    info = ctx.display(ds, DisplayedUDF())
    dataset, general, buffers = info.tables
    assert dict(dataset.rows)["dtype"] == "uint8"
    assert dict(general.rows) == {
        "Processing method": "frame",
        "Compute backends": "cupy, numpy",
        "Preferred input dtype": "float16",
        "Input dtype on this dataset": "float16",
        "Frames processed (ROI)": "35 of 35",
    }
    assert buffers.header == ("Name", "Kind", "Extra shape", "Concrete shape", "raw_data shape", "dtype")
    assert buffers.rows == (
        ("per_frame", "nav", "(2,)", "(5, 7, 2)", "(35, 2)", "float64"),
        ("frame_sum", "sig", "()", "(9, 11)", "(9, 11)", "float16"),
        ("count", "single", "()", "(1,)", "(1,)", "int64"),
        ("derived", "nav", "()", "(5, 7)", "(35,)", "complex64"),
    )
    html = info._repr_html_()
    assert html.startswith("<h2>MemoryDataSet: DisplayedUDF</h2>")
    assert "<tr><th>Processing method</th><td>frame</td></tr>" in html
    assert "<thead><tr><th>Name</th><th>Kind</th>" in html
    assert "<tr><td>per_frame</td><td>nav</td><td>(2,)</td><td>(5, 7, 2)</td><td>(35, 2)</td>" in html
    assert "scratch" not in html
    assert "scratch" not in str(info)
    assert "per_frame  nav     (2,)         (5, 7, 2)       (35, 2)         float64" in str(info)


def test_display_gives_nav_buffers_the_raw_data_shape_of_the_roi(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=np.float32))
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[1, 2:6] = True
    info = ctx.display(ds, DisplayedUDF(), roi=roi)
    rows = {row[0]: row for row in info.tables[2].rows}
    assert rows["per_frame"][3:5] == ("(5, 7, 2)", "(4, 2)")
    assert rows["derived"][3:5] == ("(5, 7)", "(4,)")
    assert dict(info.tables[1].rows)["Frames processed (ROI)"] == "4 of 35"
    assert dict(ctx.display(ds, roi=(0, 0)).tables[1].rows) == {"Frames selected": "1 of 35"}


def test_display_leaves_the_users_udf_untouched_and_runs_nothing(ctx: gpuudf.Context) -> None:
    udf = SumFrameUDF()
    before = dict(vars(udf))
    ds = ctx.load("memory", data=np.ones(DATA_SHAPE, dtype=np.float32))
    info = ctx.display(ds, udf)
    assert vars(udf) == before
    assert [row[0] for row in info.tables[2].rows] == ["per_frame", "total", "count"]
    assert ctx.run_udf(dataset=ds, udf=udf)["count"].data[0] == math.prod(NAV_SHAPE)


def test_display_raises_what_a_run_would_raise_for_a_bad_udf_or_roi(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE))

    class NoProcessUDF(gpuudf.UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"x": self.buffer(kind="nav")}

    with pytest.raises(gpuudf.UDFDefinitionError, match="no process method"):
        ctx.display(ds, NoProcessUDF())
    with pytest.raises(ValueError, match="ROI"):
        ctx.display(ds, SumFrameUDF(), roi=np.ones(3, dtype=bool))
    with pytest.raises(TypeError, match="not a UDF instance"):
        ctx.display(ds, udf="SumUDF")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"dataset must come from Context\.load"):
        ctx.display(np.zeros(DATA_SHAPE))  # type: ignore[arg-type]
