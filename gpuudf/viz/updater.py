"""The plot thread of a run: updates off the merge path, coalesced, final one waited for.

Policy
------
- The thread that consumes the run offers each step; the step's results are
  computed (``UDFResults.buffers``, from a copy) and handed over only when
  the plot thread is idle and a plot's ``1 / rate`` seconds have passed
  since its last update.  Otherwise the step is skipped: updates coalesce,
  and a slow plot slows only itself.
- The final step is always handed to every plot that has not failed, and
  the consumer waits for it, so a plot's last frame is the final result.
- A plot that raises gets no further calls in the run; the consumer's thread
  warns once per plot (:class:`~gpuudf.viz.PlotWarning`), never the plot
  thread, so the warning reaches the caller's filters.
- The thread stops when the run ends, fails, is cancelled or closed: the
  update in progress completes, a pending one is dropped.
"""

from __future__ import annotations

import functools
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gpuudf.results import BufferWrapper
from gpuudf.viz.channels import ChannelData
from gpuudf.viz.plot import LivePlot, PlotWarning

__all__ = ["PlotFeed"]

StepBuffers = Sequence[Mapping[str, BufferWrapper]]


@dataclass(frozen=True)
class _Job:
    plots: tuple[LivePlot, ...]
    buffers: StepBuffers | None  # None: prepare the plots
    final: bool


class PlotFeed:
    """The bound plots of one run, and the thread that updates them.

    Parameters
    ----------
    plots
        Plots already bound to the run's channels (:meth:`LivePlot.bind`).
    udf_names
        The class name of each UDF of the run, for the channels' titles.
    clock
        Seconds, monotonic; tests may pass their own.
    """

    def __init__(
        self,
        plots: Sequence[LivePlot],
        udf_names: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plots = tuple(plots)
        self._udf_names = tuple(udf_names)
        self._clock = clock
        self._active = list(self._plots)
        self._last_update = dict.fromkeys(map(id, self._plots), clock())
        self._changed = threading.Condition()
        self._job: _Job | None = None
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._failures: list[tuple[LivePlot, str, Exception]] = []
        self._warned = 0

    def open(self) -> None:
        """Open every plot in this thread, then start preparing them in the plot thread."""
        for plot in self._plots:
            self._call_safely(plot, "opening", functools.partial(plot.open, plot.placeholders))
        self._warn_failures()
        now = self._clock()
        self._last_update = dict.fromkeys(map(id, self._plots), now)
        with self._changed:
            plots = tuple(self._active)
        if plots:
            self._hand(_Job(plots, None, final=False))

    def offer(self, buffers: Callable[[], StepBuffers]) -> None:
        """A step of the run: hand ``buffers()`` to the plots that are due, if the thread is idle."""
        self._poll()
        self._warn_failures()
        with self._changed:
            if self._busy or self._stopping:
                return
            now = self._clock()
            due = tuple(p for p in self._active if now - self._last_update[id(p)] >= 1.0 / p.rate)
            if not due:
                return
            for plot in due:
                self._last_update[id(plot)] = now
        self._hand(_Job(due, buffers(), final=False))

    def finish(self, buffers: StepBuffers) -> None:
        """The final results: wait for the thread, hand them to every plot, wait until they are drawn."""
        with self._changed:
            self._changed.wait_for(lambda: not self._busy)
            plots = tuple(self._active)
        if plots:
            self._hand(_Job(plots, buffers, final=True))
            with self._changed:
                self._changed.wait_for(lambda: not self._busy)
        self._poll()
        self._warn_failures()

    def close(self) -> None:
        """Stop the thread (the update in progress completes); warn about failures not yet reported."""
        with self._changed:
            self._stopping = True
            self._job = None
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._warn_failures()

    def _hand(self, job: _Job) -> None:
        with self._changed:
            if self._stopping:
                return
            self._job = job
            self._busy = True
            self._changed.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="gpuudf-plots", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._job is not None or self._stopping)
                if self._stopping:
                    self._busy = False
                    self._changed.notify_all()
                    return
                job = self._job
                self._job = None
            assert job is not None
            try:
                self._draw(job)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _draw(self, job: _Job) -> None:
        buffers = job.buffers
        if buffers is None:
            for plot in job.plots:
                self._call_safely(plot, "preparing", functools.partial(plot.prepare, plot.placeholders))
            return
        extracted: dict[tuple[int, int], ChannelData] = {}

        def data_of(plot: LivePlot) -> list[ChannelData]:
            out = []
            for index, channel in zip(plot.udf_indices, plot.channels, strict=True):
                key = (index, id(channel))
                if key not in extracted:
                    extracted[key] = ChannelData.of_results(
                        channel, index, self._udf_names[index], buffers[index], final=job.final
                    )
                out.append(extracted[key])
            return out

        doing = "drawing the final result" if job.final else "updating"
        for plot in job.plots:
            self._call_safely(plot, doing, functools.partial(_deliver, plot, data_of, final=job.final))

    def _poll(self) -> None:
        for plot in tuple(self._active):
            self._call_safely(plot, "polling", plot.poll)

    def _call_safely(self, plot: LivePlot, doing: str, call: Callable[[], None]) -> None:
        with self._changed:
            if plot not in self._active:
                return
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - a broken plot must never break the run; it is reported
            with self._changed:
                if plot in self._active:
                    self._active.remove(plot)
                    self._failures.append((plot, doing, exc))

    def _warn_failures(self) -> None:
        with self._changed:
            new = self._failures[self._warned :]
            self._warned = len(self._failures)
        for plot, doing, exc in new:
            msg = (
                f"the live plot {plot!r} raised {type(exc).__name__}: {exc} while {doing}; "
                "it gets no more updates in this run, which goes on"
            )
            warnings.warn(msg, PlotWarning, stacklevel=2)


def _deliver(plot: LivePlot, data_of: Callable[[LivePlot], list[ChannelData]], *, final: bool) -> None:
    # the data is taken inside the plot's guarded call: a transform that raises fails its plot only
    if final:
        plot.finish(data_of(plot))
    else:
        plot.update(data_of(plot))
