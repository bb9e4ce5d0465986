"""The messages between the local executor and its worker processes.

Policy
------
- One connection per worker (``multiprocessing.connection``), one pickled
  message per send; every message is one of the frozen dataclasses here,
  never a bare tuple, so both ends agree on field names and a type check
  covers them.
- What is large or user-defined crosses as bytes pickled with cloudpickle
  (a run's plan, a result, an exception), unpickled only by whoever needs it.
- The protocol:

  main → worker: :class:`StartRun` before the worker's first task of a run,
  and again with the same ``run_id`` when the plan changed (a parameter
  update; it replaces the plan for the tasks that follow it);
  :class:`RunTask`; :class:`CancelRun`; :class:`Stop`.

  worker → main: its process id (an ``int``) on connecting, then
  :class:`Ready` or :class:`StartFailed`; per task, :class:`TileProgress`
  for the frames done since the last one (at most every
  ``PROGRESS_INTERVAL_S``), then exactly one of :class:`TaskDone`,
  :class:`TaskFailed` or :class:`TaskDropped`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Answer",
    "CancelRun",
    "FromWorker",
    "Ready",
    "RunTask",
    "StartFailed",
    "StartRun",
    "Stop",
    "TaskDone",
    "TaskDropped",
    "TaskFailed",
    "TileProgress",
    "ToWorker",
]


# ---------------------------------------------------------------- main → worker


@dataclass(frozen=True, slots=True)
class StartRun:
    """A run's plan (cloudpickle of the task class and the run's shared part)."""

    run_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class RunTask:
    """One task of a run whose plan the worker got: its own part (a partition)."""

    task_id: int
    run_id: int
    own: Any


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Stop the run's task at the next tile, answer its queued tasks as dropped."""

    run_id: int


@dataclass(frozen=True, slots=True)
class Stop:
    """End the worker process."""


ToWorker = StartRun | RunTask | CancelRun | Stop


# ---------------------------------------------------------------- worker → main


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker's device works; ``description`` says what it is."""

    description: str


@dataclass(frozen=True, slots=True)
class StartFailed:
    """The worker's device cannot be used: the exception (cloudpickle) and its traceback."""

    exception: bytes
    traceback: str


@dataclass(frozen=True, slots=True)
class TileProgress:
    """Frames of the task done since its last progress message."""

    task_id: int
    frames: int


@dataclass(frozen=True, slots=True)
class TaskDone:
    """The task's result (cloudpickle), its frames not yet reported, and its time on the worker."""

    task_id: int
    result: bytes
    frames: int
    seconds: float


@dataclass(frozen=True, slots=True)
class TaskFailed:
    """The task raised: the exception (cloudpickle), its traceback, and whether the device ran out of memory."""

    task_id: int
    exception: bytes
    traceback: str
    out_of_memory: bool = False


@dataclass(frozen=True, slots=True)
class TaskDropped:
    """The task was not run, or stopped, because its run was cancelled."""

    task_id: int


Answer = TaskDone | TaskFailed | TaskDropped
FromWorker = Ready | StartFailed | TileProgress | TaskDone | TaskFailed | TaskDropped
