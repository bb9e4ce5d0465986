"""Live plots in one Matplotlib figure, in scripts and notebooks.

Policy
------
- One figure per plot object, one axes per channel; the figure appears where
  the backend shows figures, decided when the plot is opened:

  - a GUI backend (QtAgg, TkAgg, ...): a window; the plot thread only hands
    the data over, and the thread that consumes the run applies it and lets
    the toolkit draw (:meth:`~MatplotlibPlots.poll`), since GUI toolkits draw
    only in their own thread;
  - ``%matplotlib widget`` (ipympl) and ``nbagg``: the canvas widget is
    displayed; the plot thread renders, which pushes the image to the
    notebook at once, and calls ``draw_idle`` at the end;
  - ``%matplotlib inline``: the figure is displayed with a display id, and
    the plot thread re-renders that output in place (``update``), so the
    cell shows one figure that changes, not one per update;
  - any other backend (Agg, headless): the figure is made and rendered off
    screen, in the plot thread; :attr:`~MatplotlibPlots.figure` holds it.

  Off screen (inline, headless) the layout is computed once and kept, which
  makes an update several times cheaper.
- Matplotlib and IPython are imported when a plot opens, never before.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpuudf.viz.channels import ChannelData
from gpuudf.viz.drawing import ChannelArtist, freeze_layout
from gpuudf.viz.plot import DEFAULT_RATE_HZ, LivePlot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MatplotlibPlots", "display_mode"]

_WIDGET_BACKENDS = frozenset({"widget", "ipympl", "module://ipympl.backend_nbagg", "nbagg"})


def display_mode() -> str:
    """Where the current Matplotlib backend shows a figure: ``"gui"``, ``"widget"``, ``"inline"`` or ``"headless"``."""
    import matplotlib as mpl  # noqa: PLC0415 - only plots need Matplotlib
    from matplotlib.backends.registry import BackendFilter, backend_registry  # noqa: PLC0415

    registry: Any = backend_registry  # untyped in Matplotlib's stubs
    backend = mpl.get_backend().lower()
    if "inline" in backend:
        return "inline"
    if backend in _WIDGET_BACKENDS:
        return "widget"
    if backend in registry.list_builtin(BackendFilter.INTERACTIVE):
        return "gui"
    return "headless"


class MatplotlibPlots(LivePlot):
    """A Matplotlib figure with one axes per channel, updated while the run goes on.

    ``run_udf(..., plots=True)`` makes one of these for every 2-D result of
    every UDF.

    Parameters
    ----------
    channels
        As for :class:`LivePlot`; 1-D channels are drawn as lines.
    rate
        Updates per second at most.
    columns
        Axes per row of the figure.
    axes_size
        Width and height of one axes with its colour bar, in inches.
    """

    def __init__(
        self,
        channels: Sequence[object] | None = None,
        rate: float = DEFAULT_RATE_HZ,
        columns: int = 3,
        axes_size: tuple[float, float] = (4.4, 3.6),
    ) -> None:
        super().__init__(channels, rate)
        self.columns = columns
        self.axes_size = axes_size
        self.mode = ""
        self._figure: Figure | None = None
        self._artists: list[ChannelArtist] = []
        self._display: Any = None
        self._pending: Sequence[ChannelData] | None = None
        self._pending_lock = threading.Lock()

    @property
    def figure(self) -> Figure:
        """The figure, once the plot is open."""
        if self._figure is None:
            msg = "the plot is not open: it opens when a run with plots=[this plot] starts"
            raise RuntimeError(msg)
        return self._figure

    def open(self, channels: Sequence[ChannelData]) -> None:
        """Make the figure and show it where the backend shows figures (headless: in :meth:`prepare`)."""
        self.mode = display_mode()
        if self.mode != "headless":
            self._make_figure(channels)

    def prepare(self, channels: Sequence[ChannelData]) -> None:
        """Headless: make the figure, in the plot thread; inline: fix its layout."""
        if self.mode == "headless":
            self._make_figure(channels)
        if self.mode in {"headless", "inline"}:
            freeze_layout(self.figure, self._artists)

    def _make_figure(self, channels: Sequence[ChannelData]) -> None:
        count = max(len(channels), 1)
        columns = min(count, self.columns)
        rows = math.ceil(count / columns)
        size = (self.axes_size[0] * columns, self.axes_size[1] * rows)
        figure = self._new_figure(size)
        self._figure = figure
        self._artists = [
            ChannelArtist(figure.add_subplot(rows, columns, position + 1), channel)
            for position, channel in enumerate(channels)
        ]
        if self.mode == "inline":
            self._display = _ipython_display()(figure, display_id=True)
        elif self.mode == "widget":
            _ipython_display()(figure.canvas)
        elif self.mode == "gui":
            figure.show()
            figure.canvas.flush_events()

    def _new_figure(self, size: tuple[float, float]) -> Figure:
        if self.mode in {"gui", "widget"}:
            import matplotlib.pyplot as plt  # noqa: PLC0415 - the backend's own canvas and window

            with plt.ioff():  # shown by open, not again when the cell ends
                return plt.figure(figsize=size, layout="constrained")
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        # not pyplot's: the inline backend would show a pyplot figure a second time when the cell ends
        figure = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(figure)
        return figure

    def update(self, channels: Sequence[ChannelData]) -> None:
        """Draw the results so far (in the plot thread; a GUI draws at the next :meth:`poll`)."""
        if self.mode == "gui":
            with self._pending_lock:
                self._pending = channels
            return
        self._apply(channels)
        figure = self.figure
        if self.mode == "inline":
            self._display.update(figure)
        else:
            figure.canvas.draw()

    def finish(self, channels: Sequence[ChannelData]) -> None:
        """Draw the final results."""
        self.update(channels)
        if self.mode == "widget":
            # should the push of draw() have missed a front end that connects late, it asks again
            self.figure.canvas.draw_idle()

    def poll(self) -> None:
        """GUI backends: apply the latest data and let the toolkit draw; otherwise nothing."""
        if self.mode != "gui":
            return
        with self._pending_lock:
            pending, self._pending = self._pending, None
        canvas = self.figure.canvas
        if pending is not None:
            self._apply(pending)
            canvas.draw_idle()
        canvas.flush_events()

    def _apply(self, channels: Sequence[ChannelData]) -> None:
        for artist, channel in zip(self._artists, channels, strict=True):
            artist.show(channel)


def _ipython_display() -> Any:
    from IPython.display import display  # noqa: PLC0415 - only notebooks need IPython

    return display  # as Any: IPython does not annotate it
