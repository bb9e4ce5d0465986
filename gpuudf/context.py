"""The Context: the user's entry point for loading data and running UDFs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, overload

from gpuudf.datasets import DataSet, load
from gpuudf.executors import Executor, InlineExecutor
from gpuudf.runner import Results, UDFRun
from gpuudf.udf import UDF

__all__ = ["Context"]


class Context:
    """Loads datasets and runs UDFs on an executor.

    Parameters
    ----------
    executor
        Where partitions are processed; by default the inline executor on the
        CPU (the device scheduler will become the default when it lands).

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
        self.executor: Executor = InlineExecutor() if executor is None else executor

    @classmethod
    def make_with(cls, executor_spec: str = "inline", **kwargs: Any) -> Context:
        """A Context with an executor named by ``executor_spec``.

        Parameters
        ----------
        executor_spec
            ``"inline"`` (keyword ``device``, default ``"cpu"``).
        """
        if executor_spec == "inline":
            return cls(executor=InlineExecutor(**kwargs))
        msg = f"unknown executor {executor_spec!r}; available: 'inline'"
        raise ValueError(msg)

    def load(self, kind: str, /, **kwargs: Any) -> DataSet:
        """Load a dataset; see the datasets guide for each ``kind``'s arguments.

        Raises
        ------
        DataSetError
            For anything about the data that does not fit, at once.
        """
        return load(kind, **kwargs)

    @overload
    def run_udf(
        self,
        dataset: DataSet,
        udf: UDF,
        roi: Any = ...,
        progress: bool = ...,
        plots: Any = ...,
        sync: bool = ...,
        backends: Sequence[str] | None = ...,
    ) -> Results: ...
    @overload
    def run_udf(
        self,
        dataset: DataSet,
        udf: Sequence[UDF],
        roi: Any = ...,
        progress: bool = ...,
        plots: Any = ...,
        sync: bool = ...,
        backends: Sequence[str] | None = ...,
    ) -> list[Results]: ...
    def run_udf(  # noqa: PLR0917 - LiberTEM's positional order, kept for ports
        self,
        dataset: DataSet,
        udf: UDF | Sequence[UDF],
        roi: Any = None,
        progress: bool = False,
        plots: Any = None,
        sync: bool = True,
        backends: Sequence[str] | None = None,
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
            Show a progress bar counted in frames.
        plots
            Live plots; not available yet.
        sync
            ``False`` returns an awaitable instead of the results.
        backends
            Restrict the array backends, e.g. ``("numpy",)``.

        Returns
        -------
        dict or list of dict
            ``{buffer name: BufferWrapper}`` for one UDF; a list of those, in
            order, for a list of UDFs.
        """
        if plots:
            msg = "live plots (plots=...) are not available yet"
            raise NotImplementedError(msg)
        single = isinstance(udf, UDF)
        udfs = [udf] if isinstance(udf, UDF) else list(udf)
        run = UDFRun(dataset, udfs, self.executor, roi=roi, backends=backends)

        def finish() -> Any:
            bar = _progress_bar(run) if progress else None
            try:
                for result in run.run():
                    if bar is not None:
                        bar.update(result.num_frames)
            finally:
                if bar is not None:
                    bar.close()
            results = run.results()
            return results[0] if single else results

        if sync:
            return finish()
        return asyncio.to_thread(finish)

    def close(self) -> None:
        """Release the executor's workers."""
        self.executor.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Context(executor={self.executor!r})"


def _progress_bar(run: UDFRun) -> Any:
    from tqdm.auto import tqdm  # noqa: PLC0415 - only runs that ask for a bar pay for tqdm

    return tqdm(total=run.num_selected, unit="frame", desc="gpuudf")
