"""The base class of live plots: what a run calls, in which thread, and when.

Policy
------
- A plot names its channels (or leaves the choice to the run) and is bound to
  them before the run starts; a wrong name fails there.
- :meth:`LivePlot.open` and :meth:`LivePlot.poll` run in the thread that
  consumes the run (the caller's, for ``run_udf``), where GUI toolkits and
  notebook displays live; :meth:`LivePlot.update` and :meth:`LivePlot.finish`
  run in the run's plot thread, off the merge path.
- A plot is updated at most ``rate`` times a second, and only when the plot
  thread is idle; the final result always reaches :meth:`LivePlot.finish`.
- A plot that raises is reported once, with a :class:`PlotWarning`, and gets
  no more calls in that run; the run goes on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from gpuudf.viz.channels import Channel, ChannelData, UDFBuffers, default_channels, resolve_channel

__all__ = ["DEFAULT_RATE_HZ", "LivePlot", "PlotWarning"]

#: Updates per second a plot gets by default (the final result comes on top).
DEFAULT_RATE_HZ = 2.0


class PlotWarning(UserWarning):
    """A live plot failed; the run went on without it."""


class LivePlot:
    """Subclass this for a plot of your own and pass it as ``run_udf(..., plots=[MyPlot()])``.

    Parameters
    ----------
    channels
        What to show: buffer names (of the run's first UDF), ``(name,
        callable)`` pairs or :class:`Channel` objects, which may name any UDF
        of the run.  ``None``: the run's choice, every 2-D numeric result of
        every UDF.
    rate
        Updates per second at most, besides the final one.

    Attributes
    ----------
    channels
        The :class:`Channel` objects shown, once the run has bound the plot.
    rate
        As given.

    Notes
    -----
    A run calls, in order: :meth:`open` once, with placeholders (NaN data,
    nothing valid) that have each channel's final shape; :meth:`prepare`
    once, with the same placeholders, in the plot thread; :meth:`poll` after
    every merged partition; :meth:`update` with the results so far, at most
    ``rate`` times a second; :meth:`finish` once with the final results,
    which the run waits for.  ``update`` and ``finish`` run in a thread of
    their own (as ``prepare``) and must not touch a GUI; ``poll`` runs in the thread that
    consumes the run and is where a GUI gets drawn.  Each call receives a
    list of :class:`ChannelData` (name, data, valid mask, title, colormap,
    log scale), in the order of :attr:`channels`.

    Examples
    --------
    >>> import numpy as np, gpuudf
    >>> from gpuudf.udfs import SumUDF
    >>> from gpuudf.viz import LivePlot
    >>> class Peak(LivePlot):
    ...     def update(self, channels):
    ...         self.peak = max(float(c.data[c.valid].max(initial=0)) for c in channels)
    >>> ctx = gpuudf.Context.make_with("inline")
    >>> ds = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    >>> peak = Peak()
    >>> _ = ctx.run_udf(dataset=ds, udf=SumUDF(), plots=[peak])
    >>> peak.peak
    16.0
    """

    #: Dimensions (without length-1 axes) of the channels this plot can show.
    ndims: tuple[int, ...] = (1, 2)

    def __init__(self, channels: Sequence[object] | None = None, rate: float = DEFAULT_RATE_HZ) -> None:
        if not rate > 0:
            msg = f"rate must be a positive number of updates per second, got {rate!r}"
            raise ValueError(msg)
        if isinstance(channels, str | Channel):
            channels = [channels]
        self._requested = None if channels is None else [Channel.coerce(spec) for spec in channels]
        self.rate = float(rate)
        self.channels: tuple[Channel, ...] = ()
        self._indices: list[int] = []
        self._placeholders: list[ChannelData] = []

    def bind(self, udfs: Sequence[UDFBuffers]) -> None:
        """Resolve :attr:`channels` for a run of ``udfs``; the run calls this before it starts.

        Raises
        ------
        ValueError
            For a channel the run does not have or this plot cannot show.
        """
        if self._requested is None:
            requested = [c for index in range(len(udfs)) for c in default_channels(udfs, index)]
            if not requested:
                msg = f"{type(self).__name__}: the run has no 2-D result to show; name the channels to plot"
                warnings.warn(msg, PlotWarning, stacklevel=6)  # the caller of run_udf / run_udf_iter
        else:
            requested = self._requested
        resolved = [resolve_channel(channel, udfs, self.ndims) for channel in requested]
        self.channels = tuple(channel for _, channel in resolved)
        self._indices = [index for index, _ in resolved]
        self._placeholders = [ChannelData.placeholder(channel, index, udfs[index]) for index, channel in resolved]

    @property
    def udf_indices(self) -> list[int]:
        """Per channel, the position of its UDF in the run."""
        return list(self._indices)

    @property
    def placeholders(self) -> list[ChannelData]:
        """Per channel, its data before anything is merged: what :meth:`open` receives."""
        return list(self._placeholders)

    def open(self, channels: Sequence[ChannelData]) -> None:
        """Show the (empty) plot: a window, a notebook output, files; by default nothing."""

    def prepare(self, channels: Sequence[ChannelData]) -> None:
        """Build what is costly (figures, fonts, layout) in the plot thread, while the run starts; by default nothing.

        Called once, after :meth:`open` and before the first :meth:`update`,
        with the same placeholders.
        """

    def update(self, channels: Sequence[ChannelData]) -> None:
        """Draw the results so far; called in the plot thread."""
        raise NotImplementedError

    def finish(self, channels: Sequence[ChannelData]) -> None:
        """Draw the final results; by default :meth:`update`."""
        self.update(channels)

    def poll(self) -> None:
        """Called in the consuming thread after every merged partition: a GUI's turn to draw; cheap."""

    def __repr__(self) -> str:
        names = ", ".join(c.buffer for c in self.channels) or "unbound"
        return f"<{type(self).__name__}: {names}>"
