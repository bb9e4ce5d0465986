"""Live plots as PNG files, for runs without a screen.

Policy
------
- One file per channel, named ``<UDF position>-<UDF class>-<buffer>.png``,
  rewritten at every update; a file is replaced whole (written beside it,
  then renamed), so a viewer never reads half an image.  After the run the
  files show the final result.
- Everything is drawn with Agg in the plot thread, whatever backend
  Matplotlib uses otherwise.  Figures are made, and their layout fixed, in
  :meth:`~PNGPlots.prepare`, while the run starts, so an update only sets
  data and writes files.  No file is written before the first update.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpuudf.viz.channels import ChannelData
from gpuudf.viz.drawing import ChannelArtist, freeze_layout
from gpuudf.viz.plot import DEFAULT_RATE_HZ, LivePlot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PNGPlots"]


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
        self._figures: list[tuple[Figure, ChannelArtist]] = []

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
        """Make one figure per channel and fix its layout (in the plot thread)."""
        self._figures = [self._new_figure(channel) for channel in channels]

    def update(self, channels: Sequence[ChannelData]) -> None:
        """Draw every channel and replace its file."""
        if not self._figures:
            self.prepare(channels)
        for (figure, artist), channel, path in zip(self._figures, channels, self.paths, strict=True):
            artist.show(channel)
            partial = path.with_name(path.name + ".partial")
            # compress_level 1: a third of the encoding time, for files a little larger
            figure.savefig(partial, format="png", dpi=self.dpi, pil_kwargs={"compress_level": 1})
            partial.replace(path)

    def _new_figure(self, channel: ChannelData) -> tuple[Figure, ChannelArtist]:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - only drawn plots need it
        from matplotlib.figure import Figure  # noqa: PLC0415

        figure = Figure(figsize=self.size, layout="constrained")
        FigureCanvasAgg(figure)
        artist = ChannelArtist(figure.add_subplot(), channel)
        freeze_layout(figure, [artist])
        return figure, artist
