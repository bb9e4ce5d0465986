"""Run control (API.md §4, 4.1, 4.2): partial results, cancellation, errors, async runs, what a ROI starts.

The tests steer runs through files (``CallLog``, ``FileEvent``, ``PauseAt``
from ``tests.udfs_for_tests``), so they run unchanged on in-process executors
and on worker processes.  Waits have generous timeouts so that a broken
engine fails a test instead of hanging it; a passing run never waits for one.

Cancellation bounds: on an in-process executor the tile in progress is the
last one processed after a cancel, and the tests assert exactly that.  A
worker process learns of a cancel through a message, so there the tests
assert that the run stops cooperatively (the workers answer and are kept,
not killed and replaced) rather than counting tiles, which would race.
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import traceback
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, UDFRunCancelled
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import (
    DATA_SHAPE,
    NAV_SHAPE,
    SIG_SHAPE,
    CallLog,
    DerivedUDF,
    ExecutorCase,
    FileEvent,
    HookError,
    MaxUDF,
    PauseAt,
    ProbeUDF,
    RaiseAt,
    RaisingUDF,
    RecordingSumUDF,
    SumTileUDF,
    process_calls,
    selected_partitions,
)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

#: Long enough never to be reached by a working engine, short enough to fail fast.
TIMEOUT_S = 5.0

NUM_FRAMES = math.prod(NAV_SHAPE)

#: A fixed irregular mask: some frames in every row, none in one column.
MASK = np.random.default_rng(11).random(NAV_SHAPE) < 0.5
MASK[:, 2] = False
MASK[0, 0] = MASK[4, 6] = True

ROIS = [
    pytest.param(None, id="no-roi"),
    pytest.param(MASK, id="mask"),
    pytest.param(np.zeros(NAV_SHAPE, dtype=bool), id="empty-roi"),
]

UDF_SETS = [
    pytest.param(lambda: [SumTileUDF(depth=2), MaxUDF()], id="sum-and-max"),
    pytest.param(lambda: [DerivedUDF()], id="derived-results"),
    pytest.param(lambda: [ProbeUDF(method="tile", depth=2)], id="probe"),
]


def _snapshot(buffers: Sequence[dict[str, gpuudf.BufferWrapper]]) -> list[dict[str, tuple[Any, ...]]]:
    """Copies of what a step shows: yielded buffers are only valid until the next step."""
    return [
        {name: (w.kind, w.dtype, np.array(w.data), np.array(w.valid_mask)) for name, w in results.items()}
        for results in buffers
    ]


def _assert_same(actual: list[dict[str, tuple[Any, ...]]], expected: list[dict[str, tuple[Any, ...]]]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert set(got) == set(want)
        for name, (kind, dtype, data, valid) in want.items():
            got_kind, got_dtype, got_data, got_valid = got[name]
            assert (got_kind, got_dtype) == (kind, dtype), name
            assert got_data.shape == data.shape, name
            assert_array_equal(got_data, data, err_msg=name)
            assert_array_equal(got_valid, valid, err_msg=name)


def _check_sums(res: dict[str, gpuudf.BufferWrapper], data: np.ndarray[Any, Any]) -> None:
    assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3), dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=(0, 1), dtype=np.float64))
    assert_array_equal(res["count"].data, [NUM_FRAMES])


def _assert_context_usable(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    _check_sums(ctx.run_udf(dataset=ctx.load("memory", data=data, num_partitions=3), udf=SumTileUDF(depth=4)), data)


def _worker_pids(ctx: gpuudf.Context) -> list[int] | None:
    """Process ids of the executor's workers, where it has worker processes."""
    pids = getattr(ctx.executor, "worker_pids", None)
    return None if pids is None else list(pids)


def _started_worker_pids(ctx: gpuudf.Context, ds: DataSet) -> list[int] | None:
    """:func:`_worker_pids` once a run has started every worker."""
    ctx.run_udf(dataset=ds, udf=SumTileUDF())
    return _worker_pids(ctx)


def _canceller(reached: FileEvent, resume: FileEvent, cancel: Callable[[], None]) -> threading.Thread:
    """A started thread that cancels once ``reached`` is set, then lets the UDF go on."""

    def run() -> None:
        try:
            if reached.wait(TIMEOUT_S):
                cancel()
        finally:
            resume.set()

    thread = threading.Thread(target=run, name="test-canceller")
    thread.start()
    return thread


def _cancel_at_every_step(results: Any, steps: list[Any]) -> None:
    for item in results:
        steps.append(item)
        results.cancel()


def _events(tmp_path: Path) -> tuple[FileEvent, FileEvent]:
    return FileEvent(tmp_path / "reached"), FileEvent(tmp_path / "resume")


# ---------------------------------------------------------------- run_udf_iter: partial results


@pytest.mark.parametrize("make_udfs", UDF_SETS)
@pytest.mark.parametrize("roi", ROIS)
def test_every_step_of_run_udf_iter_equals_a_fresh_run_over_the_damaged_frames(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    roi: np.ndarray[Any, Any] | None,
    make_udfs: Callable[[], list[UDF]],
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load_partitioned(data)
    steps = []
    for item in ctx.run_udf_iter(dataset=ds, udf=make_udfs(), roi=roi):
        assert isinstance(item.buffers, tuple)
        assert item.damage.shape == NAV_SHAPE
        assert item.damage.dtype == bool
        steps.append((np.array(item.damage), _snapshot(item.buffers)))

    # one partition per frame makes 35 steps: check 8 of them, first and last included
    checked = sorted({round(i) for i in np.linspace(0, len(steps) - 1, min(len(steps), 8))})
    for damage, snapshot in [steps[i] for i in checked]:
        fresh = ctx.run_udf(dataset=ds, udf=make_udfs(), roi=damage)
        _assert_same(snapshot, _snapshot(fresh))
        # nav buffers: values exactly where frames were merged
        for results in snapshot:
            for name, (kind, _, _, valid) in results.items():
                if kind == "nav":  # valid_mask has the shape of data: nav, then extra_shape
                    per_frame = valid.reshape((*NAV_SHAPE, -1))
                    assert_array_equal(per_frame.all(axis=-1), damage, err_msg=name)
                    assert_array_equal(per_frame.any(axis=-1), damage, err_msg=name)


@pytest.mark.parametrize("roi", ROIS)
def test_run_udf_iter_yields_once_per_partition_with_selected_frames_and_damage_grows_by_whole_partitions(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, roi: np.ndarray[Any, Any] | None
) -> None:
    ds = load_partitioned(random_counts(DATA_SHAPE))
    groups = selected_partitions(ds, roi)
    damages = [np.array(item.damage).reshape(-1) for item in ctx.run_udf_iter(dataset=ds, udf=SumTileUDF(), roi=roi)]

    assert len(damages) == max(1, len(groups))
    selected = np.ones(NUM_FRAMES, dtype=bool) if roi is None else roi.reshape(-1)
    assert_array_equal(damages[-1], selected)
    previous = np.zeros(NUM_FRAMES, dtype=bool)
    for step, damage in enumerate(damages, start=1):
        assert not (damage & ~selected).any(), "damage leaves the ROI"
        assert not (previous & ~damage).any(), "damage shrank"
        complete = [bool(damage[g].all()) for g in groups]
        assert all(damage[g].all() or not damage[g].any() for g in groups), "a partition is half merged"
        assert sum(complete) == (step if groups else 0)
        previous = damage


@pytest.mark.parametrize("make_udfs", UDF_SETS)
@pytest.mark.parametrize("roi", ROIS)
def test_the_last_step_of_run_udf_iter_equals_run_udf(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    roi: np.ndarray[Any, Any] | None,
    make_udfs: Callable[[], list[UDF]],
) -> None:
    ds = load_partitioned(random_counts(DATA_SHAPE))
    last = None
    for item in ctx.run_udf_iter(dataset=ds, udf=make_udfs(), roi=roi):
        last = _snapshot(item.buffers)
    assert last is not None
    _assert_same(last, _snapshot(ctx.run_udf(dataset=ds, udf=make_udfs(), roi=roi)))


def test_run_udf_iter_with_one_udf_gives_a_tuple_of_one_dict(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    items = 0
    for item in ctx.run_udf_iter(dataset=ctx.load("memory", data=data, num_partitions=3), udf=SumTileUDF(depth=2)):
        items += 1
        assert isinstance(item.buffers, tuple)
        assert len(item.buffers) == 1
        assert set(item.buffers[0]) == {"per_frame", "total", "count"}
        assert all(isinstance(w, gpuudf.BufferWrapper) for w in item.buffers[0].values())
    assert items == 3
    _check_sums(item.buffers[0], data)


def test_a_copy_of_a_step_keeps_its_values_after_later_steps(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data, num_partitions=5)
    kept = [
        (np.array(item.damage), np.array(item.buffers[0]["count"].data), np.array(item.buffers[0]["total"].data))
        for item in ctx.run_udf_iter(dataset=ds, udf=SumTileUDF(depth=3))
    ]
    assert len(kept) == 5
    for damage, count, total in kept:
        assert_array_equal(count, [damage.sum()])
        assert_array_equal(total, data[damage].sum(axis=0, dtype=np.float64))


# ---------------------------------------------------------------- run_udf_iter: stopping


def test_cancel_inside_the_loop_raises_udf_run_cancelled_and_stops_the_run(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    log = CallLog(tmp_path / "log")
    steps: list[Any] = []
    pids = _started_worker_pids(ctx, ds)
    results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2, log=log))
    with pytest.raises(UDFRunCancelled):
        _cancel_at_every_step(results, steps)
    assert len(steps) == 1
    if not executor_case.in_processes:
        assert len(log.hooks("merge")) == 1
        # partition 1 was merged; of partition 2 at most its first tile ran
        first_tiles = math.ceil(ds.get_partitions()[0].num_frames / 2)
        assert len(log.hooks("postprocess")) == 1
        assert process_calls(log) <= first_tiles + 1
    assert _worker_pids(ctx) == pids
    _assert_context_usable(ctx, random_counts)


@pytest.mark.parametrize("method", ["frame", "tile"])
def test_cancel_from_another_thread_stops_run_udf_iter_within_one_tile(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path, method: str
) -> None:
    reached, resume = _events(tmp_path)
    cancel_at = 5  # with 2-frame tiles, frame 5 opens tile 3
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=1)
    udf = RecordingSumUDF(method=method, depth=2, log=log, on_process=PauseAt(cancel_at, reached, resume))
    pids = _started_worker_pids(ctx, ds)
    results = ctx.run_udf_iter(dataset=ds, udf=udf)
    canceller = _canceller(reached, resume, results.cancel)
    try:
        with pytest.raises(UDFRunCancelled):
            for _ in results:
                pass
    finally:
        canceller.join(TIMEOUT_S)
    assert reached.is_set()
    if not executor_case.in_processes:
        assert process_calls(log) <= cancel_at + 1
        assert not log.hooks("postprocess")
    assert _worker_pids(ctx) == pids
    _assert_context_usable(ctx, random_counts)


def test_breaking_out_of_run_udf_iter_stops_the_run_silently(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=5)
    # A loop's break can only stop the run by letting go of the iterator: it must be freed right
    # there, not whenever the cycle collector comes by (worker processes would go on until then).
    gc.disable()
    try:
        results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2, log=log))
        abandoned = weakref.ref(results)
        for item in results:
            assert item.damage.data.any()
            break
        del results, item
        assert abandoned() is None, "the iterator outlived the loop, so its run was not stopped"
        logged = len(log)
    finally:
        gc.enable()
    if not executor_case.in_processes:
        assert len(log.hooks("postprocess")) == 1
    _assert_context_usable(ctx, random_counts)
    assert len(log) == logged, "the abandoned run went on"


def test_closing_run_udf_iter_stops_the_run_silently(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=5)
    results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2, log=log))
    next(results)
    results.close()
    logged = len(log)
    if not executor_case.in_processes:
        assert len(log.hooks("postprocess")) == 1
    assert list(results) == []
    _assert_context_usable(ctx, random_counts)
    assert len(log) == logged, "the closed run went on"


def test_closing_run_udf_iter_before_the_first_step_processes_nothing(
    ctx: gpuudf.Context, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(log=log))
    results.close()
    assert process_calls(log) == 0
    _assert_context_usable(ctx, random_counts)


# ---------------------------------------------------------------- cancel handles


@pytest.mark.parametrize(
    ("method", "num_partitions", "cancel_at"),
    [
        pytest.param("frame", 1, 3, id="frame"),
        pytest.param("tile", 1, 3, id="tile"),
        pytest.param("partition", 5, 2, id="partition"),
    ],
)
def test_a_udf_cancelling_its_own_run_stops_it_within_one_tile(
    ctx: gpuudf.Context,
    executor_case: ExecutorCase,
    random_counts: CountsFn,
    tmp_path: Path,
    method: str,
    num_partitions: int,
    cancel_at: int,
) -> None:
    if executor_case.in_processes:
        pytest.skip("a UDF in a worker process cannot reach the caller's CancelHandle; see the other-thread tests")
    handle = gpuudf.CancelHandle()

    def on_process(calls: int) -> None:
        if calls == cancel_at:
            handle.cancel()

    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=num_partitions)
    udf = RecordingSumUDF(method=method, depth=2, log=log, on_process=on_process)
    with pytest.raises(UDFRunCancelled):
        ctx.run_udf(dataset=ds, udf=udf, cancel=handle)
    # frames go in tiles of 2: call 3 opens a tile, so one more frame may follow it
    assert process_calls(log) <= cancel_at + 1
    assert len(log.hooks("postprocess")) < num_partitions
    _assert_context_usable(ctx, random_counts)


@pytest.mark.parametrize(
    ("method", "num_partitions", "cancel_at"),
    [
        pytest.param("frame", 1, 5, id="frame"),
        pytest.param("tile", 1, 5, id="tile"),
        pytest.param("partition", 5, 2, id="partition"),
    ],
)
def test_a_cancel_handle_cancelled_from_another_thread_stops_the_run_within_one_tile(
    ctx: gpuudf.Context,
    executor_case: ExecutorCase,
    random_counts: CountsFn,
    tmp_path: Path,
    method: str,
    num_partitions: int,
    cancel_at: int,
) -> None:
    handle = gpuudf.CancelHandle()
    reached, resume = _events(tmp_path)
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=num_partitions)
    udf = RecordingSumUDF(method=method, depth=2, log=log, on_process=PauseAt(cancel_at, reached, resume))
    pids = _started_worker_pids(ctx, ds)
    canceller = _canceller(reached, resume, handle.cancel)
    try:
        with pytest.raises(UDFRunCancelled):
            ctx.run_udf(dataset=ds, udf=udf, cancel=handle)
    finally:
        canceller.join(TIMEOUT_S)
    assert reached.is_set()
    if not executor_case.in_processes:
        assert process_calls(log) <= cancel_at + 1
        assert len(log.hooks("postprocess")) < num_partitions
    assert _worker_pids(ctx) == pids
    _assert_context_usable(ctx, random_counts)


def test_a_cancel_handle_already_cancelled_cancels_the_next_run_before_any_frame(
    ctx: gpuudf.Context, random_counts: CountsFn, tmp_path: Path
) -> None:
    handle = gpuudf.CancelHandle()
    handle.cancel()
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    for _ in range(2):  # a handle stays cancelled
        with pytest.raises(UDFRunCancelled):
            ctx.run_udf(dataset=ds, udf=RecordingSumUDF(log=log), cancel=handle)
    assert process_calls(log) == 0
    assert not log.hooks("postprocess")
    _assert_context_usable(ctx, random_counts)


def test_a_cancel_handle_that_is_never_cancelled_changes_nothing(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    handle = gpuudf.CancelHandle()
    ds = ctx.load("memory", data=data, num_partitions=3)
    _check_sums(ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=2), cancel=handle), data)
    _check_sums(ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=2), cancel=handle), data)


def test_a_cancelled_run_leaves_no_feeder_thread_running(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    if executor_case.in_processes:
        pytest.skip("feeder threads of worker processes are not visible here")
    handle = gpuudf.CancelHandle()
    during: list[set[str]] = []

    def on_process(calls: int) -> None:
        if calls == 3:
            during.append({t.name for t in threading.enumerate() if t.name.startswith("gpuudf-feeder")})
            handle.cancel()

    # a ROI makes device backends read through their pinned ring and its feeder thread
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=1)
    with pytest.raises(UDFRunCancelled):
        ctx.run_udf(dataset=ds, udf=RecordingSumUDF(depth=2, on_process=on_process), roi=MASK, cancel=handle)
    assert len(during) == 1
    if executor_case.device_class == "cuda":
        assert during[0], "the ROI run had no feeder thread to check"
    left = [t for t in threading.enumerate() if t.name in during[0]]
    for thread in left:
        thread.join(TIMEOUT_S)
    assert not [t.name for t in left if t.is_alive()]


# ---------------------------------------------------------------- KeyboardInterrupt


@pytest.mark.parametrize("how", ["run_udf", "run_udf_iter"])
def test_keyboard_interrupt_in_a_udf_reaches_the_caller_and_the_context_stays_usable(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path, how: str
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    udf = RecordingSumUDF(depth=2, log=log, on_process=RaiseAt(3, KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        _run(ctx, how, dataset=ds, udf=udf)
    if not executor_case.in_processes:
        assert process_calls(log) == 3
    _assert_context_usable(ctx, random_counts)


# ---------------------------------------------------------------- errors in UDF hooks


HOOK_CASES = [
    pytest.param("preprocess", 0, id="preprocess-on-the-host"),
    pytest.param("preprocess", 1, id="preprocess-on-a-worker"),
    pytest.param("process_frame", 3, id="process_frame"),
    pytest.param("process_tile", 2, id="process_tile"),
    pytest.param("process_partition", 1, id="process_partition"),
    pytest.param("postprocess", 1, id="postprocess"),
    pytest.param("merge", 1, id="merge"),
    pytest.param("get_results", 0, id="get_results"),
]

HOWS = ["run_udf", "run_udf_iter", "async-run_udf", "async-run_udf_iter"]


def _run(ctx: gpuudf.Context, how: str, **kwargs: Any) -> Any:
    """Run to the end the way ``how`` says; return the (last) results."""
    if how == "run_udf":
        return ctx.run_udf(**kwargs)
    if how == "run_udf_iter":
        last = None
        for item in ctx.run_udf_iter(**kwargs):
            last = item.buffers
        return last
    if how == "async-run_udf":

        async def run() -> Any:
            return await ctx.run_udf(sync=False, **kwargs)

        return asyncio.run(run())

    async def iterate() -> Any:
        last = None
        async for item in ctx.run_udf_iter(sync=False, **kwargs):
            last = item.buffers
        return last

    return asyncio.run(iterate())


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize(("hook", "skip"), HOOK_CASES)
def test_an_exception_in_any_udf_hook_reaches_the_caller_with_the_udfs_frame(
    ctx: gpuudf.Context,
    executor_case: ExecutorCase,
    random_counts: CountsFn,
    tmp_path: Path,
    hook: str,
    skip: int,
    how: str,
) -> None:
    seen = CallLog(tmp_path / "seen")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    with pytest.raises(HookError, match=f"{hook} failed on purpose") as excinfo:
        _run(ctx, how, dataset=ds, udf=RaisingUDF(hook=hook, skip=skip, seen=seen))
    if executor_case.in_processes:
        assert len(seen) >= skip + 1  # workers already busy may fail the same way before they hear of it
    else:
        assert len(seen) == skip + 1
    # the UDF's own frame: in the traceback itself, or in the worker's traceback chained to it
    shown = "".join(traceback.format_exception(excinfo.value))
    assert 'udfs_for_tests.py", line' in shown
    assert any(
        line.strip().startswith('File "') and "udfs_for_tests.py" in line and line.rstrip().endswith(f"in {hook}")
        for line in shown.splitlines()
    ), shown
    if not executor_case.in_processes:
        frames = traceback.extract_tb(excinfo.tb)
        assert any(f.name == hook and f.filename.endswith("udfs_for_tests.py") for f in frames), [
            (f.filename, f.name) for f in frames
        ]
    _assert_context_usable(ctx, random_counts)


def test_an_exception_in_one_of_several_udfs_stops_the_whole_run(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    with pytest.raises(HookError, match="process_tile failed on purpose"):
        ctx.run_udf(dataset=ds, udf=[RecordingSumUDF(depth=2, log=log), RaisingUDF(hook="process_tile", skip=1)])
    if not executor_case.in_processes:
        assert process_calls(log) == 2
        assert not log.hooks("postprocess")
    assert not log.hooks("merge")
    _assert_context_usable(ctx, random_counts)


# ---------------------------------------------------------------- sync=False


def test_async_run_udf_iter_gives_the_same_steps_as_the_sync_one(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=4)
    sync_steps = [
        (np.array(item.damage), _snapshot(item.buffers))
        for item in ctx.run_udf_iter(dataset=ds, udf=[DerivedUDF(), MaxUDF()], roi=MASK)
    ]

    async def iterate() -> list[tuple[Any, Any]]:
        results = ctx.run_udf_iter(dataset=ds, udf=[DerivedUDF(), MaxUDF()], roi=MASK, sync=False)
        assert not hasattr(results, "__next__")
        return [(np.array(item.damage), _snapshot(item.buffers)) async for item in results]

    async_steps = asyncio.run(iterate())
    assert len(async_steps) == len(sync_steps) == 4
    for (damage, snapshot), (sync_damage, sync_snapshot) in zip(async_steps, sync_steps, strict=True):
        if np.array_equal(damage, sync_damage):  # completion order may differ with several workers
            _assert_same(snapshot, sync_snapshot)
    assert_array_equal(async_steps[-1][0], MASK)
    _assert_same(async_steps[-1][1], sync_steps[-1][1])


def test_await_run_udf_with_sync_false_equals_the_sync_call(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    expected = _snapshot([ctx.run_udf(dataset=ds, udf=DerivedUDF(), roi=MASK)])

    async def run() -> Any:
        return await ctx.run_udf(dataset=ds, udf=DerivedUDF(), roi=MASK, sync=False)

    _assert_same(_snapshot([asyncio.run(run())]), expected)


def test_cancel_inside_an_async_loop_raises_udf_run_cancelled(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    steps = 0

    async def iterate() -> None:
        nonlocal steps
        results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2, log=log), sync=False)
        async for _ in results:
            steps += 1
            results.cancel()

    with pytest.raises(UDFRunCancelled):
        asyncio.run(iterate())
    assert steps == 1
    if not executor_case.in_processes:  # results already on their way from workers may still be merged
        assert len(log.hooks("merge")) == 1
    _assert_context_usable(ctx, random_counts)


def test_breaking_out_of_an_async_loop_leaves_the_context_usable(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data, num_partitions=3)

    async def run() -> Any:
        async for _ in ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2), sync=False):
            break
        return await ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=2), sync=False)

    _check_sums(asyncio.run(run()), data)
    _assert_context_usable(ctx, random_counts)


def test_await_run_udf_with_a_cancel_handle_raises_udf_run_cancelled(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    handle = gpuudf.CancelHandle()
    reached, resume = _events(tmp_path)
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=1)
    udf = RecordingSumUDF(depth=2, log=log, on_process=PauseAt(2, reached, resume))

    async def run() -> Any:
        return await ctx.run_udf(dataset=ds, udf=udf, sync=False, cancel=handle)

    canceller = _canceller(reached, resume, handle.cancel)
    try:
        with pytest.raises(UDFRunCancelled):
            asyncio.run(run())
    finally:
        canceller.join(TIMEOUT_S)
    if not executor_case.in_processes:
        assert process_calls(log) <= 3
    _assert_context_usable(ctx, random_counts)


@pytest.mark.parametrize("how", ["run_udf", "run_udf_iter"])
def test_the_event_loop_keeps_running_while_a_run_goes(
    ctx: gpuudf.Context, random_counts: CountsFn, tmp_path: Path, how: str
) -> None:
    """The run's first tile waits until the loop has ticked 20 times: a blocked loop never gets there."""
    wanted_ticks = 20
    ticked_enough = FileEvent(tmp_path / "ticked")
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data, num_partitions=1)
    udf = RecordingSumUDF(depth=2, on_process=PauseAt(1, None, ticked_enough, timeout=TIMEOUT_S))

    async def main() -> tuple[Any, int]:
        ticks = 0
        done = False

        async def tick() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                if ticks == wanted_ticks:
                    ticked_enough.set()
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        try:
            if how == "run_udf":
                res = await ctx.run_udf(dataset=ds, udf=udf, sync=False)
            else:
                res = None
                async for item in ctx.run_udf_iter(dataset=ds, udf=udf, sync=False):
                    res = item.buffers[0]
        finally:
            done = True
            await ticker
        return res, ticks

    res, ticks = asyncio.run(main())  # a TimeoutError from the UDF here: the loop was blocked
    assert ticks >= wanted_ticks
    _check_sums(res, data)


def test_cancelling_the_task_awaiting_run_udf_cancels_the_run(
    ctx: gpuudf.Context, executor_case: ExecutorCase, random_counts: CountsFn, tmp_path: Path
) -> None:
    started, release = _events(tmp_path)
    block_at = 3
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=1)
    udf = RecordingSumUDF(depth=2, log=log, on_process=PauseAt(block_at, started, release))
    pids = _started_worker_pids(ctx, ds)

    async def main() -> None:
        task = asyncio.create_task(ctx.run_udf(dataset=ds, udf=udf, sync=False))
        for _ in range(int(TIMEOUT_S / 0.001)):
            if started.is_set():
                break
            await asyncio.sleep(0.001)
        assert started.is_set()
        task.cancel()
        # the task learns of its cancellation on the loop's next turns; only then may the UDF go on
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    try:
        asyncio.run(main())
    finally:
        release.set()
    calls = process_calls(log)
    if not executor_case.in_processes:
        assert calls <= block_at + 1
        assert not log.hooks("postprocess")
    assert not log.hooks("merge")
    assert _worker_pids(ctx) == pids
    _assert_context_usable(ctx, random_counts)
    assert process_calls(log) == calls, "the cancelled run went on"


# ---------------------------------------------------------------- ROI: what a run starts


def test_a_roi_selecting_nothing_starts_no_task(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = load_partitioned(random_counts(DATA_SHAPE))
    res = ctx.run_udf(dataset=ds, udf=RecordingSumUDF(log=log), roi=np.zeros(NAV_SHAPE, dtype=bool))
    # preprocess once on the host (with no frames), get_results once; nothing else
    assert list(log) == [("preprocess", 0, 0), ("get_results", None, None)]
    assert res["per_frame"].data.shape == NAV_SHAPE
    assert np.isnan(res["per_frame"].data).all()
    assert_array_equal(res["total"].data, np.zeros(SIG_SHAPE))
    assert_array_equal(res["count"].data, [0])


def test_run_udf_iter_with_a_roi_selecting_nothing_yields_one_empty_step(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "log")
    ds = load_partitioned(random_counts(DATA_SHAPE))
    items = list(ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(log=log), roi=np.zeros(NAV_SHAPE, dtype=bool)))
    assert len(items) == 1
    assert items[0].damage.shape == NAV_SHAPE
    assert not items[0].damage.data.any()
    (res,) = items[0].buffers
    assert_array_equal(res["count"].data, [0])
    assert not res["per_frame"].valid_mask.any()
    assert process_calls(log) == 0


def test_partitions_without_selected_frames_are_skipped(
    ctx: gpuudf.Context, random_counts: CountsFn, tmp_path: Path
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=7)
    partitions = ds.get_partitions()
    roi = np.zeros(NUM_FRAMES, dtype=bool)
    roi[partitions[1].start] = True
    roi[partitions[4].stop - 2 : partitions[4].stop] = True
    roi[partitions[6].start + 1] = True
    log = CallLog(tmp_path / "log")
    res = ctx.run_udf(dataset=ds, udf=RecordingSumUDF(log=log), roi=roi.reshape(NAV_SHAPE))
    expected = sorted((int(g[0]), int(g[-1]) + 1) for g in selected_partitions(ds, roi))
    assert len(expected) == 3
    assert sorted((start, stop) for _, start, stop in log.hooks("postprocess")) == expected
    worker_preprocess = log.hooks("preprocess")[1:]  # the first runs on the host, before any task
    assert sorted((start, stop) for _, start, stop in worker_preprocess) == expected
    assert len(log.hooks("merge")) == 3
    for _, start, stop in log.hooks("process"):
        assert start is not None
        assert stop is not None
        assert roi[start:stop].any()
    assert_array_equal(res["count"].data, [roi.sum()])


class InPlaceMeanUDF(gpuudf.UDF):
    """Its get_results divides in place: partial reads must not change the run's sums."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"mean": self.buffer(kind="sig", dtype="float64"), "n": self.buffer(kind="single", dtype="int64")}

    def process_frame(self, frame: Any) -> None:
        self.results.mean[:] += frame
        self.results.n[:] += 1

    def merge(self, dest: Any, src: Any) -> None:
        dest.mean[:] += src.mean
        dest.n[:] += src.n

    def get_results(self) -> dict[str, Any]:
        self.results.mean /= max(int(self.results.n[0]), 1)
        return {"mean": self.results.mean}

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


def test_get_results_working_in_place_on_partial_steps_leaves_the_final_result_right(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data, num_partitions=4)
    last = None
    for step in ctx.run_udf_iter(dataset=ds, udf=InPlaceMeanUDF()):
        last = step.buffers[0]["mean"].data  # every partial step calls get_results
    assert last is not None
    np.testing.assert_allclose(last, data.reshape(-1, *data.shape[-2:]).mean(axis=0))
