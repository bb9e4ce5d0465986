"""Scheduling decisions of the device scheduler, as pure functions.

Task Selection Policy
---------------------
- **Pull-based.**  A worker with room in its queue takes the first pending
  task it may run; a faster device therefore takes more tasks.
- **Routing by array backend.**  A task that accepts only ``numpy`` never
  goes to a CUDA worker, one that accepts only ``cupy`` never to a CPU
  worker, one that accepts both goes to whoever asks first.  A task that ran
  out of device memory on a GPU is retried on CPU workers only.
- **No slow tail.**  Once a worker's time per task is known from this run,
  it takes another task only if it would finish it no later than the faster
  workers, at their measured pace, would finish what they hold and everything
  still pending without it.  So a CPU worker does not grab the last partition that a GPU
  many times faster would have done sooner.  Workers whose pace is not yet
  known take tasks.
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
    "DASK_QUEUE_DEPTH",
    "QUEUE_DEPTH",
    "PendingTask",
    "default_cpu_workers",
    "min_partitions",
    "pick_task",
    "worker_accepts",
    "worth_taking",
]

#: Tasks a worker holds at once (the running one and the next).
QUEUE_DEPTH = 2
#: Tasks a slot holds at once: a task's answer takes a round trip through the
#: scheduler (milliseconds), so a dask slot needs more queued behind its task than a local worker
#: (35 tiny partitions on 2 slots: 0.17 s a run with 4, 0.25 s with 2).
DASK_QUEUE_DEPTH = 4


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


def worth_taking(
    own_task_s: float | None,
    own_queued: int,
    others_task_s: Sequence[float],
    pending: int,
    others_queued: int = 0,
) -> bool:
    """Whether a worker should take one more of ``pending`` tasks (see "No slow tail").

    Parameters
    ----------
    own_task_s
        This worker's mean seconds per task in this run, ``None`` if unknown.
    own_queued
        Tasks it already holds.
    others_task_s
        Mean seconds per task of the other workers that could take these
        tasks and whose pace is known.
    pending
        Tasks not yet handed out.
    others_queued
        Tasks those other workers already hold.
    """
    if own_task_s is None or not others_task_s or pending <= 0:
        return True
    others_rate = sum(1 / t for t in others_task_s if t > 0)
    if others_rate <= 0:
        return True
    finish_own_s = (own_queued + 1) * own_task_s
    finish_others_s = (pending + others_queued) / others_rate
    return finish_own_s <= finish_others_s


def default_cpu_workers(cpu_cores: int, cuda_workers: int) -> int:
    """CPU workers for ``cpu_cores`` cores when ``cuda_workers`` feeder threads need cores too."""
    return max(1, cpu_cores - cuda_workers)


def min_partitions(cpu_workers: int, cuda_workers: int) -> int:
    """Partitions a dataset should at least be split into for these workers."""
    return max(1, 2 * cpu_workers + 4 * cuda_workers)
