"""Live plots of a run's results: ``ctx.run_udf(..., plots=...)``.

Policy
------
- Plots are updated in a thread of their own, at most ``rate`` times a
  second and only when that thread is idle, so a run with plots takes about
  as long as one without; the final result is always drawn, and waited for.
- A plot that fails is reported with one :class:`PlotWarning`; the run goes on.
- ``import gpuudf`` and ``import gpuudf.viz`` load neither Matplotlib nor
  IPython; a plot loads them when it opens.

See the "Live plots" page of the documentation for the forms of ``plots=``.
"""

from gpuudf.viz.channels import Channel, ChannelData
from gpuudf.viz.mpl import MatplotlibPlots
from gpuudf.viz.plot import DEFAULT_RATE_HZ, LivePlot, PlotWarning
from gpuudf.viz.png import PNGPlots

__all__ = ["DEFAULT_RATE_HZ", "Channel", "ChannelData", "LivePlot", "MatplotlibPlots", "PNGPlots", "PlotWarning"]
