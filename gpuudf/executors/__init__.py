"""Executors: where partitions are processed."""

from __future__ import annotations

from gpuudf.executors.executor import Executor, Task
from gpuudf.executors.inline import InlineExecutor

__all__ = ["Executor", "InlineExecutor", "Task"]
