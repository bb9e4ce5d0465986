"""Rendering a figure of channels again and again, cheaply: for PNG files and notebook images.

Policy
------
- What changes between two frames of a live plot is little: the image or
  line of each channel and the ticks of the axis that shows its range (the
  colour bar's, or a line's y axis).  The rest (titles, the other axis,
  the colour bar's gradient, the frame) is drawn once, without the parts
  that change, and kept as a background; a frame restores the background
  and draws the changing parts on it, which takes a fraction of a full
  draw and gives the same pixels.
- Laying a figure out (a constrained layout, with room for the widest tick
  labels) and drawing its background cost more than a frame, and depend only
  on what the channels look like, not on their data: both are remembered
  per figure signature (size, resolution, grid, and each channel's shape,
  kind, title, colormap and scale), for the last
  :data:`REMEMBERED_FIGURES` signatures of the process, so a second run
  with the same plots skips them.
- Frames are encoded as PNG straight from the canvas' pixel buffer with
  Pillow (Matplotlib's own dependency), at zlib level 1 with run-length
  matching: on the frames of these plots a third of the time of Pillow's
  defaults, for files as small (large flat areas, few colours).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.viz.drawing import ChannelArtist, freeze_layout

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REMEMBERED_FIGURES", "FrameRenderer", "figure_signature", "forget_figures"]

#: Figure signatures whose layout and background a process keeps.
REMEMBERED_FIGURES = 16

_PNG_COMPRESS_LEVEL = 1
_PNG_COMPRESS_TYPE_RLE = 3  # zlib's Z_RLE strategy


class _Remembered:
    """Layouts and backgrounds by figure signature, the most recently used kept (thread safe)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[object, Any] = OrderedDict()

    def get(self, key: object) -> Any:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: object, value: object) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_layouts = _Remembered(REMEMBERED_FIGURES)
_backgrounds = _Remembered(REMEMBERED_FIGURES)


def figure_signature(figure: Figure, grid: tuple[int, int], artists: Sequence[ChannelArtist]) -> tuple[object, ...]:
    """What a figure's layout and background depend on: equal signatures, equal pixels."""
    size = tuple(float(inch) for inch in figure.get_size_inches())
    return (size, float(figure.dpi), grid, tuple(artist.signature for artist in artists))


class FrameRenderer:
    """Draws the frames of one figure whose channels are ``artists``.

    Parameters
    ----------
    figure
        A figure with an Agg canvas, laid out by its layout engine (which
        this replaces with a fixed layout).
    artists
        Every channel of the figure, in the order its axes were made.
    signature
        :func:`figure_signature` of the figure, under which its layout and
        background are remembered.
    """

    def __init__(self, figure: Figure, artists: Sequence[ChannelArtist], signature: tuple[object, ...]) -> None:
        self.figure = figure
        self._artists = tuple(artists)
        self._signature = signature
        positions = _layouts.get(signature)
        if positions is None:
            freeze_layout(figure, self._artists)
            # both positions: the active one, which an axes with a fixed aspect takes when drawn, is what a
            # frame's axis is drawn with, and a frame does not draw the axes
            positions = [(axes.get_position(original=True), axes.get_position()) for axes in figure.axes]
            _layouts.put(signature, positions)
        else:
            figure.set_layout_engine("none")
            for axes, (original, active) in zip(figure.axes, positions, strict=True):
                axes.set_position(original, which="original")
                axes.set_position(active, which="active")
        self._background: np.ndarray[Any, np.dtype[np.uint8]] | None = None

    def prime(self) -> None:
        """Draw the background now, unless it is remembered: a first frame then costs what every frame costs."""
        if self._background is None:
            self._background = _backgrounds.get(self._signature)
        if self._background is None:
            self.render()

    def render(self) -> None:
        """Draw the channels' current data onto the canvas' pixel buffer."""
        canvas: Any = self.figure.canvas  # an Agg canvas, whose renderer Matplotlib's stubs leave untyped
        renderer = canvas.get_renderer()
        pixels = np.asarray(renderer.buffer_rgba())
        if self._background is None:
            self._background = _backgrounds.get(self._signature)
        if self._background is None or self._background.shape != pixels.shape:
            self._background = self._draw_background()
            _backgrounds.put(self._signature, self._background)
            renderer = canvas.get_renderer()
            pixels = np.asarray(renderer.buffer_rgba())
        pixels[...] = self._background
        for artist in self._artists:
            artist.draw_changing(renderer)

    def png(self) -> bytes:
        """The last rendered frame, as a PNG file's bytes."""
        from PIL import Image  # noqa: PLC0415 - only drawn plots need Pillow

        canvas: Any = self.figure.canvas
        width, height = canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        encoded = io.BytesIO()
        image.save(encoded, format="png", compress_level=_PNG_COMPRESS_LEVEL, compress_type=_PNG_COMPRESS_TYPE_RLE)
        return encoded.getvalue()

    def _draw_background(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        for artist in self._artists:
            artist.hide_changing()
        try:
            self.figure.canvas.draw()
        finally:
            for artist in self._artists:
                artist.show_changing()
        canvas: Any = self.figure.canvas
        return np.array(canvas.get_renderer().buffer_rgba(), copy=True)


def forget_figures() -> None:
    """Drop every remembered layout and background (for tests)."""
    _layouts.clear()
    _backgrounds.clear()
