"""The local executor: the device scheduler with CPU and CUDA worker processes.

Policy
------
- Workers are long-lived processes, each a fresh interpreter running
  :mod:`gpuudf.executors.worker` (never a fork, never multiprocessing's
  ``spawn``, so a script without a ``__main__`` guard works), started lazily
  on the first run and reused by later runs (:mod:`gpuudf.executors.pool`).
  One CPU worker per core given (single-threaded BLAS), one CUDA worker per
  GPU.
- What to send where, and how a run ends, is decided by the run's
  :class:`~gpuudf.executors.run_state.RunState`; this module is its IO
  shell: it turns worker messages into events and carries out the
  instructions it gets back.
- Each run's shared part (the plan: UDF classes and parameters, the dataset
  handle) is pickled once with cloudpickle and sent once to each worker that
  gets a task of the run; a task itself is only its partition.  Tasks are
  read from the run's list when dispatched: one whose shared part is another
  object than the one its worker last got (a parameter update replaced the
  tasks) sends that one first, pickled once for all workers.
- The main process never blocks a worker: results are taken as they come
  and the caller merges between them while workers go on with queued tasks.
- **Cancellation always lands.**  While the shell waits for workers it also
  waits on a wake-up socket, which a :class:`~gpuudf.runner.CancelHandle`
  (or :meth:`LocalExecutor.close` from another thread) writes to: a
  cancellation is seen at once, whatever the workers do, and sent to every
  busy worker, which stops at its next tile.  A worker that has not answered
  within ``cancel_grace_s`` (default :data:`CANCEL_GRACE_S`) is killed; its
  slot gets a fresh worker when the next run starts.  The caller gets
  :class:`~gpuudf.errors.UDFRunCancelled`.  The same stop follows an error,
  a raising ``on_tile``, a closed iterator, Ctrl-C (a second Ctrl-C while
  waiting kills the busy workers at once) and another run taking over.
- **Closing** (:meth:`LocalExecutor.close`) stops the run in progress
  first; its iterator then raises ``UDFRunCancelled`` saying the executor
  was closed, however far it was consumed.
- A worker that dies fails the run with :class:`~gpuudf.errors.WorkerError`
  naming its partition; it is replaced when the next run starts.  Workers
  end themselves when this process dies (:mod:`gpuudf.executors.worker`).
- What workers print reaches this process's own streams (:mod:`gpuudf.executors.output`).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import inspect
import itertools
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from gpuudf.backends import detect, parse_device
from gpuudf.errors import BackendUnavailableError, UDFRunCancelled, WorkerError
from gpuudf.executors.executor import CancelSignal, Executor, Task, TileCallback
from gpuudf.executors.messages import (
    CancelRun,
    RunTask,
    StartRun,
    TaskDone,
    TaskDropped,
    TaskFailed,
    TileProgress,
)
from gpuudf.executors.output import WorkerOutput
from gpuudf.executors.pool import WorkerPool
from gpuudf.executors.process import RemoteTraceback, array_backend_of, loads_payload, pickle_shared, unpack_exception
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
    Progressed,
    RunState,
    WorkerLost,
)
from gpuudf.executors.scheduling import default_cpu_workers, min_partitions
from gpuudf.executors.wake import Waker

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["CANCEL_GRACE_S", "LocalExecutor", "RemoteTraceback"]

#: Seconds a worker has to answer a cancellation before it is killed (``LocalExecutor(cancel_grace_s=...)``).
CANCEL_GRACE_S = 10.0
#: Seconds between liveness checks of the workers while the main process waits.
LIVENESS_POLL_S = 0.5

_TAKEN_OVER = "another run on the same Context took its workers over"
_CLOSED = "the Context was closed while the run was going on"

_LIVE_EXECUTORS: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()


class LocalExecutor(Executor):
    """CPU and CUDA worker processes on this machine, fed by the device scheduler.

    Parameters
    ----------
    cpus
        Number of CPU workers; by default one per core, less one per CUDA
        worker.  ``0`` for none.
    cudas
        GPUs to use, as indices (``[0, 1]``) or device names (``"cuda:0"``,
        ``"sim:0"`` for the simulated device); by default every GPU
        :func:`gpuudf.detect` finds.
    cancel_grace_s
        Seconds a worker has to stop after a cancellation (it stops at its
        next tile) before it is killed and replaced.
    """

    def __init__(
        self,
        cpus: int | None = None,
        cudas: Sequence[int | str] | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        if cpus is not None and cpus < 0:
            msg = f"cpus={cpus}: give a number of CPU workers, 0 or more"
            raise ValueError(msg)
        if cudas is not None:
            for device in cudas:
                name = f"cuda:{device}" if isinstance(device, int) else device
                if parse_device(name)[0] == "cpu":
                    msg = f"cudas={list(cudas)} names the CPU; give CPU workers with cpus="
                    raise ValueError(msg)
            if cpus == 0 and not cudas:
                msg = "LocalExecutor needs at least one worker, got cpus=0 and cudas=[]"
                raise ValueError(msg)
        if not cancel_grace_s >= 0:
            msg = f"cancel_grace_s={cancel_grace_s}: give the seconds a worker has to stop, 0 or more"
            raise ValueError(msg)
        self._cpus_asked = cpus
        self._cudas_asked = None if cudas is None else list(cudas)
        self.cancel_grace_s = float(cancel_grace_s)
        self._devices: list[str] | None = None
        self._pool: WorkerPool | None = None
        self._run_ids = itertools.count()
        self._closed = False
        self._active: _RunSteps | None = None
        self._waker: Waker | None = None
        self._output = WorkerOutput()  # what the workers print, in the main process's streams
        _LIVE_EXECUTORS.add(self)

    @property
    def devices(self) -> list[str]:
        """One device name per worker, ``"cpu"`` first; devices are detected on first use."""
        if self._devices is None:
            # detected here, not in __init__: NVML takes time, and Context() should not
            cupy_installed = importlib.util.find_spec("cupy") is not None  # found, not imported
            inventory = detect()
            if self._cudas_asked is None:
                # GPUs without CuPy are not usable: a CPU-only run is what the user gets
                gpus = inventory.gpus if cupy_installed else ()
                cuda_devices = [f"cuda:{gpu.index}" for gpu in gpus]
            else:
                cuda_devices = [f"cuda:{c}" if isinstance(c, int) else c for c in self._cudas_asked]
                if not cupy_installed and any(parse_device(d)[0] == "cuda" for d in cuda_devices):
                    msg = (
                        f"cudas={self._cudas_asked}: CuPy is not installed "
                        "(install gpuudf[cuda12] or gpuudf[cuda13]), so no CUDA worker can start"
                    )
                    raise BackendUnavailableError(msg)
            cpus = self._cpus_asked
            if cpus is None:
                cpus = default_cpu_workers(inventory.cpu_cores, len(cuda_devices))
            if cpus == 0 and not cuda_devices:
                msg = "LocalExecutor found no GPU, and cpus=0 leaves it without workers"
                raise ValueError(msg)
            self._devices = ["cpu"] * cpus + cuda_devices
        return self._devices

    # -- the Executor interface --------------------------------------------------
    def array_backends(self) -> tuple[str, ...]:
        """``numpy`` with CPU workers, ``cupy`` with CUDA workers."""
        return tuple(dict.fromkeys(array_backend_of(d) for d in self.devices))

    def num_workers(self) -> int:
        """Partitions to aim for at least, from the worker mix."""
        cpus = sum(1 for d in self.devices if d == "cpu")
        return min_partitions(cpus, len(self.devices) - cpus)

    def run_tasks(
        self, tasks: Sequence[Task], on_tile: TileCallback | None = None, cancel: CancelSignal | None = None
    ) -> Iterator[Any]:
        """Run ``tasks`` on the workers, yielding results in completion order.

        One run at a time: a previous run that has not finished is stopped
        first, even in the middle of a step in another thread (its consumer
        gets :class:`~gpuudf.errors.UDFRunCancelled`).
        """
        if self._closed:
            msg = "this LocalExecutor was closed"
            raise RuntimeError(msg)
        if self._waker is None:
            self._waker = Waker()
        previous, self._active = self._active, None
        if previous is not None:
            previous.stop(_TAKEN_OVER, self.cancel_grace_s + LIVENESS_POLL_S)
        steps = _RunSteps()
        steps.start(self._drive(steps, tasks, on_tile, cancel))
        self._active = steps
        return steps

    def close(self) -> None:
        """Stop the run in progress (its iterator raises ``UDFRunCancelled``), then every worker process."""
        self._closed = True
        active, self._active = self._active, None
        if active is not None:
            with contextlib.suppress(RuntimeError):  # it did not stop in time: its workers are stopped below
                active.stop(_CLOSED, self.cancel_grace_s + LIVENESS_POLL_S)
        if self._pool is not None:
            self._pool.close()
        self._output.close()
        if self._waker is not None:
            self._waker.close()

    def __repr__(self) -> str:
        if self._devices is None:
            return f"LocalExecutor(cpus={self._cpus_asked}, cudas={self._cudas_asked}, devices not yet detected)"
        cpus = sum(1 for d in self.devices if d == "cpu")
        cudas = [d for d in self.devices if d != "cpu"]
        return f"LocalExecutor(cpus={cpus}, cudas={cudas})"

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        return [] if self._pool is None else self._pool.pids

    # -- the IO shell of a run ---------------------------------------------------------
    def _started_pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self.devices, self._output)  # detects the devices on the first run
        self._pool.start()
        return self._pool

    def _drive(
        self, steps: _RunSteps, tasks: Sequence[Task], on_tile: TileCallback | None, cancel: CancelSignal | None
    ) -> Generator[Any, None, None]:
        if not tasks:
            return
        pool = self._started_pool()
        shell = _Shell(self, pool, steps=steps, tasks=tasks, on_tile=on_tile, cancel=cancel)
        yield from shell.drive()


class _RunSteps(Iterator[Any]):
    """A run's results as the caller iterates them; raises ``UDFRunCancelled`` once the run was stopped."""

    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self._generator: Generator[Any, None, None] | None = None
        self.wake: Callable[[], None] = lambda: None

    def start(self, generator: Generator[Any, None, None]) -> None:
        self._generator = generator

    def __next__(self) -> Any:
        assert self._generator is not None
        if self.stop_reason is not None and inspect.getgeneratorstate(self._generator) == inspect.GEN_CLOSED:
            raise UDFRunCancelled(self.stop_reason)
        return next(self._generator)

    def close(self) -> None:
        assert self._generator is not None
        self._generator.close()

    def stop(self, reason: str, timeout_s: float) -> None:
        """End the run for ``reason``: at once if it is between steps, else by waking the thread that runs it."""
        assert self._generator is not None
        if inspect.getgeneratorstate(self._generator) == inspect.GEN_CLOSED:
            return  # finished, or stopped already: nothing to stop, and its consumer saw its end
        self.stop_reason = reason
        self.wake()
        deadline = time.monotonic() + timeout_s
        while inspect.getgeneratorstate(self._generator) != inspect.GEN_CLOSED:
            try:
                self._generator.close()
            except ValueError:  # "generator already executing": a step in another thread, which was woken
                if time.monotonic() > deadline:
                    msg = f"a UDF run in another thread did not stop within {timeout_s:.0f} s"
                    raise RuntimeError(msg) from None
                time.sleep(0.001)


class _Shell:
    """One run's IO: messages to events, instructions to sends, kills and results."""

    def __init__(
        self,
        executor: LocalExecutor,
        pool: WorkerPool,
        *,
        steps: _RunSteps,
        tasks: Sequence[Task],
        on_tile: TileCallback | None,
        cancel: CancelSignal | None,
    ) -> None:
        assert executor._waker is not None  # noqa: SLF001 - the shell is the executor's own
        self.executor = executor
        self.pool = pool
        self.steps = steps
        self.tasks = tasks
        self.on_tile = on_tile
        self.cancel = cancel
        self.waker = executor._waker  # noqa: SLF001
        self.run_id = next(executor._run_ids)  # noqa: SLF001
        self.payloads: dict[int, tuple[Any, bytes]] = {}  # id(shared) -> (shared, its pickle), for this run
        self.answers: dict[int, TaskDone | TaskFailed] = {}
        self.exit_codes: dict[int, int | None] = {}
        self.state = RunState({i: w.array_backend for i, w in pool.live().items()}, [tuple(t.backends) for t in tasks])

    def stop_reason(self) -> str | None:
        if self.steps.stop_reason is not None:
            return self.steps.stop_reason
        if self.executor._closed:  # noqa: SLF001
            return _CLOSED
        if self.cancel is not None and self.cancel.cancelled:
            return "the run was cancelled"
        return None

    def drive(self) -> Generator[Any, None, None]:
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
            self.executor._output.end_run()  # noqa: SLF001

    def wait_for_answers(self) -> None:
        """Until the state is settled: answers to the cancellation, then kills after the grace period."""
        deadline = time.monotonic() + self.executor.cancel_grace_s
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
                self.exit_codes[instruction.worker] = self.pool.kill(instruction.worker)
            else:  # pragma: no cover - Deliver is handled where results are yielded
                msg = f"not an instruction to carry out here: {instruction!r}"
                raise TypeError(msg)

    def send_task(self, index: int, task_index: int) -> None:
        worker = self.pool.workers[index]
        task = self.tasks[task_index]  # read now: a parameter update may have replaced it
        sent = worker is not None
        if worker is not None and worker.shared_sent != (self.run_id, id(task.shared)):
            sent = self.pool.send(index, StartRun(self.run_id, pickle_shared(task, self.payloads)))
            worker.shared_sent = (self.run_id, id(task.shared))
        if not (sent and self.pool.send(index, RunTask(task_index, self.run_id, task.own))):
            self.lose(index)

    def lose(self, index: int) -> None:
        self.exit_codes[index] = self.pool.reap(index)
        self.carry_out(self.state.handle(WorkerLost(index)))

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
            if self.executor._closed:  # noqa: SLF001
                raise UDFRunCancelled(_CLOSED) from None
            raise
        if self.waker.receiver in ready:
            self.waker.drain()
        if not ready:
            for index in conns.values():
                worker = self.pool.workers[index]
                if worker is not None and worker.process.poll() is not None:
                    self.exit_codes[index] = self.pool.reap(index)
                    yield WorkerLost(index)
            return
        for conn in ready:
            if conn is self.waker.receiver:
                continue
            yield from self.received(cast("Connection", conn), conns[conn])

    def received(self, conn: Connection, index: int) -> Iterator[Event]:
        while True:  # everything this worker has sent so far, at least one message
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self.exit_codes[index] = self.pool.reap(index)
                yield WorkerLost(index)
                return
            if isinstance(message, TileProgress):
                yield Progressed(index, message.task_id, message.frames)
            else:
                worker = self.pool.workers[index]
                if worker is not None:
                    self.executor._output.drain(worker.process.pid)  # noqa: SLF001 - a task's lines first
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
            return UDFRunCancelled(self.stop_reason() or "the run was cancelled")
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


@atexit.register
def _close_all() -> None:
    for executor in list(_LIVE_EXECUTORS):
        with contextlib.suppress(Exception):
            executor.close()
