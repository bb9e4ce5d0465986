"""The steps of a run: partial results as partitions merge, for loops, ``async for`` and live plots.

Policy
------
- A run is a generator of :class:`UDFResults`, one per merged partition and
  always a last one holding the final results; nothing is processed until
  the first step is asked for.
- A step's buffers are computed when first read, from a copy of the run's
  buffers, and only until the run moves on; the last step's share memory
  with the run.
- Leaving the loop, ``close()``, ``throw()`` or a failure frees the workers
  at once; progress bars and plot threads end with the run.
- Live plots get a step only when their thread is idle and due (the steps
  never wait for a plot), and the final step always, waited for.
- ``sync=False`` runs each step in a worker thread, so the event loop stays
  responsive; cancelling the awaiting task cancels the run.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from gpuudf.errors import UDFRunCancelled
from gpuudf.progress import ProgressCallback, RunProgress
from gpuudf.runner import CancelHandle, Results, UDFRun
from gpuudf.udf import UDF
from gpuudf.viz.channels import BufferInfo, UDFBuffers
from gpuudf.viz.selection import plots_for_run
from gpuudf.viz.updater import PlotFeed

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncUDFResultsIterator", "UDFResults", "UDFResultsIterator", "await_last", "plot_feed", "shaped"]


class UDFResults:
    """One step of a run: the results so far and which frames they cover.

    ``damage`` holds the frames merged at this step, as LiberTEM gives it: a
    ``nav`` bool :class:`~gpuudf.BufferWrapper` (``damage.data`` nav-shaped,
    ``damage.raw_data`` over the ROI's frames, a copy).  ``buffers`` holds
    one ``{name: BufferWrapper}`` dict per UDF, computed through each UDF's
    ``get_results`` when first read (from a copy of the run's buffers, except
    at the last step, whose buffers share memory with the run).  Read ``buffers`` before the run takes its next step:
    afterwards they would describe a later state, so reading them raises
    ``RuntimeError``.  The last step stays readable.
    """

    def __init__(self, run: UDFRun) -> None:
        self._run = run
        self._frames_merged = run.frames_merged
        self.damage = run.damage
        self._buffers: tuple[Results, ...] | None = None

    @property
    def buffers(self) -> tuple[Results, ...]:
        """Per UDF, ``{buffer name: BufferWrapper}``."""
        if self._buffers is None:
            if self._run.frames_merged != self._frames_merged:
                msg = (
                    "this step's buffers are gone: the run has moved on since. Read .buffers "
                    "inside the loop and copy what you keep (np.array(wrapper.data))"
                )
                raise RuntimeError(msg)
            self._buffers = tuple(self._run.results())
        return self._buffers

    def __repr__(self) -> str:
        return f"<UDFResults: {int(self.damage.raw_data.sum())} of {self._run.num_selected} frames merged>"


class UDFResultsIterator:
    """What ``run_udf_iter`` returns: partial results, one per merged partition.

    Besides iteration it steers the run: :meth:`cancel`, :meth:`close`,
    :meth:`throw` (an exception raised inside the run) and
    :meth:`update_parameters_experimental` (new parameter values for the
    partitions still to come).
    """

    def __init__(
        self, run: UDFRun, progress: bool | ProgressCallback, cancel: CancelHandle, plots: PlotFeed | None = None
    ) -> None:
        self._run = run
        self._progress_spec = progress
        self._cancel = cancel
        self._plots = plots
        self._steps: Generator[UDFResults, None, None] | None = None

    def __iter__(self) -> UDFResultsIterator:
        return self

    def __next__(self) -> UDFResults:
        return next(self._generator())

    def _generator(self) -> Generator[UDFResults, None, None]:
        if self._steps is None:
            # a module-level generator: one bound to self would keep self alive in a
            # cycle, and a loop left with break would not stop the run until gc ran
            self._steps = _generate_steps(self._run, self._progress_spec, self._cancel, self._plots)
        return self._steps

    def throw(self, exc: BaseException) -> NoReturn:
        """Raise ``exc`` inside the run, as ``generator.throw`` does; it comes back out of this call.

        The run stops where it is (its workers are freed, the Context stays
        usable) and the exception propagates to the caller unchanged: before
        the first step, during the run and after the last step alike.  Later
        steps end the iteration (``StopIteration``).
        """
        self._generator().throw(exc)
        msg = "the run caught the exception thrown into it"  # never: the steps catch nothing
        raise AssertionError(msg)

    def update_parameters_experimental(self, parameters: Sequence[Mapping[str, Any]]) -> None:
        """Give UDF parameters new values while the run goes on (as LiberTEM's method of this name).

        Parameters
        ----------
        parameters
            One dict per UDF of the run, in order, holding only the
            parameters to change (``{}`` for a UDF that keeps its values).
            Partitions dispatched to a worker after this call see the new
            values in ``self.params`` (their UDF instances and task data are
            re-created from them); partitions already running, or already
            queued on a worker, keep the old ones.  ``merge`` and
            ``get_results`` on the host see the new values from now on.  The
            UDF objects given to ``run_udf_iter`` are left untouched.

        Raises
        ------
        ValueError
            For a list of the wrong length, an entry that is not a dict, or a
            parameter a UDF was not constructed with; nothing changes then.
        RuntimeError
            When the run has ended (exhausted, closed, cancelled or failed).
        """
        import inspect  # noqa: PLC0415 - only updates pay for it

        if self._steps is not None and inspect.getgeneratorstate(self._steps) == inspect.GEN_CLOSED:
            msg = "the run has ended (exhausted, closed or failed): there is nothing left to update"
            raise RuntimeError(msg)
        self._run.update_parameters(parameters)

    def cancel(self) -> None:
        """Stop the run from any thread; the loop raises :class:`UDFRunCancelled`."""
        self._cancel.cancel()

    def close(self) -> None:
        """Stop the run and release what it holds; no exception.  Later steps end the iteration."""
        self._generator().close()

    def __enter__(self) -> UDFResultsIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncUDFResultsIterator:
    """``run_udf_iter(..., sync=False)``: the same steps for ``async for``.

    Each step runs in a worker thread, so the event loop stays responsive;
    cancelling the consuming task cancels the run and waits for it to stop.
    Steps, :meth:`athrow` and :meth:`aclose` take turns: one called while a
    step is in progress waits for that step.
    """

    def __init__(self, steps: UDFResultsIterator) -> None:
        self._steps = steps
        self._turns: asyncio.Lock | None = None

    def _turn(self) -> asyncio.Lock:
        import asyncio  # noqa: PLC0415 - synchronous users never pay for asyncio

        if self._turns is None:
            self._turns = asyncio.Lock()
        return self._turns

    def __aiter__(self) -> AsyncUDFResultsIterator:
        return self

    async def __anext__(self) -> UDFResults:
        import asyncio  # noqa: PLC0415 - synchronous users never pay for asyncio

        async with self._turn():
            future = asyncio.ensure_future(asyncio.to_thread(_next_or_none, weakref.ref(self._steps)))
            try:
                step = await asyncio.shield(future)
            except asyncio.CancelledError:
                self._steps.cancel()
                with contextlib.suppress(UDFRunCancelled):
                    await future  # let the run reach its next tile boundary before giving the Context back
                # the step may have ended before it saw the cancellation: the run stops here, not when freed
                await asyncio.to_thread(self._steps.close)
                raise
        if step is None:
            raise StopAsyncIteration
        return step

    def cancel(self) -> None:
        """Stop the run from any thread; the loop raises :class:`UDFRunCancelled`."""
        self._steps.cancel()

    async def aclose(self) -> None:
        """Stop the run and release what it holds."""
        import asyncio  # noqa: PLC0415

        async with self._turn():
            await asyncio.to_thread(self._steps.close)

    async def athrow(self, exc: BaseException) -> NoReturn:
        """Raise ``exc`` inside the run; it comes back out of this call.

        As :meth:`UDFResultsIterator.throw`, in a worker thread: the run stops,
        its workers are freed, and later steps end the iteration
        (``StopAsyncIteration``).
        """
        import asyncio  # noqa: PLC0415

        async with self._turn():
            await asyncio.to_thread(self._steps.throw, exc)
        msg = "the run caught the exception thrown into it"  # never: throw always raises
        raise AssertionError(msg)

    async def update_parameters_experimental(self, parameters: Sequence[Mapping[str, Any]]) -> None:
        """As :meth:`UDFResultsIterator.update_parameters_experimental`, awaitable.

        It takes effect at once, also while a step is in progress: partitions
        dispatched from then on see the new values.
        """
        self._steps.update_parameters_experimental(parameters)


def _generate_steps(
    run: UDFRun, progress_spec: bool | ProgressCallback, cancel: CancelHandle, plots: PlotFeed | None
) -> Generator[UDFResults, None, None]:
    progress = RunProgress(progress_spec, run.num_selected)
    merged = run.run(cancel, progress.advance)
    try:
        for _ in merged:
            if not run.complete:
                step = UDFResults(run)
                if plots is not None:
                    # before the yield: once the consumer resumes the run, this step's buffers are gone
                    plots.offer(functools.partial(_buffers_of, step))
                yield step
        # the last step is always there, also when no partition had frames
        last = UDFResults(run)
        if plots is not None:
            plots.finish(last.buffers)
        yield last
    finally:
        try:
            merged.close()  # at once, also when an exception is thrown in at a step: the workers are freed
        finally:
            try:
                progress.close()
            finally:
                if plots is not None:
                    plots.close()


def _buffers_of(step: UDFResults) -> tuple[Results, ...]:
    return step.buffers


def plot_feed(plots: Any, udfs: Sequence[UDF], run: UDFRun) -> PlotFeed | None:
    """The run's plots, checked against its buffers and opened; ``None`` when it has none."""
    if plots is None or plots is False:
        return None
    nav, sig = tuple(run.dataset.shape.nav), tuple(run.dataset.shape.sig)
    described = [
        UDFBuffers(
            user,
            type(user).__name__,
            {
                name: BufferInfo(decl.kind, decl.full_shape(nav, sig), decl.dtype)
                for name, decl in host.declarations.items()
                if decl.returned
            },
        )
        for user, host in zip(udfs, run.hosts, strict=True)
    ]
    chosen = plots_for_run(plots, described)
    if not chosen:
        return None
    feed = PlotFeed(chosen, [udf.name for udf in described])
    feed.open()
    return feed


def _next_or_none(steps: weakref.ref[UDFResultsIterator]) -> UDFResults | None:
    # weakly: a pool thread lets go of its arguments only after the loop has the step, so a strong
    # reference could be the last one to a loop left with break, and the run would be closed in that
    # thread while the next run already goes ("generator already executing")
    iterator = steps()
    return None if iterator is None else next(iterator, None)


def shaped(step: UDFResults, single: bool) -> Any:
    """What ``run_udf`` returns for ``step``: one UDF's results, or the list of them."""
    return step.buffers[0] if single else list(step.buffers)


async def await_last(steps: AsyncUDFResultsIterator, single: bool) -> Any:
    """``run_udf(..., sync=False)``: the last step's results, shaped; the steps are closed in any case."""
    last = None
    try:
        async for last in steps:  # noqa: B007 - the last step holds the results
            pass
    finally:
        await steps.aclose()
    assert last is not None
    return shaped(last, single)
