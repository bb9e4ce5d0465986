"""Executors: where partitions are processed."""

from __future__ import annotations

from gpuudf.executors.dask_executor import DaskExecutor
from gpuudf.executors.executor import Executor, Task, TileCallback
from gpuudf.executors.inline import InlineExecutor
from gpuudf.executors.local import LocalExecutor
from gpuudf.executors.specs import EXECUTOR_SPECS, make_executor

__all__ = [
    "EXECUTOR_SPECS",
    "DaskExecutor",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "Task",
    "TileCallback",
    "make_executor",
]
