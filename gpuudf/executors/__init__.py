"""Executors: where partitions are processed."""

from __future__ import annotations

from gpuudf.executors.executor import Executor, Task, TileCallback
from gpuudf.executors.inline import InlineExecutor
from gpuudf.executors.local import LocalExecutor

__all__ = ["Executor", "InlineExecutor", "LocalExecutor", "Task", "TileCallback"]
