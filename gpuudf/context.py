"""The Context: the user's entry point for loading data and running UDFs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from gpuudf.datasets import DataSet, load
from gpuudf.display import DisplayInfo, describe
from gpuudf.executors import Executor, LocalExecutor, make_executor
from gpuudf.planning import check_udf_instance
from gpuudf.progress import ProgressCallback, check_progress
from gpuudf.runner import CancelHandle, Results, UDFRun
from gpuudf.steps import AsyncUDFResultsIterator, UDFResults, UDFResultsIterator, await_last, plot_feed, shaped
from gpuudf.udf import UDF

__all__ = ["AsyncUDFResultsIterator", "Context", "UDFResults", "UDFResultsIterator"]


class Context:
    """Loads datasets and runs UDFs on an executor.

    Parameters
    ----------
    executor
        Where partitions are processed; by default a
        :class:`~gpuudf.executors.LocalExecutor` with every CUDA GPU
        :func:`gpuudf.detect` finds (when CuPy is installed) and one CPU worker
        per core, less one core per GPU for its feeder (worker processes start
        at the first run).

    Examples
    --------
    >>> import numpy as np, gpuudf
    >>> from gpuudf.udfs import SumUDF
    >>> ctx = gpuudf.Context.make_with("inline")
    >>> ds = ctx.load("memory", data=np.ones((2, 3, 4, 5), dtype=np.float32))
    >>> ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.sum()
    np.float32(120.0)
    """

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor: Executor = LocalExecutor() if executor is None else executor

    @classmethod
    def make_with(cls, executor_spec: str = "inline", **kwargs: Any) -> Context:
        """A Context with an executor named by ``executor_spec``.

        Parameters
        ----------
        executor_spec
            ``"inline"`` (keyword ``device``, default ``"cpu"``) or ``"local"``
            (keywords ``cpus`` and ``cudas`` of :class:`LocalExecutor`): a
            name registered in :data:`gpuudf.executors.specs.EXECUTOR_SPECS`.

        Raises
        ------
        ExecutorSpecException
            For a name not registered (the message lists the registered
            ones), or arguments the executor does not take or refuses.
        """
        return cls(executor=make_executor(executor_spec, **kwargs))

    def load(self, kind: str, /, *args: Any, **kwargs: Any) -> DataSet:
        """Load a dataset; see the datasets guide for each ``kind``'s arguments.

        The arguments may be given by keyword, as in the guide, or in their
        order there: ``ctx.load("npy", "scan.npy")``.

        Raises
        ------
        DataSetError
            For anything about the data that does not fit, at once.
        """
        return load(kind, *args, **kwargs)

    def display(self, dataset: DataSet, udf: UDF | None = None, roi: Any = None) -> DisplayInfo:
        """Describe ``dataset``, and ``udf`` on it, without reading or running anything.

        Parameters
        ----------
        dataset
            From :meth:`load`.
        udf
            A UDF instance (left untouched); adds its processing method,
            backends, dtypes and each returned buffer's kind, extra shape,
            concrete shape for this dataset and ``roi``, and dtype.
        roi
            Any ROI :meth:`run_udf` takes.

        Returns
        -------
        DisplayInfo
            HTML tables in a notebook (``_repr_html_``), aligned text as
            ``str``/``repr``; the dataset's diagnostics (shape, dtype,
            partitions on this Context's executor, file, ``sync_offset``).
        """
        return describe(dataset, udf, roi, min_partitions=self.executor.num_workers())

    @overload
    def run_udf(
        self,
        dataset: DataSet,
        udf: UDF,
        roi: Any = ...,
        progress: bool | ProgressCallback = ...,
        plots: Any = ...,
        sync: bool = ...,
        backends: Sequence[str] | None = ...,
        cancel: CancelHandle | None = ...,
    ) -> Results: ...
    @overload
    def run_udf(
        self,
        dataset: DataSet,
        udf: Sequence[UDF],
        roi: Any = ...,
        progress: bool | ProgressCallback = ...,
        plots: Any = ...,
        sync: bool = ...,
        backends: Sequence[str] | None = ...,
        cancel: CancelHandle | None = ...,
    ) -> list[Results]: ...
    def run_udf(  # noqa: PLR0917 - dataset, udf, roi come first, as in LiberTEM; pass the rest by keyword
        self,
        dataset: DataSet,
        udf: UDF | Sequence[UDF],
        roi: Any = None,
        progress: bool | ProgressCallback = False,
        plots: Any = None,
        sync: bool = True,
        backends: Sequence[str] | None = None,
        cancel: CancelHandle | None = None,
    ) -> Any:
        """Run one UDF, or several in one pass over the data.

        Parameters
        ----------
        dataset
            From :meth:`load`.
        udf
            A UDF instance, or a list of them.
        roi
            Frames to process (see the ROI section of the guide).
        progress
            ``True`` for a progress bar counted in frames, or a callable
            ``callback(frames_done, frames_total)`` called after every tile.
        plots
            Live plots of the results while the run goes on (see the
            live-plots guide): ``True`` for one Matplotlib figure with every
            2-D result of every UDF; one list of buffer names per UDF
            (``[["intensity"], ["field_x", "field_y"]]``; ``(name, callable)``
            pairs and :class:`gpuudf.viz.Channel` objects work too); or a
            list of :class:`gpuudf.viz.LivePlot` objects, such as
            ``[gpuudf.viz.PNGPlots("plots/")]``.  Plots are updated in a
            thread of their own, at most twice a second by default, and show
            the final result when the call returns.  A form not accepted or
            a name no UDF returns is a ``ValueError`` here, before any work;
            a plot that fails is reported once with a
            :class:`gpuudf.viz.PlotWarning` and the run goes on.
        sync
            ``False`` returns an awaitable instead of the results; cancelling
            the task that awaits it cancels the run.
        backends
            Restrict the array backends, e.g. ``("numpy",)``.
        cancel
            A :class:`CancelHandle`; its ``cancel()`` stops the run from any
            thread and this call raises :class:`UDFRunCancelled`.

        Returns
        -------
        dict or list of dict
            ``{buffer name: BufferWrapper}`` for one UDF; a list of those, in
            order, for a list of UDFs.
        """
        results = self._iterate(dataset, udf, roi=roi, progress=progress, plots=plots, backends=backends, cancel=cancel)
        single = isinstance(udf, UDF)
        if sync:
            last = None
            with results:
                for last in results:  # noqa: B007 - the last step holds the results
                    pass
            assert last is not None
            return shaped(last, single)
        return await_last(AsyncUDFResultsIterator(results), single)

    def run_udf_iter(  # noqa: PLR0917 - same order as run_udf
        self,
        dataset: DataSet,
        udf: UDF | Sequence[UDF],
        roi: Any = None,
        progress: bool | ProgressCallback = False,
        plots: Any = None,
        sync: bool = True,
        backends: Sequence[str] | None = None,
        cancel: CancelHandle | None = None,
    ) -> UDFResultsIterator | AsyncUDFResultsIterator:
        """Run like :meth:`run_udf`, yielding partial results as partitions are merged.

        Each item is a :class:`UDFResults`; the last one holds the final
        results.  An item's buffers are computed when first read and must be
        read before the next step (later they raise ``RuntimeError``); the
        final item's buffers share memory with the run.  ``.cancel()`` on the iterator stops the
        run (the loop raises :class:`UDFRunCancelled`); breaking out of the
        loop or ``.close()`` stops it silently.  With ``sync=False`` this is an
        async iterator (``async for``).  ``cancel`` works as in :meth:`run_udf`.
        """
        results = self._iterate(dataset, udf, roi=roi, progress=progress, plots=plots, backends=backends, cancel=cancel)
        return results if sync else AsyncUDFResultsIterator(results)

    def _iterate(
        self,
        dataset: DataSet,
        udf: UDF | Sequence[UDF],
        /,
        *,
        roi: Any,
        progress: bool | ProgressCallback,
        plots: Any,
        backends: Sequence[str] | None,
        cancel: CancelHandle | None,
    ) -> UDFResultsIterator:
        check_progress(progress)
        if isinstance(udf, UDF | type) or not isinstance(udf, Sequence):
            check_udf_instance(udf)  # a class, or something else than a UDF or a list of them
        udfs = [udf] if isinstance(udf, UDF) else list(udf)
        run = UDFRun(dataset, udfs, self.executor, roi=roi, backends=backends)
        feed = plot_feed(plots, udfs, run)
        return UDFResultsIterator(run, progress, CancelHandle() if cancel is None else cancel, plots=feed)

    def close(self) -> None:
        """Release the executor's workers."""
        self.executor.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Context(executor={self.executor!r})"
