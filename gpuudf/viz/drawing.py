"""One channel on one Matplotlib axes: the drawing both built-in plot classes share.

Policy
------
- 2-D channels are images in array order (row 0 at the top, as
  ``imshow`` shows a NumPy array): scan positions for ``nav`` buffers,
  detector pixels for ``sig`` buffers; each has a colour bar.  1-D channels
  are lines.
- Entries that are not valid yet (frames not merged, outside the ROI, not
  finite, not positive on a log scale) are masked: grey in images, gaps in
  lines.  The colour range is the exact range of the valid entries.
- Matplotlib is imported only by the functions here, when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.viz.channels import ChannelData

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.colorbar import Colorbar
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D

__all__ = ["ChannelArtist", "freeze_layout", "look_of"]

#: Limits whose tick labels are as wide as the formatter makes them ("-750k"): the room a frozen layout keeps.
_WIDEST_LIMITS = (-999e3, 999e3)
#: The same on a log scale, whose ticks are decades ("100k", "100m").
_WIDEST_LOG_LIMITS = (100e-3, 999e3)

_AXIS_LABELS = {"nav": ("scan x", "scan y"), "sig": ("detector x", "detector y")}


class ChannelArtist:
    """One channel drawn on ``axes``: an image with a colour bar, or a line; :meth:`show` redraws its data.

    Parameters
    ----------
    axes
        Where to draw; its figure gets the colour bar.
    channel
        The channel's first data (placeholders are fine): decides image or line.
    """

    def __init__(self, axes: Axes, channel: ChannelData) -> None:
        import matplotlib as mpl  # noqa: PLC0415 - only drawn plots need Matplotlib
        from matplotlib import colors, ticker  # noqa: PLC0415

        self.axes = axes
        self._image: AxesImage | None = None
        self._line: Line2D | None = None
        self._colorbar: Colorbar | None = None
        self._shown = channel
        #: What the look of the axes depends on, apart from the data (see :mod:`gpuudf.viz.render`).
        self.signature = look_of(channel)
        # SI prefixes ("52k", "12.5m") keep every label short and need no offset text above the axis,
        # so a layout frozen once fits every later range
        short = ticker.EngFormatter(sep="")
        axes.set_title(channel.title)
        values = _masked(channel)
        if channel.data.ndim == 2:
            colormap = mpl.colormaps[channel.colormap].with_extremes(bad="0.85")
            norm = colors.LogNorm(1.0, 10.0) if channel.log else colors.Normalize(0.0, 1.0)
            self._image = axes.imshow(values, cmap=colormap, norm=norm, interpolation="nearest", origin="upper")
            figure = axes.get_figure()
            assert figure is not None
            self._colorbar = figure.colorbar(self._image, ax=axes, format=short)
            x_label, y_label = _AXIS_LABELS.get(channel.kind, ("x", "y"))
            axes.set_xlabel(x_label)
            axes.set_ylabel(y_label)
        else:
            (self._line,) = axes.plot(np.arange(len(values)), values)
            axes.set_xlim(0, max(len(values) - 1, 1))  # not from the data: placeholders are NaN
            axes.set_xlabel("scan position" if channel.kind == "nav" else "index")
            axes.set_ylabel(channel.name)
            axes.yaxis.set_major_formatter(short)
            if channel.log:
                axes.set_yscale("log")
        self.show(channel)

    def show(self, channel: ChannelData) -> None:
        """Draw ``channel``'s data (the figure is rendered by the caller)."""
        self._shown = channel
        values = _masked(channel)
        low, high = _limits(values, log=channel.log)
        self._set_limits(values, low, high)

    def widen(self) -> None:
        """Show the widest tick labels (until the next :meth:`show`), for a layout that must fit them all."""
        self._set_limits(None, *(_WIDEST_LOG_LIMITS if self._shown.log else _WIDEST_LIMITS))

    def restore(self) -> None:
        """Show the last data again, after :meth:`widen`."""
        self.show(self._shown)

    def _changing(self) -> list[Artist]:
        # the data, and the axis whose ticks follow its range; the axes' frame too, which a full draw paints
        # over the data (an image covers its inner half, a line ends under it)
        spines = list(self.axes.spines.values())
        if self._image is not None and self._colorbar is not None:
            return [self._image, *spines, self._colorbar.ax.yaxis]
        if self._line is not None:
            return [self._line, *spines, self.axes.yaxis]
        return []

    def hide_changing(self) -> None:
        """Hide what changes from one frame to the next, for a background without it."""
        for part in self._changing():
            part.set_visible(False)

    def show_changing(self) -> None:
        """Undo :meth:`hide_changing`."""
        for part in self._changing():
            part.set_visible(True)

    def draw_changing(self, renderer: RendererBase) -> None:
        """Draw what changes onto a background (:meth:`hide_changing`): the same pixels as a full draw."""
        for part in self._changing():
            part.draw(renderer)

    def _set_limits(self, values: np.ma.MaskedArray[Any, Any] | None, low: float, high: float) -> None:
        if self._image is not None:
            if values is not None:
                self._image.set_data(values)
            self._image.set_clim(low, high)
        elif self._line is not None:
            if values is not None:
                self._line.set_ydata(values)
            self.axes.set_ylim(low, high)


def look_of(channel: ChannelData) -> tuple[object, ...]:
    """What the drawing of ``channel`` depends on, apart from its data: equal looks, equal axes."""
    return (channel.data.shape, channel.kind, channel.name, channel.title, channel.colormap, channel.log)


def freeze_layout(figure: Figure, artists: Sequence[ChannelArtist]) -> None:
    """Lay ``figure`` out once, with room for the widest labels, and keep it.

    A constrained layout costs more than drawing the data again, so figures
    drawn off screen are laid out once, before the first update.
    """
    for artist in artists:
        artist.widen()
    figure.draw_without_rendering()
    figure.set_layout_engine("none")
    for artist in artists:
        artist.restore()


def _masked(channel: ChannelData) -> np.ma.MaskedArray[Any, Any]:
    data = channel.data
    values = data if data.dtype.kind == "f" else data.astype(np.float64)
    hidden = ~channel.valid
    if channel.log:
        with np.errstate(invalid="ignore"):
            hidden = hidden | ~(values > 0)
    return np.ma.masked_array(values, mask=hidden)


def _limits(values: np.ma.MaskedArray[Any, Any], *, log: bool) -> tuple[float, float]:
    shown = values.compressed()
    if shown.size == 0:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = float(shown.min()), float(shown.max())
    if low < high:
        return low, high
    return (low / 2, low * 2) if log else (low - 0.5, low + 0.5)
