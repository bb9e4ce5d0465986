"""What the runner needs from an executor: workers with backends, tasks run.

Policy: executors run opaque tasks.  They know a task only through
:class:`Task` (which array backends it accepts, and ``run(backend)``); they
know nothing about buffers, merging or UDFs.  Results come back in
completion order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from gpuudf.backends import Backend

__all__ = ["Executor", "Task"]


class Task(Protocol):
    """A unit of work an executor hands to one worker."""

    @property
    def backends(self) -> tuple[str, ...]:
        """Array backends (``"numpy"``, ``"cupy"``) the task may run on."""
        ...

    def run(self, backend: Backend) -> Any:
        """Do the work on ``backend`` and return a picklable result."""
        ...


class Executor(ABC):
    """Runs tasks on workers, each bound to one device."""

    @abstractmethod
    def array_backends(self) -> tuple[str, ...]:
        """Array backends offered by at least one worker."""

    @abstractmethod
    def num_workers(self) -> int:
        """How many tasks can run at once."""

    @abstractmethod
    def run_tasks(self, tasks: Sequence[Task]) -> Iterator[Any]:
        """Run every task, yielding results in completion order."""

    def close(self) -> None:
        """Release workers; the executor may not be used afterwards."""
