"""What the runner needs from an executor: workers with backends, tasks run.

Policy: executors run opaque tasks.  They know a task only through
:class:`Task` (which array backends it accepts, and ``run(backend)``); they
know nothing about buffers, merging or UDFs.  Results come back in
completion order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from gpuudf.backends import Backend

__all__ = ["CancelSignal", "Executor", "Task", "TileCallback"]

#: Called with the number of frames of each finished tile (negative: a retried partition's rollback).
TileCallback = Callable[[int], None]


class CancelSignal(Protocol):
    """A run's cancellation as an executor sees it: a flag, and a way to be woken when it is set."""

    @property
    def cancelled(self) -> bool:
        """Whether the run is to stop."""
        ...

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Have ``wake()`` called (from any thread) when the run is cancelled; returns the unsubscribe call."""
        ...


class Task(Protocol):
    """A unit of work an executor hands to one worker."""

    @property
    def backends(self) -> tuple[str, ...]:
        """Array backends (``"numpy"``, ``"cupy"``) the task may run on."""
        ...

    @property
    def shared(self) -> Any:
        """What the tasks of one run have in common; worker processes get it once per run."""
        ...

    @property
    def own(self) -> Any:
        """What is this task's own (small, picklable)."""
        ...

    @classmethod
    def rebuild(cls, shared: Any, own: Any) -> Task:
        """The task again, from :attr:`shared` and :attr:`own`."""
        ...

    @classmethod
    def enter_worker(cls, shared: Any) -> None:
        """In a worker process, once per run's :attr:`shared` part, before its tasks run: set the process up."""
        ...

    @classmethod
    def clean_up_after(cls, parent_pid: int) -> None:
        """In a worker whose main process died: remove what that process left and cannot remove any more."""
        ...

    def run(self, backend: Backend, on_tile: TileCallback | None = None) -> Any:
        """Do the work on ``backend`` and return a picklable result.

        ``on_tile(frames)`` is called after each tile with the frames it held;
        an exception it raises (a cancellation) aborts the task.
        """
        ...

    def failure_cause(self) -> Exception | None:
        """What made a worker die while running this task, if the caller's process can tell (else ``None``)."""
        ...

    def pickling_failure(self, exc: Exception) -> Exception:
        """A clear error for :attr:`shared` failing to pickle with ``exc`` (naming what did not pickle)."""
        ...


class Executor(ABC):
    """Runs tasks on workers, each bound to one device."""

    @abstractmethod
    def array_backends(self) -> tuple[str, ...]:
        """Array backends offered by at least one worker."""

    @abstractmethod
    def num_workers(self) -> int:
        """The fewest partitions a run should have so that every worker is kept busy."""

    @abstractmethod
    def run_tasks(
        self, tasks: Sequence[Task], on_tile: TileCallback | None = None, cancel: CancelSignal | None = None
    ) -> Iterator[Any]:
        """Run every task, yielding results in completion order.

        ``on_tile`` is called in the caller's thread for every tile any task
        finishes; when it raises, the remaining work stops and the exception
        propagates.  Closing the returned iterator stops the work too.  Once
        ``cancel`` is cancelled, the run stops (whatever the workers are
        doing) and the iterator raises :class:`~gpuudf.errors.UDFRunCancelled`.
        """

    def close(self) -> None:
        """Release workers; the executor may not be used afterwards."""
