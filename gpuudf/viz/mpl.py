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
  - ``%matplotlib inline``: an output with a display id is made when the
    plot opens, and the plot thread replaces it with each frame, a PNG
    drawn on a kept background (:class:`~gpuudf.viz.render.FrameRenderer`),
    so the cell shows one figure that changes, not one per update;
  - any other backend (Agg, headless): nothing is on screen, so nothing is
    drawn while the run goes on; the plot keeps the latest results, and
    :attr:`~MatplotlibPlots.figure` makes the figure and puts them in when
    it is read.
- Matplotlib and IPython are imported when a plot opens, never before.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpuudf.viz.channels import ChannelData
from gpuudf.viz.drawing import ChannelArtist
from gpuudf.viz.plot import DEFAULT_RATE_HZ, LivePlot
from gpuudf.viz.render import FrameRenderer, figure_signature

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
        self._renderer: FrameRenderer | None = None
        self._pending: Sequence[ChannelData] | None = None
        self._pending_lock = threading.Lock()

    @property
    def figure(self) -> Figure:
        """The figure, once the plot is open; headless, made when first read, and showing the latest results."""
        with self._pending_lock:
            if self.mode == "headless" and self._pending is not None:
                if self._figure is None:
                    self._make_figure(self._pending)
                self._apply(self._pending)
                self._pending = None
        if self._figure is None:
            msg = "the plot is not open: it opens when a run with plots=[this plot] starts"
            raise RuntimeError(msg)
        return self._figure

    def open(self, channels: Sequence[ChannelData]) -> None:
        """Show the figure where the backend shows figures (inline: a blank output; headless: nothing)."""
        self.mode = display_mode()
        if self.mode == "headless":
            self._keep(channels)
        elif self.mode == "inline":
            # a blank output, replaced by each frame; the figure is made in the plot thread
            self._display = _ipython_display()(_ipython_blank(), display_id=True)
        else:
            self._make_figure(channels)

    def prepare(self, channels: Sequence[ChannelData]) -> None:
        """Inline: make the figure, fix its layout and have its background ready, in the plot thread."""
        if self.mode == "inline":
            self._make_figure(channels)
            rows, columns = _grid(len(channels), self.columns)
            figure = self.figure
            signature = figure_signature(figure, (rows, columns), self._artists)
            self._renderer = FrameRenderer(figure, self._artists, signature)
            self._renderer.prime()

    def _make_figure(self, channels: Sequence[ChannelData]) -> None:
        rows, columns = _grid(len(channels), self.columns)
        size = (self.axes_size[0] * columns, self.axes_size[1] * rows)
        figure = self._new_figure(size)
        self._figure = figure
        self._artists = [
            ChannelArtist(figure.add_subplot(rows, columns, position + 1), channel)
            for position, channel in enumerate(channels)
        ]
        if self.mode == "widget":
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
        if self.mode in {"gui", "headless"}:
            self._keep(channels)
            return
        self._apply(channels)
        if self.mode == "inline":
            if self._renderer is None:
                self.prepare(channels)
            assert self._renderer is not None
            self._renderer.render()
            self._display.update(_ipython_png(self._renderer.png()))
        else:
            self.figure.canvas.draw()

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

    def _keep(self, channels: Sequence[ChannelData]) -> None:
        with self._pending_lock:
            self._pending = channels

    def _apply(self, channels: Sequence[ChannelData]) -> None:
        for artist, channel in zip(self._artists, channels, strict=True):
            artist.show(channel)


def _grid(count: int, most_columns: int) -> tuple[int, int]:
    """Rows and columns of a figure with ``count`` axes, at most ``most_columns`` per row."""
    columns = min(max(count, 1), most_columns)
    return math.ceil(max(count, 1) / columns), columns


def _ipython_blank() -> Any:
    from IPython.display import Pretty  # noqa: PLC0415 - only notebooks need IPython

    blank: Any = Pretty  # as Any: IPython does not annotate it
    return blank("")


def _ipython_png(png: bytes) -> Any:
    from IPython.display import Image  # noqa: PLC0415 - only notebooks need IPython

    image: Any = Image  # as Any: IPython does not annotate it
    return image(data=png, format="png")


def _ipython_display() -> Any:
    from IPython.display import display  # noqa: PLC0415 - only notebooks need IPython

    return display  # as Any: IPython does not annotate it
