"""What ``run_udf(..., plots=...)`` accepts, turned into plot objects bound to the run.

Policy
------
- The forms are LiberTEM's: ``True`` (every 2-D result of every UDF, in one
  :class:`~gpuudf.viz.MatplotlibPlots`), one list of channels per UDF, or a
  list of plot objects; gpuudf also takes one plot object alone.  ``None``,
  ``False`` and an empty list plot nothing.
- Every mistake is a ``ValueError`` raised here, when the run is set up,
  before any worker does work; it says which forms are accepted.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

from gpuudf.viz.channels import Channel, UDFBuffers, default_channels
from gpuudf.viz.mpl import MatplotlibPlots
from gpuudf.viz.plot import LivePlot, PlotWarning

__all__ = ["plots_for_run"]

_FORMS = (
    "plots= takes None, True, one list of buffer names per UDF (e.g. [['intensity'], ['field_x', 'field_y']]), "
    "or a list of gpuudf.viz.LivePlot objects"
)


def plots_for_run(plots: object, udfs: Sequence[UDFBuffers]) -> list[LivePlot]:
    """The plot objects ``plots`` asks for, bound to the channels of ``udfs``.

    Raises
    ------
    ValueError
        For a form not accepted, a list of channel lists whose length is not
        the number of UDFs, a channel name a UDF does not return or a plot
        cannot show, or the same plot object twice.
    """
    if plots is None or plots is False:
        return []
    if plots is True:
        chosen = _default_plots(udfs)
    elif isinstance(plots, LivePlot):
        chosen = [plots]
    elif isinstance(plots, list | tuple):
        chosen = _from_list(plots, udfs)
    else:
        msg = f"{_FORMS}; got {plots!r}"
        raise ValueError(msg)
    if len({id(plot) for plot in chosen}) != len(chosen):
        msg = "plots=: the same plot object is given twice; each plot object shows one run once"
        raise ValueError(msg)
    for plot in chosen:
        plot.bind(udfs)
    return chosen


def _default_plots(udfs: Sequence[UDFBuffers]) -> list[LivePlot]:
    channels: list[Channel] = []
    for index, udf in enumerate(udfs):
        found = default_channels(udfs, index)
        if not found:  # as LiberTEM warns
            msg = f"plots=True: no plottable 2-D result in UDF #{index} ({udf.name}); it is not plotted"
            warnings.warn(msg, PlotWarning, stacklevel=6)  # the caller of run_udf / run_udf_iter
        channels.extend(found)
    return [MatplotlibPlots(channels)] if channels else []


def _from_list(plots: Sequence[object], udfs: Sequence[UDFBuffers]) -> list[LivePlot]:
    if not plots:
        return []
    if all(isinstance(entry, LivePlot) for entry in plots):
        return [entry for entry in plots if isinstance(entry, LivePlot)]
    if not all(isinstance(entry, list | tuple) for entry in plots):
        msg = f"{_FORMS}; got a list of {', '.join(sorted({type(e).__name__ for e in plots}))}"
        raise ValueError(msg)
    if len(plots) != len(udfs):
        msg = (
            f"plots= gives {len(plots)} list(s) of channels, but the run has {len(udfs)} UDF(s); "
            "give one list per UDF, in order ([] for a UDF not to plot)"
        )
        raise ValueError(msg)
    channels: list[Channel] = []
    for index, entry in enumerate(plots):
        assert isinstance(entry, list | tuple)
        for spec in entry:
            channel = Channel.coerce(spec, udf=index)
            # a Channel object in UDF #index's list belongs to that UDF, whatever its own udf says
            channels.append(dataclasses.replace(channel, udf=index))
    return [MatplotlibPlots(channels)] if channels else []
