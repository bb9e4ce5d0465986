"""One run on a local executor's workers: pipes and processes under the shared run loop.

Policy
------
- The shell waits on the connections of the busy workers and on the
  executor's :class:`~gpuudf.executors.wake.Waker`, at most
  :data:`~gpuudf.executors.run_shell.LIVENESS_POLL_S` at a time (then it
  checks that busy workers still run).
- Worker messages become events; instructions become sends and kills.
  Before a task's answer is handed on, what its worker printed is forwarded.
- How a run stops is :mod:`gpuudf.executors.run_shell`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from gpuudf.errors import UDFRunCancelled
from gpuudf.executors.executor import CancelSignal, Task, TileCallback
from gpuudf.executors.messages import CancelRun, RunTask, StartRun, TaskDone, TaskDropped, TaskFailed, TileProgress
from gpuudf.executors.output import WorkerOutput
from gpuudf.executors.pool import WorkerPool
from gpuudf.executors.process import loads_payload, pickle_shared
from gpuudf.executors.run_shell import CLOSED, RunShell, RunSteps
from gpuudf.executors.run_state import (
    CancelWorker,
    Dispatch,
    Dropped,
    Event,
    Failed,
    Finished,
    Instruction,
    KillWorker,
    NotSent,
    Progressed,
    WorkerLost,
)
from gpuudf.executors.wake import Waker

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["LocalRunShell"]


class LocalRunShell(RunShell):
    """One run's IO: worker messages to events, instructions to sends, kills and results.

    Parameters
    ----------
    pool
        The started workers.
    waker
        Woken by ``cancel`` and by whoever stops the run.
    run_id
        The run's number among the executor's runs.
    output
        Forwards what the workers print.
    tasks, steps, on_tile, cancel, grace_s, closed
        As for :class:`~gpuudf.executors.run_shell.RunShell`.
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
        workers = {i: w.array_backend for i, w in pool.live().items()}
        super().__init__(workers, tasks, steps=steps, on_tile=on_tile, cancel=cancel, grace_s=grace_s, closed=closed)
        self.pool = pool
        self.waker = waker
        self.run_id = run_id
        self.output = output
        self.payloads: dict[int, tuple[Any, bytes]] = {}  # id(shared) -> (shared, its pickle), for this run
        self.exit_codes: dict[int, int | None] = {}

    def prepare(self) -> None:
        """A plan that does not pickle fails before any dispatch; a wake-up of an earlier run is not this run's."""
        pickle_shared(self.tasks[0], self.payloads)
        self.waker.drain()

    def wake(self) -> None:
        """Write to the waker the shell waits on."""
        self.waker.wake()

    def carry_out_one(self, instruction: Instruction) -> None:
        """Send a task or a cancellation, or kill a worker."""
        if isinstance(instruction, Dispatch):
            self.send_task(instruction.worker, instruction.task)
        elif isinstance(instruction, CancelWorker):
            if not self.pool.send(instruction.worker, CancelRun(self.run_id)):
                self.lose(instruction.worker)
        else:
            assert isinstance(instruction, KillWorker), instruction
            self.record_exit(instruction.worker, self.pool.kill(instruction.worker))

    def result(self, task: int) -> Any:
        """The task's result, unpickled."""
        answer = self.answers.pop(task)
        assert isinstance(answer, TaskDone)
        return loads_payload(answer.result)

    def kill_now(self, worker: int) -> None:
        """Kill the worker process."""
        self.pool.kill(worker)

    def finish(self) -> None:
        """The run's output is all forwarded."""
        self.output.end_run()

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

    def describe_worker(self, worker: int) -> str:
        """``worker process on DEVICE``."""
        return f"worker process on {self.pool.devices[worker]}"

    def death_note(self, worker: int) -> str:
        """Its exit code."""
        return f"exit code {self.exit_codes.get(worker)}"
