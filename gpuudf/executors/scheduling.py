"""Scheduling decisions of the device scheduler, as pure functions.

Task Selection Policy
---------------------
- **Pull-based.**  A worker with room in its queue takes the first pending
  task it may run; a faster device therefore takes more tasks.
- **Routing by array backend.**  A task that accepts only ``numpy`` never
  goes to a CUDA worker, one that accepts only ``cupy`` never to a CPU
  worker, one that accepts both goes to whoever asks first.  A task that ran
  out of device memory on a GPU is retried on CPU workers only.
- **Queue depth two.**  Each worker holds its running task and one more, so
  it never waits for the main process (which merges between messages).
- **Partition count.**  At least two partitions per CPU worker and four per
  CUDA worker (a GPU is several times faster: smaller shares keep the tail
  short while the GPU is never starved), unless the dataset fixes its count.
- **Core budget.**  By default one CPU worker per core, less one core per
  CUDA worker for its feeder thread, and never fewer than one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "QUEUE_DEPTH",
    "PendingTask",
    "default_cpu_workers",
    "min_partitions",
    "pick_task",
    "worker_accepts",
]

#: Tasks a worker holds at once: the running one and the next.
QUEUE_DEPTH = 2


@dataclass(frozen=True)
class PendingTask:
    """What scheduling needs to know about a task waiting for a worker."""

    index: int
    backends: tuple[str, ...]
    cpu_only: bool = False


def worker_accepts(worker_backend: str, task: PendingTask) -> bool:
    """Whether a worker computing with ``worker_backend`` may run ``task``."""
    if task.cpu_only and worker_backend != "numpy":
        return False
    return worker_backend in task.backends


def pick_task(worker_backend: str, pending: Sequence[PendingTask]) -> int | None:
    """Position in ``pending`` of the task a free worker takes next, or ``None``."""
    for position, task in enumerate(pending):
        if worker_accepts(worker_backend, task):
            return position
    return None


def default_cpu_workers(cpu_cores: int, cuda_workers: int) -> int:
    """CPU workers for ``cpu_cores`` cores when ``cuda_workers`` feeder threads need cores too."""
    return max(1, cpu_cores - cuda_workers)


def min_partitions(cpu_workers: int, cuda_workers: int) -> int:
    """Partitions a dataset should at least be split into for these workers."""
    return max(1, 2 * cpu_workers + 4 * cuda_workers)
