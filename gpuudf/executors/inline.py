"""The inline executor: tasks run one by one in the caller's thread.

It is the reference for correctness and the path for debugging: a breakpoint
in a UDF stops here, and exceptions surface with their own traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from gpuudf.backends import Backend, NumpyBackend
from gpuudf.errors import BackendUnavailableError
from gpuudf.executors.executor import Executor, Task

__all__ = ["InlineExecutor"]


def _make_backend(device: str) -> Backend:
    if device == "cpu":
        return NumpyBackend()
    msg = f"unknown device {device!r} for InlineExecutor: use 'cpu'"
    raise ValueError(msg)


class InlineExecutor(Executor):
    """Run every task in the calling thread on one device.

    Parameters
    ----------
    device
        ``"cpu"``.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._backend = _make_backend(device)

    def array_backends(self) -> tuple[str, ...]:
        return (self._backend.array_backend,)

    def num_workers(self) -> int:
        return 1

    def run_tasks(self, tasks: Sequence[Task]) -> Iterator[Any]:
        for task in tasks:
            if self._backend.array_backend not in task.backends:
                msg = f"task accepts {task.backends}, InlineExecutor on {self.device} offers {self._backend.array_backend}"
                raise BackendUnavailableError(msg)
            yield task.run(self._backend)

    def __repr__(self) -> str:
        return f"InlineExecutor(device={self.device!r})"
