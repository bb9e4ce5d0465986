"""Live plots as PNG files, for runs without a screen.

Policy
------
- One file per channel, named ``<UDF position>-<UDF class>-<buffer>.png``,
  rewritten at every update; a file is replaced whole (written beside it,
  then renamed), so a viewer never reads half an image.  After the run the
  files show the final result.
- Everything is drawn with Agg in the plot thread, whatever backend
  Matplotlib uses otherwise.  Figures are made, laid out and their
  background drawn in :meth:`~PNGPlots.prepare`, while the run starts, so
  an update only draws the data on the background and writes files
  (:class:`~gpuudf.viz.render.FrameRenderer`).  No file is written before
  the first update.
- A figure is private to the plot, so when a run has drawn its final frame
  the plot's figures are kept, for the next :class:`PNGPlots` of the
  process whose channels look the same (at most :data:`SPARE_FIGURES` of
  each look, for channels of at most :data:`SPARE_MOST_ENTRIES` entries),
  and that run makes none.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from gpuudf.viz.channels import ChannelData
from gpuudf.viz.drawing import ChannelArtist, look_of
from gpuudf.viz.plot import DEFAULT_RATE_HZ, LivePlot
from gpuudf.viz.render import FrameRenderer, figure_signature

__all__ = ["SPARE_FIGURES", "SPARE_MOST_ENTRIES", "PNGPlots"]

#: Finished figures kept per look of a channel (and for at most as many looks).
SPARE_FIGURES = 8

#: Channels of more entries than this leave no spare figure: it would keep their data.
SPARE_MOST_ENTRIES = 2**20

_Drawn = tuple[FrameRenderer, ChannelArtist]


class _SpareFigures:
    """Figures of finished runs by the look of their channel, for plots to come (thread safe)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._by_look: OrderedDict[object, list[_Drawn]] = OrderedDict()

    def take(self, look: object) -> _Drawn | None:
        with self._lock:
            spare = self._by_look.get(look)
            return spare.pop() if spare else None

    def keep(self, look: object, drawn: _Drawn) -> None:
        with self._lock:
            spare = self._by_look.setdefault(look, [])
            self._by_look.move_to_end(look)
            if len(spare) < self._capacity:
                spare.append(drawn)
            while len(self._by_look) > self._capacity:
                self._by_look.popitem(last=False)


_spare = _SpareFigures(SPARE_FIGURES)


class PNGPlots(LivePlot):
    """Writes one PNG per channel into ``directory``, overwritten at each update.

    Parameters
    ----------
    directory
        Made if missing.
    channels
        As for :class:`LivePlot`.
    rate
        Updates (file writes) per second at most.
    dpi
        Resolution of the files.
    size
        Width and height of each image, in inches.

    Attributes
    ----------
    paths
        Per channel, the file it is written to (known once the run has started).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        channels: Sequence[object] | None = None,
        rate: float = DEFAULT_RATE_HZ,
        dpi: int = 100,
        size: tuple[float, float] = (5.0, 4.0),
    ) -> None:
        super().__init__(channels, rate)
        self.directory = Path(directory)
        self.dpi = dpi
        self.size = size
        self.paths: list[Path] = []
        self._figures: list[_Drawn] = []

    def open(self, channels: Sequence[ChannelData]) -> None:
        """Make the directory and choose the file names."""
        self.directory.mkdir(parents=True, exist_ok=True)
        taken: set[str] = set()
        self.paths = []
        for channel in channels:
            name, copy = channel.label, 2
            while name in taken:  # the same buffer twice, with different titles or colormaps
                name, copy = f"{channel.label}-{copy}", copy + 1
            taken.add(name)
            self.paths.append(self.directory / f"{name}.png")
        self._figures = []

    def prepare(self, channels: Sequence[ChannelData]) -> None:
        """Take or make one figure per channel, and have its layout and background ready (in the plot thread)."""
        self._figures = [_spare.take(self._look(channel)) or self._new_figure(channel) for channel in channels]
        for renderer, _ in self._figures:
            renderer.prime()

    def update(self, channels: Sequence[ChannelData]) -> None:
        """Draw every channel and replace its file."""
        if not self._figures:
            self.prepare(channels)
        for (renderer, artist), channel, path in zip(self._figures, channels, self.paths, strict=True):
            artist.show(channel)
            renderer.render()
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(renderer.png())
            partial.replace(path)

    def finish(self, channels: Sequence[ChannelData]) -> None:
        """Draw the final result, then leave the figures to the next plot whose channels look the same."""
        self.update(channels)
        figures, self._figures = self._figures, []
        for (renderer, artist), channel in zip(figures, self.placeholders, strict=True):
            if channel.data.size <= SPARE_MOST_ENTRIES:
                artist.show(channel)  # not to keep the result alive
                _spare.keep(self._look(channel), (renderer, artist))

    def _look(self, channel: ChannelData) -> object:
        return (self.size, self.dpi, look_of(channel))

    def _new_figure(self, channel: ChannelData) -> _Drawn:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - only drawn plots need it
        from matplotlib.figure import Figure  # noqa: PLC0415

        figure = Figure(figsize=self.size, dpi=self.dpi, layout="constrained")
        FigureCanvasAgg(figure)
        artist = ChannelArtist(figure.add_subplot(), channel)
        return FrameRenderer(figure, [artist], figure_signature(figure, (1, 1), [artist])), artist
