"""The state of one run on a pool of workers: events in, instructions out.

Nothing here touches a process, a pipe or a clock: an executor's IO shell
turns what its workers send into events, hands them to :meth:`RunState.handle`
and carries out the instructions it gets back (send a task, count frames,
deliver a result, cancel or kill a worker).  The local executor and the dask
executor share it, so both schedule and stop alike, and it is tested without
processes.

Policy
------
- **Dispatch** follows :mod:`gpuudf.executors.scheduling` (pull-based,
  routed by array backend, ``queue_depth`` tasks per worker (by default
  ``QUEUE_DEPTH``), no slow tail
  once the workers' pace in this run is known).
- **Results** are delivered in completion order, each once.
- **Out of device memory:** a task that ran out of memory on a device
  worker goes back to the front of the queue, for CPU workers only, if the
  run has a live CPU worker and the task accepts NumPy; the frames it
  reported are taken back (negative count), since the CPU worker reports
  them again.  Otherwise (no CPU worker, or the failure came from a CPU
  worker) it ends the run.
- **A task handed out but never sent** (its plan failed to pickle, the send
  was interrupted) goes back to the front of the queue (:class:`NotSent`):
  its worker owes no answer for it.
- **Ending a run:** a failure, a worker that dies, a worker that drops a task
  nobody cancelled, or a cancellation, stops the run.  The first reason
  wins.  Every worker that holds tasks is told to cancel; the run is
  *settled* once each of them has answered for every task it held, or has
  been killed because the grace period ran out (the shell says when:
  :class:`GraceExpired`).  Results and progress that arrive while stopping
  are dropped.
- **Stuck:** tasks remain, none is running and no worker may take one (their
  array backends are not offered by a live worker).

State
-----
pending
    Tasks not yet handed out (:class:`~gpuudf.executors.scheduling.PendingTask`),
    in the order they are handed out.
queued
    Per live worker, the tasks it holds, in the order it got them: the first
    one is running.  While the run ends, they are the answers it still owes.
backends
    Per live worker, its array backend.
reported
    Frames each running task reported through progress so far.
pace
    Per worker, seconds and tasks done in this run: its measured pace.
remaining
    Tasks without a delivered result.
ending
    Why the run stops, once it does (:class:`Ending`); ``None`` while it runs.
lost
    Workers that died or were killed during the run: the pool replaces them.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpuudf.executors.scheduling import QUEUE_DEPTH, PendingTask, pick_task, worker_accepts, worth_taking

__all__ = [
    "CancelRequested",
    "CancelWorker",
    "CountFrames",
    "Deliver",
    "Dispatch",
    "Dropped",
    "Ending",
    "Event",
    "Failed",
    "Finished",
    "GraceExpired",
    "Instruction",
    "KillWorker",
    "NotSent",
    "Progressed",
    "RunState",
    "WorkerLost",
]


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Progressed:
    """A worker reports frames of a task done."""

    worker: int
    task: int
    frames: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A worker's result for a task, with frames not yet reported and the task's seconds."""

    worker: int
    task: int
    frames: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Failed:
    """A task raised on a worker; ``out_of_memory``: its device ran out of memory."""

    worker: int
    task: int
    out_of_memory: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    """A worker answers that it did not run, or stopped, a task (its run was cancelled)."""

    worker: int
    task: int


@dataclass(frozen=True, slots=True)
class NotSent:
    """A task :meth:`RunState.dispatch` handed out did not reach its worker."""

    worker: int
    task: int


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """A worker died, or its connection broke."""

    worker: int


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """The run is to stop: cancelled by the user, interrupted, or its executor closed."""


@dataclass(frozen=True, slots=True)
class GraceExpired:
    """The workers told to cancel had their time to answer."""


Event = Progressed | Finished | Failed | Dropped | NotSent | WorkerLost | CancelRequested | GraceExpired


# ---------------------------------------------------------------- instructions


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send ``task`` to ``worker`` (the shell sends the run's plan first if the worker lacks it)."""

    worker: int
    task: int


@dataclass(frozen=True, slots=True)
class CountFrames:
    """Tell the caller about frames done (negative: taken back from a task that is run again)."""

    frames: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand the result of ``task`` to the caller."""

    task: int


@dataclass(frozen=True, slots=True)
class CancelWorker:
    """Tell ``worker`` to cancel the run."""

    worker: int


@dataclass(frozen=True, slots=True)
class KillWorker:
    """Kill ``worker``: it did not answer a cancellation in time."""

    worker: int


Instruction = Dispatch | CountFrames | Deliver | CancelWorker | KillWorker


@dataclass(frozen=True, slots=True)
class Ending:
    """Why a run stops.

    Attributes
    ----------
    cancelled
        Asked to stop (:class:`CancelRequested`), not failed.
    task
        The task whose failure, or whose worker's death, ends the run.
    worker
        The worker of that task.
    worker_lost
        The worker died while holding ``task`` (or, with ``task=None``, idle).
    unasked_drop
        The worker dropped ``task`` though nobody cancelled it.
    """

    cancelled: bool = False
    task: int | None = None
    worker: int | None = None
    worker_lost: bool = False
    unasked_drop: bool = False


class RunState:
    """One run's scheduling state (see the module's "State" section).

    Parameters
    ----------
    workers
        Per worker index, its array backend (``"numpy"``, ``"cupy"``).
    tasks
        Per task, in order, the array backends it accepts.
    queue_depth
        Most tasks a worker holds at once (the one it runs, and those
        queued behind it so that it never waits for the next).
    """

    def __init__(
        self, workers: Mapping[int, str], tasks: Sequence[tuple[str, ...]], queue_depth: int = QUEUE_DEPTH
    ) -> None:
        self.queue_depth = queue_depth
        self.backends = dict(workers)
        self.pending = collections.deque(PendingTask(index, tuple(accepts)) for index, accepts in enumerate(tasks))
        self.queued: dict[int, collections.deque[int]] = {worker: collections.deque() for worker in self.backends}
        self.reported: dict[int, int] = {}
        self.pace: dict[int, tuple[float, int]] = {}
        self.remaining = len(tasks)
        self.ending: Ending | None = None
        self.lost: set[int] = set()
        self._accepts = [tuple(accepts) for accepts in tasks]

    # -- what the shell asks -------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Every task's result was delivered."""
        return self.ending is None and self.remaining == 0

    @property
    def settled(self) -> bool:
        """The run ended and no worker owes an answer: the shell may report the ending."""
        return self.ending is not None and not any(self.queued.values())

    @property
    def stuck(self) -> bool:
        """Tasks remain, none runs, and no live worker may take one."""
        if self.ending is not None or self.remaining == 0 or any(self.queued.values()):
            return False
        return not any(pick_task(backend, list(self.pending)) is not None for worker, backend in self.backends.items())

    def holder_of(self, task: int) -> int | None:
        """The worker that holds ``task``, if one does."""
        for worker, held in self.queued.items():
            if task in held:
                return worker
        return None

    def busy_workers(self) -> list[int]:
        """Workers holding tasks."""
        return [worker for worker, held in self.queued.items() if held]

    # -- dispatch ----------------------------------------------------------------------
    def dispatch(self) -> list[Dispatch]:
        """Tasks to hand out now: each worker with room takes what the policy lets it take."""
        if self.ending is not None:
            return []
        sent: list[Dispatch] = []
        progress = True
        while progress and self.pending:
            progress = False
            for worker, backend in self.backends.items():
                held = self.queued[worker]
                if len(held) >= self.queue_depth or not self.pending:
                    continue
                position = pick_task(backend, list(self.pending))
                if position is None:
                    continue
                chosen = self.pending[position]
                if not self._worth_taking(worker, chosen):
                    continue
                del self.pending[position]
                held.append(chosen.index)
                sent.append(Dispatch(worker, chosen.index))
                progress = True
        return sent

    def _mean_task_s(self, worker: int) -> float | None:
        total_s, count = self.pace.get(worker, (0.0, 0))
        return total_s / count if count else None

    def _worth_taking(self, worker: int, chosen: PendingTask) -> bool:
        own = self._mean_task_s(worker)
        if own is None:
            return True
        faster, faster_queued = [], 0
        for other, backend in self.backends.items():
            other_s = self._mean_task_s(other)
            if other == worker or other_s is None or other_s >= own:
                continue
            if worker_accepts(backend, chosen):
                faster.append(other_s)
                faster_queued += len(self.queued[other])
        takeable = sum(1 for task in self.pending if worker_accepts(self.backends[worker], task))
        return worth_taking(own, len(self.queued[worker]), faster, takeable, faster_queued)

    # -- events ------------------------------------------------------------------------
    def handle(self, event: Event) -> list[Instruction]:  # noqa: PLR0911 - one branch per event
        """What to do about ``event``."""
        if isinstance(event, CancelRequested):
            return self._end(Ending(cancelled=True))
        if isinstance(event, GraceExpired):
            return self._expire()
        if isinstance(event, WorkerLost):
            return self._lose(event.worker)
        if event.worker not in self.backends or event.task not in self.queued[event.worker]:
            return []  # from a worker already lost, or about a task it no longer holds
        if isinstance(event, NotSent):
            self._release(event.worker, event.task)
            self.pending.appendleft(PendingTask(event.task, self._accepts[event.task]))
            return []
        if isinstance(event, Progressed):
            if self.ending is not None:
                return []
            self.reported[event.task] = self.reported.get(event.task, 0) + event.frames
            return [CountFrames(event.frames)]
        self._release(event.worker, event.task)
        if self.ending is not None:
            return []
        if isinstance(event, Finished):
            self.remaining -= 1
            total_s, count = self.pace.get(event.worker, (0.0, 0))
            self.pace[event.worker] = (total_s + event.seconds, count + 1)
            self.reported.pop(event.task, None)
            counted = [CountFrames(event.frames)] if event.frames else []
            return [*counted, Deliver(event.task)]
        if isinstance(event, Failed):
            if event.out_of_memory and self._cpu_can_take(event.task) and self.backends[event.worker] != "numpy":
                self.pending.appendleft(PendingTask(event.task, self._accepts[event.task], cpu_only=True))
                taken_back = self.reported.pop(event.task, 0)
                return [CountFrames(-taken_back)] if taken_back else []
            return self._end(Ending(task=event.task, worker=event.worker))
        return self._end(Ending(task=event.task, worker=event.worker, unasked_drop=True))  # Dropped, unasked

    def _cpu_can_take(self, task: int) -> bool:
        return "numpy" in self._accepts[task] and "numpy" in self.backends.values()

    def _release(self, worker: int, task: int) -> None:
        self.queued[worker].remove(task)

    def _end(self, ending: Ending) -> list[Instruction]:
        if self.ending is not None:
            return []
        self.ending = ending
        return [CancelWorker(worker) for worker in self.busy_workers()]

    def _lose(self, worker: int) -> list[Instruction]:
        if worker not in self.backends:
            return []
        held = self.queued.pop(worker)
        del self.backends[worker]
        self.lost.add(worker)
        for task in held:
            self.reported.pop(task, None)
        return self._end(Ending(task=held[0] if held else None, worker=worker, worker_lost=True))

    def _expire(self) -> list[Instruction]:
        late = self.busy_workers()
        for worker in late:
            del self.backends[worker]
            self.queued.pop(worker)
            self.lost.add(worker)
        return [KillWorker(worker) for worker in late]
