"""One run on a local executor's workers: the IO shell around its :class:`~gpuudf.executors.run_state.RunState`.

Policy
------
- The shell waits on the connections of the busy workers and on the
  executor's :class:`~gpuudf.executors.wake.Waker`, at most
  :data:`LIVENESS_POLL_S` at a time (then it checks that busy workers still
  run); everything a worker sent is read before the next wait.
- Worker messages become events; instructions become sends, kills and the
  results the caller's iterator yields.  Before a task's answer is handed on,
  what its worker printed is forwarded.
- A run stops for the first of: a reason its iterator was given (another
  run takes over, the executor closes), its cancellation, an error, a
  raising ``on_tile``, or the iterator closed by its consumer.  Stopping
  waits up to ``grace_s`` for the busy workers' answers and kills those that
  did not answer; anything raised while waiting (a second Ctrl-C) kills the
  busy workers at once.
- A run that was stopped, however far its iterator was consumed, raises
  :class:`~gpuudf.errors.UDFRunCancelled` with the reason on the next step.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from gpuudf.errors import UDFRunCancelled, WorkerError
from gpuudf.executors.executor import CancelSignal, Task, TileCallback
from gpuudf.executors.messages import CancelRun, RunTask, StartRun, TaskDone, TaskDropped, TaskFailed, TileProgress
from gpuudf.executors.output import WorkerOutput
from gpuudf.executors.pool import WorkerPool
from gpuudf.executors.process import loads_payload, pickle_shared, unpack_exception
from gpuudf.executors.run_state import (
    CancelRequested,
    CancelWorker,
    CountFrames,
    Deliver,
    Dispatch,
    Dropped,
    Event,
    Failed,
    Finished,
    GraceExpired,
    Instruction,
    KillWorker,
    NotSent,
    Progressed,
    RunState,
    WorkerLost,
)
from gpuudf.executors.wake import Waker

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

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


class RunShell:
    """One run's IO: worker messages to events, instructions to sends, kills and results.

    Parameters
    ----------
    pool
        The started workers.
    tasks
        The run's tasks (a list a parameter update may replace entries of).
    steps
        The iterator the caller consumes, which knows a reason to stop.
    on_tile
        Called with the frames done (negative: taken back).
    cancel
        The run's cancellation, subscribed to for the time of the run.
    waker
        Woken by ``cancel`` and by whoever stops the run.
    run_id
        The run's number among the executor's runs.
    grace_s
        Seconds a worker has to answer a cancellation.
    output
        Forwards what the workers print.
    closed
        Whether the executor was closed.
    """

    def __init__(
        self,
        pool: WorkerPool,
        tasks: Sequence[Task],
        *,
        steps: RunSteps,
        on_tile: TileCallback | None,
        cancel: CancelSignal | None,
        waker: Waker,
        run_id: int,
        grace_s: float,
        output: WorkerOutput,
        closed: Callable[[], bool],
    ) -> None:
        self.pool = pool
        self.steps = steps
        self.tasks = tasks
        self.on_tile = on_tile
        self.cancel = cancel
        self.waker = waker
        self.run_id = run_id
        self.grace_s = grace_s
        self.output = output
        self.closed = closed
        self.payloads: dict[int, tuple[Any, bytes]] = {}  # id(shared) -> (shared, its pickle), for this run
        self.answers: dict[int, TaskDone | TaskFailed] = {}
        self.exit_codes: dict[int, int | None] = {}
        self.state = RunState({i: w.array_backend for i, w in pool.live().items()}, [tuple(t.backends) for t in tasks])

    def stop_reason(self) -> str | None:
        """Why the run is to stop, if it is."""
        return stop_reason(self.steps, self.closed, self.cancel)

    def drive(self) -> Generator[Any, None, None]:
        """The run: dispatch, wait, handle, yield results, until it completes or ends."""
        pickle_shared(self.tasks[0], self.payloads)  # a plan that does not pickle fails before any dispatch
        self.waker.drain()  # a wake-up left from an earlier run is not this run's cancellation
        self.steps.wake = self.waker.wake
        unsubscribe = self.cancel.subscribe(self.waker.wake) if self.cancel is not None else None
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
                                answer = self.answers.pop(instruction.task)
                                assert isinstance(answer, TaskDone)
                                yield loads_payload(answer.result)
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
            self.output.end_run()

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
                self.pool.kill(worker)
                self.state.handle(WorkerLost(worker))
            raise

    def carry_out(self, instructions: Sequence[Instruction]) -> None:
        """Do what the state says (results are yielded by :meth:`drive`)."""
        for instruction in instructions:
            if isinstance(instruction, Dispatch):
                self.send_task(instruction.worker, instruction.task)
            elif isinstance(instruction, CountFrames):
                if self.on_tile is not None:
                    self.on_tile(instruction.frames)
            elif isinstance(instruction, CancelWorker):
                if not self.pool.send(instruction.worker, CancelRun(self.run_id)):
                    self.lose(instruction.worker)
            elif isinstance(instruction, KillWorker):
                self.record_exit(instruction.worker, self.pool.kill(instruction.worker))
            else:  # pragma: no cover - Deliver is handled where results are yielded
                msg = f"not an instruction to carry out here: {instruction!r}"
                raise TypeError(msg)

    def send_task(self, index: int, task_index: int) -> None:
        """Send a task, and the run's plan first if the worker lacks this one; a broken send loses the worker."""
        worker = self.pool.workers[index]
        task = self.tasks[task_index]  # read now: a parameter update may have replaced it
        sent = worker is not None
        try:
            if worker is not None and worker.shared_sent != (self.run_id, id(task.shared)):
                payload = pickle_shared(task, self.payloads)  # a patched plan that does not pickle raises here
                sent = self.pool.send(index, StartRun(self.run_id, payload))
                worker.shared_sent = (self.run_id, id(task.shared))
        except BaseException:
            self.state.handle(NotSent(index, task_index))  # the worker owes no answer for it
            raise
        if not (sent and self.pool.send(index, RunTask(task_index, self.run_id, task.own))):
            self.lose(index)

    def lose(self, index: int) -> None:
        """Reap a worker that died or whose connection broke, and tell the state."""
        self.record_exit(index, self.pool.reap(index))
        self.carry_out(self.state.handle(WorkerLost(index)))

    def record_exit(self, index: int, code: int | None) -> None:
        """Keep a worker's exit code; a second reap of its empty slot (``None``) does not overwrite it."""
        if code is not None:
            self.exit_codes[index] = code

    def events(self, timeout_s: float) -> Iterator[Event]:
        """What the busy workers sent, once at least one did, the waker woke us or ``timeout_s`` passed."""
        from multiprocessing.connection import wait  # noqa: PLC0415

        conns: dict[Any, int] = {}
        for index in self.state.busy_workers():
            worker = self.pool.workers[index]
            if worker is not None:
                conns[worker.conn] = index
        try:
            ready = wait([*conns, self.waker.receiver], timeout=timeout_s)
        except (OSError, ValueError):  # a connection closed under us: the executor is being closed
            if self.closed():
                raise UDFRunCancelled(CLOSED) from None
            raise
        if self.waker.receiver in ready:
            self.waker.drain()
        if not ready:
            for index in conns.values():
                worker = self.pool.workers[index]
                if worker is not None and worker.process.poll() is not None:
                    self.record_exit(index, self.pool.reap(index))
                    yield WorkerLost(index)
            return
        for conn in ready:
            if conn is self.waker.receiver:
                continue
            yield from self.received(cast("Connection", conn), conns[conn])

    def received(self, conn: Connection, index: int) -> Iterator[Event]:
        """Everything worker ``index`` has sent so far, as events."""
        while True:  # everything this worker has sent so far, at least one message
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self.record_exit(index, self.pool.reap(index))
                yield WorkerLost(index)
                return
            if isinstance(message, TileProgress):
                yield Progressed(index, message.task_id, message.frames)
            else:
                worker = self.pool.workers[index]
                if worker is not None:
                    self.output.drain(worker.process.pid)  # a task's lines come before its answer
                if isinstance(message, TaskDone):
                    self.answers[message.task_id] = message
                    yield Finished(index, message.task_id, message.frames, message.seconds)
                elif isinstance(message, TaskFailed):
                    self.answers[message.task_id] = message
                    yield Failed(index, message.task_id, message.out_of_memory)
                else:
                    assert isinstance(message, TaskDropped), message
                    yield Dropped(index, message.task_id)
            try:
                if not conn.poll():
                    return
            except (EOFError, OSError):
                return

    def ending_error(self) -> BaseException:
        """The exception that reports how the settled run ended."""
        ending = self.state.ending
        assert ending is not None
        if ending.cancelled:
            return UDFRunCancelled(self.stop_reason() or CANCELLED)
        device = self.pool.devices[ending.worker] if ending.worker is not None else "?"
        if ending.worker_lost:
            partition = self.tasks[ending.task].own if ending.task is not None else "no task"
            code = self.exit_codes.get(ending.worker) if ending.worker is not None else None
            msg = f"the worker process on {device} died (exit code {code}) while processing {partition}"
            cause = self.tasks[ending.task].failure_cause() if ending.task is not None else None
            if cause is not None:
                cause.__cause__ = WorkerError(msg)
                return cause
            return WorkerError(msg)
        assert ending.task is not None
        if ending.unasked_drop:
            return WorkerError(f"worker {device} cancelled partition task {ending.task}")
        answer = self.answers.pop(ending.task)
        assert isinstance(answer, TaskFailed)
        return unpack_exception(answer.exception, answer.traceback)
