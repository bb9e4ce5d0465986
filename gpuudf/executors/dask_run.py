"""One run on a dask cluster: futures, events and flags under the shared run loop.

Policy
------
- Each dispatch is one future (:func:`gpuudf.executors.dask_worker.run_task`)
  pinned to its slot's worker (``workers=[address]``, no other worker
  allowed) with that worker's dask resources: the run's state decides where
  a task goes, as in the local executor, and dask carries it there.
- Everything the shell waits for arrives in one queue: finished futures
  (their done callbacks), progress (dask events on the executor's topic,
  routed by run), and wake-ups.  Every :data:`~gpuudf.executors.run_shell.LIVENESS_POLL_S`
  the shell asks the scheduler which workers it has: a busy slot whose
  worker is gone is lost (dask would otherwise wait for it forever, its
  tasks being pinned), and that worker's futures are cancelled.
- A run's plan is pickled once per distinct shared part, with the dataset's
  frames handed to the executor's transport (scattered once per dataset);
  a plan larger than :data:`INLINE_PLAN_NBYTES` is scattered too, so that
  each worker fetches it once instead of each task carrying it.
- Cancelling sets the run's flag on each busy worker (``Client.run``), which
  the running task sees at its next tile and its queued tasks before they
  start; each answers dropped.  A worker that has not answered within the
  grace period is restarted by its nanny (``Client.restart_workers``).
  When the run ends, its futures that are left are cancelled.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gpuudf.executors.executor import CancelSignal, Task, TileCallback
from gpuudf.executors.messages import TaskDone, TaskDropped, TaskFailed
from gpuudf.executors.process import STOP_TIMEOUT_S, loads_payload, pickle_shared
from gpuudf.executors.run_shell import LIVENESS_POLL_S, RunShell, RunSteps
from gpuudf.executors.run_state import (
    CancelWorker,
    Dispatch,
    Dropped,
    Event,
    Failed,
    Finished,
    Instruction,
    KillWorker,
    Progressed,
    WorkerLost,
)
from gpuudf.executors.scheduling import DASK_QUEUE_DEPTH

__all__ = ["INLINE_PLAN_NBYTES", "DaskRunShell", "Progress", "Slot"]

#: Plans up to this size travel inside each task; larger ones are scattered once.
INLINE_PLAN_NBYTES = 1 << 20


@dataclass(frozen=True)
class Slot:
    """One task at a time on one dask worker: what the run's state calls a worker.

    Attributes
    ----------
    address, name
        The dask worker's.
    device
        What the task runs on there (``"cpu"``, ``"cuda:0"``, ``"sim:0"``).
    array_backend
        ``"numpy"`` or ``"cupy"``.
    resources
        The dask resources each task asks for (those the worker declares).
    """

    address: str
    name: str
    device: str
    array_backend: str
    resources: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        """``dask worker 'name' at tcp://... (device)``."""
        return f"dask worker {self.name!r} at {self.address} ({self.device})"


@dataclass(frozen=True)
class _Plan:
    key: str
    argument: Any  # the payload, or a future of it
    arrays: dict[str, Any]  # key -> future of the frames it names


@dataclass(frozen=True, slots=True)
class Progress:
    """What a worker reported of a task (the executor puts it in its run's inbox)."""

    task: int
    frames: int


@dataclass(frozen=True, slots=True)
class _Done:
    slot: int
    task: int
    future: Any


_WAKE = object()


class DaskRunShell(RunShell):
    """One run's IO on a dask cluster.

    Parameters
    ----------
    client
        The executor's ``distributed.Client``.
    slots
        The workers' slots, by the index the run's state knows them by.
    run_key
        Unique to the run across every client of the cluster.
    inbox
        Where this run's progress events arrive (the executor routes them).
    topic
        The dask event topic workers send progress to.
    transport
        Sends datasets' frames to the workers, once per dataset.
    workers_present
        The addresses the scheduler knows now.
    tasks, steps, on_tile, cancel, grace_s, closed
        As for :class:`~gpuudf.executors.run_shell.RunShell`.
    """

    def __init__(
        self,
        client: Any,
        slots: Sequence[Slot],
        tasks: Sequence[Task],
        *,
        run_key: str,
        inbox: queue.SimpleQueue[Any],
        topic: str,
        transport: Any,
        workers_present: Callable[[], set[str]],
        steps: RunSteps,
        on_tile: TileCallback | None,
        cancel: CancelSignal | None,
        grace_s: float,
        closed: Callable[[], bool],
    ) -> None:
        workers = {index: slot.array_backend for index, slot in enumerate(slots)}
        super().__init__(
            workers,
            tasks,
            steps=steps,
            on_tile=on_tile,
            cancel=cancel,
            grace_s=grace_s,
            closed=closed,
            queue_depth=DASK_QUEUE_DEPTH,
        )
        self.client = client
        self.slots = list(slots)
        self.run_key = run_key
        self.inbox = inbox
        self.topic = topic
        self.transport = transport
        self.workers_present = workers_present
        self.plans: dict[int, tuple[Any, _Plan]] = {}  # id(shared) -> (shared, its plan), for this run
        self.payloads: dict[int, tuple[Any, bytes]] = {}
        self.futures: dict[int, Any] = {}  # task -> its future while a slot holds it
        self.backlog: collections.deque[Any] = collections.deque()  # arrived, not yet handled
        self.fetched: dict[int, Any] = {}  # id(future) -> its answer, fetched, not yet handled
        self.lost_because: dict[int, str] = {}  # slot -> what dask said
        self.flagged: set[str] = set()  # addresses told to cancel
        self.submissions = itertools.count()
        self.last_check_s = time.monotonic()

    # -- RunShell --------------------------------------------------------------------
    def prepare(self) -> None:
        """The first plan is pickled (and sent) before any dispatch: one that does not pickle fails at once."""
        self.plan_of(self.tasks[0])

    def wake(self) -> None:
        """End the shell's wait."""
        self.inbox.put(_WAKE)

    def carry_out_one(self, instruction: Instruction) -> None:
        """Submit a task, flag a run cancelled on a worker, or restart a worker."""
        if isinstance(instruction, Dispatch):
            self.submit(instruction.worker, instruction.task)
        elif isinstance(instruction, CancelWorker):
            self.flag_cancelled(self.slots[instruction.worker].address)
        else:
            assert isinstance(instruction, KillWorker), instruction
            self.kill_now(instruction.worker)

    def result(self, task: int) -> Any:
        """The task's result, unpickled."""
        answer = self.answers.pop(task)
        assert isinstance(answer, TaskDone)
        return loads_payload(answer.result)

    def kill_now(self, worker: int) -> None:
        """Restart the slot's dask worker through its nanny; a worker without one is left as it is."""
        slot = self.slots[worker]
        self.cancel_futures_on(slot.address)
        with contextlib.suppress(Exception):  # no nanny, or gone already: nothing more to do from here
            self.client.restart_workers([slot.address], timeout=STOP_TIMEOUT_S, raise_for_error=False)

    def finish(self) -> None:
        """Cancel the run's futures that are left."""
        left = [future for future in self.futures.values() if not future.done()]
        self.futures.clear()
        if left:
            self.client.cancel(left)

    # -- sending -----------------------------------------------------------------------
    def plan_of(self, task: Task) -> _Plan:
        """The task's plan as the cluster has it: pickled once per distinct shared part, scattered if large."""
        known = self.plans.get(id(task.shared))
        if known is not None:
            return known[1]
        from gpuudf.datasets.transport import frames_travel_by  # noqa: PLC0415

        with self.transport.recording() as arrays, frames_travel_by(self.transport):
            payload = pickle_shared(task, self.payloads)
        key = f"gpuudf-plan-{self.run_key}-{len(self.plans)}"
        argument: Any = payload
        if len(payload) > INLINE_PLAN_NBYTES:
            argument = self.client.scatter(payload, hash=False)
        plan = _Plan(key, argument, arrays)
        self.plans[id(task.shared)] = (task.shared, plan)
        return plan

    def submit(self, index: int, task_index: int) -> None:
        """Submit one task, pinned to its slot's worker."""
        from gpuudf.executors.dask_worker import run_task  # noqa: PLC0415
        from gpuudf.executors.run_state import NotSent  # noqa: PLC0415

        slot = self.slots[index]
        task = self.tasks[task_index]  # read now: a parameter update may have replaced it
        try:
            plan = self.plan_of(task)
            future = self.client.submit(
                run_task,
                self.run_key,
                plan.key,
                plan.argument,
                plan.arrays,
                task_index,
                task.own,
                slot.device,
                self.topic,
                key=f"gpuudf-task-{self.run_key}-{task_index}-{next(self.submissions)}",
                workers=[slot.address],
                allow_other_workers=False,
                resources=dict(slot.resources) or None,
                pure=False,
            )
        except BaseException:
            self.state.handle(NotSent(index, task_index))  # the worker owes no answer for it
            raise
        self.futures[task_index] = future
        future.add_done_callback(lambda done: self.inbox.put(_Done(index, task_index, done)))

    def flag_cancelled(self, address: str) -> None:
        """Tell the worker at ``address`` that this run is cancelled (once)."""
        from gpuudf.executors.dask_worker import mark_cancelled  # noqa: PLC0415

        if address in self.flagged:
            return
        self.flagged.add(address)
        self.client.run(mark_cancelled, self.run_key, workers=[address], on_error="ignore")

    def cancel_futures_on(self, address: str) -> None:
        """Cancel the futures the slots of worker ``address`` hold."""
        held = [
            self.futures.pop(task)
            for index, slot in enumerate(self.slots)
            if slot.address == address
            for task in self.state.queued.get(index, ())
            if task in self.futures
        ]
        if held:
            self.client.cancel(held)

    # -- waiting -----------------------------------------------------------------------
    def events(self, timeout_s: float) -> Iterator[Event]:
        """Finished futures and progress of this run, then the workers lost since the last look.

        What arrived is kept in a backlog and taken from it one item at a
        time: a consumer that stops the run at a result (the iterator closed
        at a ``yield``) leaves the answers not yet handled for the stop to see.
        """
        if not self.backlog:
            try:
                self.backlog.append(self.inbox.get(timeout=max(0.0, timeout_s)))
                while True:
                    self.backlog.append(self.inbox.get_nowait())
            except queue.Empty:
                pass
        arrived = bool(self.backlog)
        self.fetch_answers()
        while self.backlog:
            item = self.backlog.popleft()
            if isinstance(item, Progress):
                holder = self.state.holder_of(item.task)
                if holder is not None:
                    yield Progressed(holder, item.task, item.frames)
            elif isinstance(item, _Done):
                yield from self.answered(item.slot, item.task, item.future, self.fetched.pop(id(item.future), None))
        if time.monotonic() - self.last_check_s >= LIVENESS_POLL_S or not arrived:
            yield from self.lost_workers()

    def fetch_answers(self) -> None:
        """Fetch the answers of the finished futures in the backlog together: one round trip for all."""
        finished = {
            id(item.future): item.future
            for item in self.backlog
            if isinstance(item, _Done)
            and id(item.future) not in self.fetched
            and item.task in self.futures
            and self.futures[item.task] is item.future
            and item.future.status == "finished"
        }
        if finished:
            self.fetched.update(self.client.gather(finished, errors="skip"))  # a lost one is left out

    def answered(self, index: int, task: int, future: Any, answer: Any) -> Iterator[Event]:
        """The event a finished future stands for (``answer``: its result, if it finished)."""
        if task not in self.futures or self.futures[task] is not future:
            return  # cancelled by us, or of an earlier dispatch of the task
        del self.futures[task]
        if future.status != "finished" or answer is None:
            # not our cancellation (ours forget the future first): dask gave up the task, its worker died or
            # could not be reached
            said = repr(future.exception()) if future.status == "error" else f"dask reports its task {future.status}"
            self.lost_because[index] = said
            yield from self.lose_address(self.slots[index].address)
            return
        if isinstance(answer, TaskDone):
            self.answers[task] = answer
            yield Finished(index, task, answer.frames, answer.seconds)
        elif isinstance(answer, TaskFailed):
            self.answers[task] = answer
            yield Failed(index, task, answer.out_of_memory)
        else:
            assert isinstance(answer, TaskDropped), answer
            yield Dropped(index, task)

    def lost_workers(self) -> Iterator[Event]:
        """Slots whose worker the scheduler no longer has."""
        self.last_check_s = time.monotonic()
        present = self.workers_present()
        for address in {slot.address for slot in self.slots} - present:
            yield from self.lose_address(address)

    def lose_address(self, address: str) -> Iterator[Event]:
        """Every slot of the worker at ``address`` is lost; its futures are cancelled."""
        self.cancel_futures_on(address)
        for index, slot in enumerate(self.slots):
            if slot.address == address and index in self.state.backends:
                yield WorkerLost(index)

    # -- ending ------------------------------------------------------------------------
    def describe_worker(self, worker: int) -> str:
        """``dask worker 'NAME' at ADDRESS (DEVICE)``."""
        return self.slots[worker].describe()

    def death_note(self, worker: int) -> str:
        """What dask said of its future, or that it left the cluster."""
        return self.lost_because.get(worker, "it left the cluster")
