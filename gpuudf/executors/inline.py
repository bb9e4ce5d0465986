"""The inline executor: tasks run one by one in the caller's thread.

It is the reference for correctness and the path for debugging: a breakpoint
in a UDF stops here, and exceptions surface with their own traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from gpuudf.backends import Backend, make_backend
from gpuudf.errors import BackendUnavailableError, UDFRunCancelled
from gpuudf.executors.executor import CancelSignal, Executor, Task, TileCallback

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Run every task in the calling thread on one device.

    Parameters
    ----------
    device
        ``"cpu"``, ``"cuda:N"`` (GPU N through CuPy) or ``"sim:N"`` (the
        simulated CUDA device), or a ready :class:`~gpuudf.backends.Backend`.
    """

    def __init__(self, device: str | Backend = "cpu") -> None:
        self._lock = threading.Lock()
        if isinstance(device, Backend):
            self._backend = device
            self.device = device.describe()
        else:
            self._backend = make_backend(device)
            self.device = device

    def array_backends(self) -> tuple[str, ...]:
        """The backend's array module, alone."""
        return (self._backend.array_backend,)

    def num_workers(self) -> int:
        """One: the caller's thread."""
        return 1

    @property
    def backend(self) -> Backend:
        """The one backend every task runs on."""
        return self._backend

    def run_tasks(
        self, tasks: Sequence[Task], on_tile: TileCallback | None = None, cancel: CancelSignal | None = None
    ) -> Iterator[Any]:
        """Run the tasks in order, in this thread; a cancellation is seen between tiles (the UDF runs here)."""

        def on_tile_or_cancel(frames: int) -> None:
            if on_tile is not None:
                on_tile(frames)
            if cancel is not None and cancel.cancelled:
                msg = "the run was cancelled"
                raise UDFRunCancelled(msg)

        for task in tasks:
            if self._backend.array_backend not in task.backends:
                offered = self._backend.array_backend
                msg = f"task accepts {task.backends}, InlineExecutor on {self.device} offers {offered}"
                raise BackendUnavailableError(msg)
            with self._lock:  # runs from several threads take turns, a partition at a time
                result = task.run(self._backend, on_tile_or_cancel)
            yield result

    def close(self) -> None:
        """Release the backend's threads and page-locked memory."""
        self._backend.close()

    def __repr__(self) -> str:
        return f"InlineExecutor(device={self.device!r})"
