"""Progress (API.md §4, ``progress=``): a callback per tile, the tqdm bar, and the bar always closed.

A bar or callback runs in the caller's process; tiles are reported there by
every executor, so these tests need no in-process steering and run on all of
``EXECUTOR_PARAMS``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tqdm.auto
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDFRunCancelled
from gpuudf.datasets import DataSet
from tests.udfs_for_tests import (
    DATA_SHAPE,
    NAV_SHAPE,
    CallLog,
    HookError,
    RaiseAt,
    RaisingUDF,
    RecordingSumUDF,
    process_calls,
    selected_partitions,
)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]

NUM_FRAMES = math.prod(NAV_SHAPE)

MASK = np.arange(NUM_FRAMES).reshape(NAV_SHAPE) % 3 != 1
MASK[1] = False

ROIS = [
    pytest.param(None, id="no-roi"),
    pytest.param(MASK, id="mask"),
]


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, frames_done: int, frames_total: int) -> None:
        self.calls.append((frames_done, frames_total))

    @property
    def increments(self) -> list[int]:
        """Frames added by each call that added any."""
        done = [0] + [d for d, _ in self.calls]
        return [b - a for a, b in itertools.pairwise(done) if b != a]


def _tile_sizes(ds: DataSet, roi: np.ndarray[Any, Any] | None, depth: int) -> list[int]:
    """Frames of every tile of the run: each partition's selected frames in tiles of ``depth``."""
    sizes = []
    for group in selected_partitions(ds, roi):
        full, rest = divmod(len(group), depth)
        sizes += [depth] * full + ([rest] if rest else [])
    return sizes


def _selected(roi: np.ndarray[Any, Any] | None) -> int:
    return NUM_FRAMES if roi is None else int(np.count_nonzero(roi))


@pytest.fixture
def no_open_bars() -> None:
    """No tqdm bar is open before the test (a bar another test left in a cycle is collected first)."""
    gc.collect()
    assert not _open_bars()


def _open_bars() -> list[Any]:
    return list(tqdm.auto.tqdm._instances)


# ---------------------------------------------------------------- callback


@pytest.mark.in_process  # worker processes report progress at most every 50 ms, not per tile
@pytest.mark.parametrize("method", ["frame", "tile"])
@pytest.mark.parametrize("roi", ROIS)
def test_a_progress_callback_is_called_after_every_tile(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    roi: np.ndarray[Any, Any] | None,
    method: str,
) -> None:
    ds = load_partitioned(random_counts(DATA_SHAPE))
    recorder = Recorder()
    res = ctx.run_udf(dataset=ds, udf=RecordingSumUDF(method=method, depth=2), roi=roi, progress=recorder)
    selected = _selected(roi)
    assert_array_equal(res["count"].data, [selected])
    assert {total for _, total in recorder.calls} == {selected}
    done = [d for d, _ in recorder.calls]
    assert done == sorted(done), "progress went backwards"
    assert done[-1] == selected
    # one call per tile, whatever order the tiles finish in
    assert sorted(recorder.increments) == sorted(_tile_sizes(ds, roi, depth=2))


@pytest.mark.in_process  # worker processes report progress at most every 50 ms, not per tile
def test_progress_moves_within_a_partition(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=1)
    recorder = Recorder()
    ctx.run_udf(dataset=ds, udf=RecordingSumUDF(method="tile", depth=4), progress=recorder)
    assert [d for d, _ in recorder.calls if d] == [*range(4, NUM_FRAMES, 4), NUM_FRAMES]


def test_process_partition_reports_progress_once_per_partition(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=5)
    recorder = Recorder()
    ctx.run_udf(dataset=ds, udf=RecordingSumUDF(method="partition"), progress=recorder, roi=MASK)
    assert sorted(recorder.increments) == sorted(len(g) for g in selected_partitions(ds, MASK))
    assert recorder.calls[-1] == (_selected(MASK), _selected(MASK))


def test_a_roi_selecting_nothing_reports_no_frames(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    recorder = Recorder()
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    res = ctx.run_udf(dataset=ds, udf=RecordingSumUDF(), roi=np.zeros(NAV_SHAPE, dtype=bool), progress=recorder)
    assert_array_equal(res["count"].data, [0])
    assert all(call == (0, 0) for call in recorder.calls)


@pytest.mark.parametrize("how", ["run_udf_iter", "async-run_udf", "async-run_udf_iter"])
def test_a_progress_callback_works_with_every_way_to_run(
    ctx: gpuudf.Context, random_counts: CountsFn, how: str
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    recorder = Recorder()
    kwargs: dict[str, Any] = {"dataset": ds, "udf": RecordingSumUDF(depth=3), "roi": MASK, "progress": recorder}
    if how == "run_udf_iter":
        steps = [item.damage.data.sum() for item in ctx.run_udf_iter(**kwargs)]
        assert steps[-1] == _selected(MASK)
    elif how == "async-run_udf":

        async def run() -> Any:
            return await ctx.run_udf(sync=False, **kwargs)

        asyncio.run(run())
    else:

        async def iterate() -> None:
            async for _ in ctx.run_udf_iter(sync=False, **kwargs):
                pass

        asyncio.run(iterate())
    assert recorder.calls[-1] == (_selected(MASK), _selected(MASK))
    assert sum(recorder.increments) == _selected(MASK)  # per tile in-process: see the test above


@pytest.mark.parametrize("progress", [3, 2.5, "yes", [True]], ids=["int", "float", "str", "list"])
def test_progress_that_is_neither_a_bool_nor_a_callable_is_a_type_error_before_any_frame(
    ctx: gpuudf.Context, random_counts: CountsFn, tmp_path: Path, progress: Any
) -> None:
    log = CallLog(tmp_path / "log")
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE))
    with pytest.raises(TypeError, match=r"progress=.*True for a progress bar.*callable"):
        ctx.run_udf(dataset=ds, udf=RecordingSumUDF(log=log), progress=progress)
    with pytest.raises(TypeError, match=r"progress="):
        list(ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(log=log), progress=progress))
    assert process_calls(log) == 0


# ---------------------------------------------------------------- the bar


@pytest.mark.in_process  # worker processes report progress at most every 50 ms, not per tile
@pytest.mark.usefixtures("no_open_bars")
@pytest.mark.parametrize("roi", ROIS)
def test_the_bar_counts_the_selected_frames_and_advances_per_tile(
    ctx: gpuudf.Context,
    random_counts: CountsFn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    roi: np.ndarray[Any, Any] | None,
) -> None:
    updates: list[tuple[int | None, float]] = []
    update = tqdm.auto.tqdm.update

    def recording_update(self: Any, n: float = 1) -> Any:
        updates.append((self.total, n))
        return update(self, n)

    monkeypatch.setattr(tqdm.auto.tqdm, "update", recording_update)
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=1)
    ctx.run_udf(dataset=ds, udf=RecordingSumUDF(depth=2), roi=roi, progress=True)
    selected = _selected(roi)
    assert {total for total, _ in updates} == {selected}
    assert sorted(n for _, n in updates if n) == sorted(_tile_sizes(ds, roi, depth=2))
    assert f"{selected}/{selected}" in capsys.readouterr().err
    assert not _open_bars()


def _cancel_at_first_step(results: Any) -> None:
    for _ in results:
        results.cancel()


def _interrupted(ctx: gpuudf.Context, ds: DataSet, how: str, tmp_path: Path) -> None:
    """Start a run with a bar and stop it the way ``how`` says, raising what the caller sees."""
    if how == "error":
        ctx.run_udf(dataset=ds, udf=RaisingUDF(hook="process_tile", skip=2), progress=True)
    elif how == "keyboard-interrupt":
        udf = RecordingSumUDF(depth=2, log=CallLog(tmp_path / "log"), on_process=RaiseAt(3, KeyboardInterrupt))
        ctx.run_udf(dataset=ds, udf=udf, progress=True)
    elif how == "cancel-handle":
        handle = gpuudf.CancelHandle()
        handle.cancel()
        ctx.run_udf(dataset=ds, udf=RecordingSumUDF(), progress=True, cancel=handle)
    elif how == "cancel-iterator":
        _cancel_at_first_step(ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2), progress=True))
    elif how == "async-error":

        async def run() -> Any:
            return await ctx.run_udf(dataset=ds, udf=RaisingUDF(hook="process_tile", skip=2), progress=True, sync=False)

        asyncio.run(run())
    else:
        raise AssertionError(how)


@pytest.mark.usefixtures("no_open_bars")
@pytest.mark.parametrize(
    ("how", "raised"),
    [
        pytest.param("error", HookError, id="error"),
        pytest.param("keyboard-interrupt", KeyboardInterrupt, id="keyboard-interrupt"),
        pytest.param("cancel-handle", UDFRunCancelled, id="cancel-handle"),
        pytest.param("cancel-iterator", UDFRunCancelled, id="cancel-iterator"),
        pytest.param("async-error", HookError, id="async-error"),
    ],
)
def test_the_bar_is_closed_when_a_run_fails_or_is_cancelled(
    ctx: gpuudf.Context,
    random_counts: CountsFn,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    how: str,
    raised: type[BaseException],
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    with pytest.raises(raised) as excinfo:
        _interrupted(ctx, ds, how, tmp_path)
    # excinfo keeps the failed run's frames alive: a bar left open would still be listed
    assert excinfo.value is not None
    assert not _open_bars()
    assert "gpuudf" in capsys.readouterr().err


@pytest.mark.usefixtures("no_open_bars")
def test_the_bar_is_closed_when_the_iterator_is_closed(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    results = ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2), progress=True)
    next(results)
    assert len(_open_bars()) == 1
    results.close()
    assert not _open_bars()


@pytest.mark.usefixtures("no_open_bars")
def test_the_bar_is_closed_when_the_loop_is_left(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=3)
    gc.disable()  # closed when the loop lets go of the run, not when the cycle collector comes by
    try:
        for _item in ctx.run_udf_iter(dataset=ds, udf=RecordingSumUDF(depth=2), progress=True):
            assert len(_open_bars()) == 1
            break
        del _item
        assert not _open_bars()
    finally:
        gc.enable()
