"""What the runs of every executor share: the iterator, why a run stops, the loop around its state.

Policy
------
- A shell waits for what its workers send (and for a wake-up), at most
  :data:`LIVENESS_POLL_S` at a time; everything they sent is handled before
  the next wait.  Events go to the run's state; its instructions become
  sends, kills and the results the caller's iterator yields.
- A run stops for the first of: a reason its iterator was given (another
  run takes over, the executor closes), its cancellation, an error, a
  raising ``on_tile``, or the iterator closed by its consumer.  Stopping
  waits up to ``grace_s`` for the busy workers' answers and kills those that
  did not answer; anything raised while waiting (a second Ctrl-C) kills the
  busy workers at once.
- A run that was stopped, however far its iterator was consumed, raises
  :class:`~gpuudf.errors.UDFRunCancelled` with the reason on the next step.

How a shell waits, sends and kills is its executor's (the local executor's
pipes and processes, the dask executor's futures): a subclass says.
"""

from __future__ import annotations

import inspect
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from gpuudf.errors import UDFRunCancelled, WorkerError
from gpuudf.executors.executor import CancelSignal, Task, TileCallback
from gpuudf.executors.messages import TaskDone, TaskFailed
from gpuudf.executors.process import unpack_exception
from gpuudf.executors.run_state import (
    CancelRequested,
    CountFrames,
    Deliver,
    Event,
    GraceExpired,
    Instruction,
    RunState,
    WorkerLost,
)
from gpuudf.executors.scheduling import QUEUE_DEPTH

__all__ = ["CANCELLED", "CLOSED", "LIVENESS_POLL_S", "TAKEN_OVER", "RunShell", "RunSteps", "stop_reason"]

#: Seconds between liveness checks of the busy workers while the shell waits.
LIVENESS_POLL_S = 0.5
#: Why a run stops when another run on the same executor starts.
TAKEN_OVER = "another run on the same Context took its workers over"
#: Why a run stops when its executor is closed.
CLOSED = "the Context was closed while the run was going on"
#: Why a run stops when its cancel handle was cancelled.
CANCELLED = "the run was cancelled"


def stop_reason(steps: RunSteps, closed: Callable[[], bool], cancel: CancelSignal | None) -> str | None:
    """Why a run is to stop, if it is: a reason its iterator was given, its executor closed, or its cancellation."""
    if steps.stop_reason is not None:
        return steps.stop_reason
    if closed():
        return CLOSED
    if cancel is not None and cancel.cancelled:
        return CANCELLED
    return None


class RunSteps(Iterator[Any]):
    """A run's results as the caller iterates them; raises ``UDFRunCancelled`` once the run was stopped.

    Steps, :meth:`close` and :meth:`stop` take turns: one called while a step
    is in progress in another thread waits for that step (which a stop
    wakes and ends), so no caller ever sees "generator already executing".
    """

    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self._generator: Generator[Any, None, None] | None = None
        self.wake: Callable[[], None] = lambda: None
        self._turn = threading.RLock()

    def start(self, generator: Generator[Any, None, None]) -> None:
        """The generator that drives the run."""
        self._generator = generator

    def __next__(self) -> Any:
        assert self._generator is not None
        with self._turn:
            if self.stop_reason is not None and inspect.getgeneratorstate(self._generator) == inspect.GEN_CLOSED:
                raise UDFRunCancelled(self.stop_reason)
            return next(self._generator)

    def close(self) -> None:
        """Stop the run now, without a reason to raise later (the consumer closed it)."""
        assert self._generator is not None
        with self._turn:
            if inspect.getgeneratorstate(self._generator) != inspect.GEN_RUNNING:  # else: from its own callback
                self._generator.close()

    def stop(self, reason: str, timeout_s: float) -> None:
        """End the run for ``reason``: at once if it is between steps, else by waking the thread that runs it."""
        assert self._generator is not None
        if inspect.getgeneratorstate(self._generator) == inspect.GEN_CLOSED:
            return  # finished, or stopped already: nothing to stop, and its consumer saw its end
        self.stop_reason = reason
        self.wake()
        if not self._turn.acquire(timeout=timeout_s):
            msg = f"a UDF run in another thread did not stop within {timeout_s:.0f} s"
            raise RuntimeError(msg)
        try:
            # running here means: called from the run's own thread (a callback), which stops at its next step
            if inspect.getgeneratorstate(self._generator) != inspect.GEN_RUNNING:
                self._generator.close()
        finally:
            self._turn.release()


class RunShell(ABC):
    """One run's loop: events from the workers to the state, its instructions carried out.

    Parameters
    ----------
    workers
        Per live worker index, its array backend.
    tasks
        The run's tasks (a list a parameter update may replace entries of).
    steps
        The iterator the caller consumes, which knows a reason to stop.
    on_tile
        Called with the frames done (negative: taken back).
    cancel
        The run's cancellation, subscribed to for the time of the run.
    grace_s
        Seconds a worker has to answer a cancellation.
    closed
        Whether the executor was closed.
    queue_depth
        Most tasks a worker holds at once.
    """

    def __init__(
        self,
        workers: dict[int, str],
        tasks: Sequence[Task],
        *,
        steps: RunSteps,
        on_tile: TileCallback | None,
        cancel: CancelSignal | None,
        grace_s: float,
        closed: Callable[[], bool],
        queue_depth: int = QUEUE_DEPTH,
    ) -> None:
        self.steps = steps
        self.tasks = tasks
        self.on_tile = on_tile
        self.cancel = cancel
        self.grace_s = grace_s
        self.closed = closed
        self.state = RunState(workers, [tuple(t.backends) for t in tasks], queue_depth)
        #: Answers the state was told of, by task, until the result is yielded or the failure raised.
        self.answers: dict[int, TaskDone | TaskFailed] = {}

    # -- what an executor's shell says ---------------------------------------------------
    @abstractmethod
    def prepare(self) -> None:
        """Before the first dispatch: fail early on a plan that cannot travel, forget old wake-ups."""

    @abstractmethod
    def wake(self) -> None:
        """End a wait of :meth:`events` now (from any thread)."""

    @abstractmethod
    def events(self, timeout_s: float) -> Iterator[Event]:
        """What the workers sent, once one did, :meth:`wake` was called or ``timeout_s`` passed."""

    @abstractmethod
    def carry_out_one(self, instruction: Instruction) -> None:
        """Carry out a :class:`Dispatch`, :class:`CancelWorker` or :class:`KillWorker`."""

    @abstractmethod
    def result(self, task: int) -> Any:
        """The delivered result of ``task``, as the caller gets it."""

    @abstractmethod
    def kill_now(self, worker: int) -> None:
        """Kill ``worker`` without waiting for it (a second Ctrl-C)."""

    @abstractmethod
    def describe_worker(self, worker: int) -> str:
        """The worker, for messages (``"worker process on cpu"``)."""

    @abstractmethod
    def death_note(self, worker: int) -> str:
        """What is known of how ``worker`` died (``"exit code -9"``)."""

    def finish(self) -> None:
        """After the run, however it ended."""

    # -- the loop ------------------------------------------------------------------------
    def stop_reason(self) -> str | None:
        """Why the run is to stop, if it is."""
        return stop_reason(self.steps, self.closed, self.cancel)

    def drive(self) -> Generator[Any, None, None]:
        """The run: dispatch, wait, handle, yield results, until it completes or ends."""
        self.prepare()
        self.steps.wake = self.wake
        unsubscribe = self.cancel.subscribe(self.wake) if self.cancel is not None else None
        state = self.state
        try:
            while True:
                self.carry_out(state.dispatch())
                if state.complete:
                    return
                if state.settled:
                    raise self.ending_error()
                if state.ending is None:
                    if self.stop_reason() is not None:
                        self.carry_out(state.handle(CancelRequested()))
                        continue
                    if state.stuck:
                        msg = "no worker can run the remaining tasks (their array backends are not offered)"
                        raise WorkerError(msg)
                    for event in self.events(LIVENESS_POLL_S):
                        for instruction in state.handle(event):
                            if isinstance(instruction, Deliver):
                                yield self.result(instruction.task)
                            else:
                                self.carry_out([instruction])
                else:
                    self.wait_for_answers()
        finally:
            if unsubscribe is not None:
                unsubscribe()
            self.steps.wake = lambda: None
            if state.ending is None and not state.complete:  # left early: an error, a closed iterator, Ctrl-C
                self.carry_out(state.handle(CancelRequested()))
            if not state.settled and state.ending is not None:
                self.wait_for_answers()
            self.finish()

    def wait_for_answers(self) -> None:
        """Until the state is settled: answers to the cancellation, then kills after the grace period."""
        deadline = time.monotonic() + self.grace_s
        try:
            while not self.state.settled:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    self.carry_out(self.state.handle(GraceExpired()))
                    break
                for event in self.events(min(left_s, LIVENESS_POLL_S)):
                    self.carry_out(self.state.handle(event))
        except BaseException:
            # a second Ctrl-C, or the executor closed under us: nobody waits for the busy workers any more
            for worker in self.state.busy_workers():
                self.kill_now(worker)
                self.state.handle(WorkerLost(worker))
            raise

    def ending_error(self) -> BaseException:
        """The exception that reports how the settled run ended."""
        ending = self.state.ending
        assert ending is not None
        if ending.cancelled:
            return UDFRunCancelled(self.stop_reason() or CANCELLED)
        worker = "a worker" if ending.worker is None else f"the {self.describe_worker(ending.worker)}"
        if ending.worker_lost:
            partition = self.tasks[ending.task].own if ending.task is not None else "no task"
            note = "" if ending.worker is None else f" ({self.death_note(ending.worker)})"
            error = WorkerError(f"{worker} died{note} while processing {partition}")
            cause = self.tasks[ending.task].failure_cause() if ending.task is not None else None
            if cause is not None:
                cause.__cause__ = error
                return cause
            return error
        assert ending.task is not None
        if ending.unasked_drop:
            return WorkerError(f"{worker} dropped partition task {ending.task} though nobody cancelled it")
        answer = self.answers.pop(ending.task)
        assert isinstance(answer, TaskFailed)
        return unpack_exception(answer.exception, answer.traceback)

    def carry_out(self, instructions: Sequence[Instruction]) -> None:
        """Do what the state says (results are yielded by :meth:`drive`)."""
        for instruction in instructions:
            if isinstance(instruction, CountFrames):
                if self.on_tile is not None:
                    self.on_tile(instruction.frames)
            elif isinstance(instruction, Deliver):  # pragma: no cover - handled where results are yielded
                msg = f"not an instruction to carry out here: {instruction!r}"
                raise TypeError(msg)
            else:
                self.carry_out_one(instruction)
