"""The local executor: the device scheduler with CPU and CUDA worker processes.

Policy
------
- Workers are long-lived processes, each a fresh interpreter running
  :mod:`gpuudf.executors.worker` (never a fork, never multiprocessing's
  ``spawn``, so a script without a ``__main__`` guard works), started lazily
  on the first run and reused by later runs.  One CPU worker per core given
  (single-threaded BLAS), one CUDA worker per GPU.
- Each run's shared part (the plan: UDF classes and parameters, the dataset
  handle) is pickled once with cloudpickle and sent once to each worker that
  gets a task of the run; a task itself is only its partition.  Tasks are
  read from the run's list when dispatched: one whose shared part is another
  object than the one its worker last got (a parameter update replaced the
  tasks) sends that one first, pickled once for all workers.
- Scheduling follows :mod:`gpuudf.executors.scheduling` (pull-based,
  routed by array backend, queue depth two, CPU fallback after device OOM).
- The main process never blocks a worker: results are taken as they come
  and the caller merges between them while workers go on with queued tasks.
- Cancellation (a raising ``on_tile``, a closed generator, an error) sends
  ``cancel`` to every busy worker and waits for each to answer; a worker that
  does not answer within ``STOP_TIMEOUT_S`` is killed and replaced.
- A worker that dies fails the run with :class:`~gpuudf.errors.WorkerError`
  naming its partition; it is replaced before the next run.
- What workers print reaches this process's own streams (:mod:`gpuudf.executors.output`).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib.util
import itertools
import os
import sys
import weakref
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from gpuudf.backends import detect, parse_device
from gpuudf.errors import BackendUnavailableError, DeviceOutOfMemoryError, WorkerError
from gpuudf.executors.executor import Executor, Task, TileCallback
from gpuudf.executors.output import WorkerOutput
from gpuudf.executors.process import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    RemoteTraceback,
    WorkerProcess,
    accept_worker,
    array_backend_of,
    loads_payload,
    pickle_shared,
    spawn_worker,
    stop_worker,
    unpack_exception,
)
from gpuudf.executors.scheduling import (
    QUEUE_DEPTH,
    PendingTask,
    default_cpu_workers,
    min_partitions,
    pick_task,
    worker_accepts,
    worth_taking,
)

if TYPE_CHECKING:
    # the process machinery loads at the first run: `import gpuudf; Context()` stays quick
    import subprocess
    from multiprocessing.connection import Connection, Listener

__all__ = ["LocalExecutor", "RemoteTraceback"]

#: Seconds between liveness checks of the workers while the main process waits.
LIVENESS_POLL_S = 0.5

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
    """

    def __init__(self, cpus: int | None = None, cudas: Sequence[int | str] | None = None) -> None:
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
        self._cpus_asked = cpus
        self._cudas_asked = None if cudas is None else list(cudas)
        self._devices: list[str] | None = None
        self._workers: list[WorkerProcess | None] = []
        self._listener: Listener | None = None
        self._authkey = os.urandom(32)
        self._run_ids = itertools.count()
        self._closed = False
        self._active: weakref.ref[Generator[Any, None, None]] | None = None
        self._task_times: dict[int, tuple[float, int]] = {}  # worker -> (seconds, tasks) this run
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
            self._workers = [None] * len(self._devices)
        return self._devices

    # -- the Executor interface --------------------------------------------------
    def array_backends(self) -> tuple[str, ...]:
        """``numpy`` with CPU workers, ``cupy`` with CUDA workers."""
        return tuple(dict.fromkeys(array_backend_of(d) for d in self.devices))

    def num_workers(self) -> int:
        """Partitions to aim for at least, from the worker mix."""
        cpus = sum(1 for d in self.devices if d == "cpu")
        return min_partitions(cpus, len(self.devices) - cpus)

    def run_tasks(self, tasks: Sequence[Task], on_tile: TileCallback | None = None) -> Iterator[Any]:
        """Run ``tasks`` on the workers, yielding results in completion order.

        One run at a time: a previous run that has not finished is stopped
        first (its consumer gets :class:`~gpuudf.errors.UDFRunCancelled`).  If
        it is in the middle of a step in another thread (or being closed
        there), this waits for that step; after ``STOP_TIMEOUT_S`` it gives up
        with ``RuntimeError``.
        """
        import inspect  # noqa: PLC0415
        import time  # noqa: PLC0415

        deadline = time.monotonic() + STOP_TIMEOUT_S
        previous = self._active() if self._active is not None else None
        while previous is not None and inspect.getgeneratorstate(previous) != inspect.GEN_CLOSED:
            try:
                previous.close()
            except ValueError:  # "generator already executing": a step in another thread
                if time.monotonic() > deadline:
                    msg = (
                        "this LocalExecutor is busy with another UDF run in another thread: "
                        "runs on one Context go one at a time"
                    )
                    raise RuntimeError(msg) from None
                time.sleep(0.001)
        steps = self._run_tasks(tasks, on_tile)
        self._active = weakref.ref(steps)
        return steps

    def _run_tasks(self, tasks: Sequence[Task], on_tile: TileCallback | None) -> Generator[Any, None, None]:
        if self._closed:
            msg = "this LocalExecutor was closed"
            raise RuntimeError(msg)
        if not tasks:
            return
        self._start_workers()
        run_id = next(self._run_ids)
        self._task_times = {}  # a worker's pace counts within one run only
        payloads: dict[int, tuple[Any, bytes]] = {}  # id(shared) -> (shared, its pickle), for this run
        pickle_shared(tasks[0], payloads)  # a plan that does not pickle fails before any dispatch
        pending = collections.deque(PendingTask(index=i, backends=tuple(t.backends)) for i, t in enumerate(tasks))
        running: dict[int, int] = {}  # task index -> worker index
        reported: dict[int, int] = {}  # task index -> frames reported by tile messages
        remaining = len(tasks)
        try:
            while remaining:
                self._assign(tasks, pending, running, run_id, payloads)
                if not running:
                    msg = "no worker can run the remaining tasks (their array backends are not offered)"
                    raise WorkerError(msg)
                for worker_index, message in self._receive(running, tasks):
                    kind, task_index = message[0], message[1]
                    if kind == "tile":
                        reported[task_index] = reported.get(task_index, 0) + message[2]
                        if on_tile is not None:
                            on_tile(message[2])
                        continue
                    self._finish(worker_index, task_index, running)
                    if kind == "result":
                        remaining -= 1
                        result = loads_payload(message[2])
                        total_s, count = self._task_times.get(worker_index, (0.0, 0))
                        self._task_times[worker_index] = (total_s + message[4], count + 1)
                        if on_tile is not None and message[3]:
                            on_tile(message[3])
                        yield result
                    elif kind == "error":
                        exc = unpack_exception(message[2], message[3])
                        if isinstance(exc, DeviceOutOfMemoryError) and self._cpu_can_take(tasks[task_index]):
                            pending.appendleft(
                                PendingTask(task_index, tuple(tasks[task_index].backends), cpu_only=True)
                            )
                            if on_tile is not None and reported.get(task_index):
                                on_tile(-reported.pop(task_index))  # the CPU worker counts them again
                            continue
                        raise exc
                    else:  # "cancelled" by a worker without our asking
                        msg = f"worker {self.devices[worker_index]} cancelled partition task {task_index}"
                        raise WorkerError(msg)
        finally:
            if running:
                self._cancel(run_id, running)
            self._output.end_run()

    def close(self) -> None:
        """Stop every worker process."""
        self._closed = True
        for index, worker in enumerate(self._workers):
            if worker is not None:
                stop_worker(worker)
                self._workers[index] = None
        self._output.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __repr__(self) -> str:
        if self._devices is None:
            return f"LocalExecutor(cpus={self._cpus_asked}, cudas={self._cudas_asked}, devices not yet detected)"
        cpus = sum(1 for d in self.devices if d == "cpu")
        cudas = [d for d in self.devices if d != "cpu"]
        return f"LocalExecutor(cpus={cpus}, cudas={cudas})"

    # -- workers -------------------------------------------------------------------
    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        return [w.process.pid for w in self._workers if w is not None]

    def _start_workers(self) -> None:
        devices = self.devices  # detects them on the first run
        missing = [i for i in range(len(devices)) if (w := self._workers[i]) is None or w.process.poll() is not None]
        if not missing:
            return
        from multiprocessing.connection import Listener  # noqa: PLC0415 - see TYPE_CHECKING above

        if self._listener is None:
            self._listener = Listener(family="AF_UNIX", authkey=self._authkey)
        processes = {}
        for index in missing:
            old = self._workers[index]
            if old is not None:
                stop_worker(old)
                self._workers[index] = None
            processes[index] = self._spawn(self.devices[index])
        try:
            self._connect(processes)
        except BaseException:
            # no half-started worker may outlive the failure
            for index, process in processes.items():
                process.kill()
                process.wait()
                worker = self._workers[index]
                if worker is not None:
                    worker.conn.close()
                self._workers[index] = None
            raise

    def _connect(self, processes: dict[int, subprocess.Popen[bytes]]) -> None:
        index_of_pid = {process.pid: index for index, process in processes.items()}
        for _ in processes:
            assert self._listener is not None
            conn = accept_worker(self._listener, processes)
            pid = conn.recv()
            index = index_of_pid[pid]
            conn.send(list(sys.path))
            self._workers[index] = WorkerProcess(
                self.devices[index], array_backend_of(self.devices[index]), processes[index], conn
            )
        for index in processes:
            worker = self._workers[index]
            assert worker is not None
            if not worker.conn.poll(START_TIMEOUT_S):
                msg = f"worker for {worker.device} did not start within {START_TIMEOUT_S:.0f} s"
                raise WorkerError(msg)
            try:
                message = worker.conn.recv()  # ("ready", description) or ("failed", ...)
            except EOFError:
                msg = f"worker for {worker.device} failed to start (exit code {worker.process.wait()})"
                raise WorkerError(msg) from None
            if message[0] == "failed":
                raise unpack_exception(message[1], message[2])

    def _spawn(self, device: str) -> subprocess.Popen[bytes]:
        assert self._listener is not None
        return self._output.watch(spawn_worker(str(self._listener.address), self._authkey, device))

    def _kill(self, index: int) -> None:
        worker = self._workers[index]
        if worker is not None:
            worker.process.kill()
            worker.process.wait()
            worker.conn.close()
            self._workers[index] = None

    # -- scheduling ----------------------------------------------------------------
    def _cpu_can_take(self, task: Task) -> bool:
        return "numpy" in task.backends and "cpu" in self.devices

    def _assign(
        self,
        tasks: Sequence[Task],
        pending: collections.deque[PendingTask],
        running: dict[int, int],
        run_id: int,
        payloads: dict[int, tuple[Any, bytes]],
    ) -> None:
        progress = True
        while progress and pending:
            progress = False
            for index, worker in enumerate(self._workers):
                if worker is None or len(worker.queued) >= QUEUE_DEPTH or not pending:
                    continue
                position = pick_task(worker.array_backend, list(pending))
                if position is None:
                    continue
                chosen = pending[position]
                if not self._worth_taking(index, chosen, pending):
                    continue
                del pending[position]
                task = tasks[chosen.index]  # read now: a parameter update may have replaced it
                try:
                    if worker.shared_sent != (run_id, id(task.shared)):
                        worker.conn.send(("run", run_id, pickle_shared(task, payloads)))
                        worker.shared_sent = (run_id, id(task.shared))
                    worker.conn.send(("task", chosen.index, run_id, task.own))
                except OSError:
                    self._check_alive({index}, running, tasks, dead=True)  # raises WorkerError
                worker.queued.append(chosen.index)
                running[chosen.index] = index
                progress = True

    def _mean_task_s(self, index: int) -> float | None:
        total_s, count = self._task_times.get(index, (0.0, 0))
        return total_s / count if count else None

    def _worth_taking(self, index: int, chosen: PendingTask, pending: collections.deque[PendingTask]) -> bool:
        worker = self._workers[index]
        assert worker is not None
        own = self._mean_task_s(index)
        if own is None:
            return True
        faster = []
        faster_queued = 0
        for other_index, other in enumerate(self._workers):
            other_s = self._mean_task_s(other_index)
            if other is None or other_index == index or other_s is None or other_s >= own:
                continue
            if worker_accepts(other.array_backend, chosen):
                faster.append(other_s)
                faster_queued += len(other.queued)
        takeable = sum(1 for task in pending if worker_accepts(worker.array_backend, task))
        return worth_taking(own, len(worker.queued), faster, takeable, faster_queued)

    def _finish(self, worker_index: int, task_index: int, running: dict[int, int]) -> None:
        running.pop(task_index, None)
        worker = self._workers[worker_index]
        if worker is not None and task_index in worker.queued:
            worker.queued.remove(task_index)
            self._output.drain(worker.process.pid)  # the task's lines come before its answer

    def _receive(self, running: dict[int, int], tasks: Sequence[Task]) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """Messages from busy workers; raises WorkerError when one of them died."""
        busy = set(running.values())
        from multiprocessing.connection import wait  # noqa: PLC0415

        conns: dict[Connection, int] = {}
        for index in busy:
            worker = self._workers[index]
            assert worker is not None
            conns[worker.conn] = index
        while True:
            ready = cast("list[Connection]", wait(list(conns), timeout=LIVENESS_POLL_S))
            if ready:
                break
            self._check_alive(busy, running, tasks)
        for conn in ready:
            index = conns[conn]
            while True:  # everything this worker has sent so far, at least one message
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._check_alive({index}, running, tasks, dead=True)
                    raise  # pragma: no cover - _check_alive raised
                yield index, message
                if not conn.poll():
                    break

    def _check_alive(
        self, indices: set[int], running: dict[int, int], tasks: Sequence[Task], dead: bool = False
    ) -> None:
        for index in indices:
            worker = self._workers[index]
            if worker is None:
                continue
            if dead or worker.process.poll() is not None:
                import subprocess  # noqa: PLC0415

                task_index = worker.queued[0] if worker.queued else None
                try:
                    code = worker.process.wait(timeout=1.0)
                except subprocess.TimeoutExpired:  # its connection broke but it lingers
                    worker.process.kill()
                    code = worker.process.wait()
                for queued in worker.queued:
                    running.pop(queued, None)
                self._workers[index] = None
                worker.conn.close()
                partition = tasks[task_index].own if task_index is not None else "no task"
                msg = f"the worker process on {worker.device} died (exit code {code}) while processing {partition}"
                cause = tasks[task_index].failure_cause() if task_index is not None else None
                if cause is not None:
                    raise cause from WorkerError(msg)
                raise WorkerError(msg)

    def _cancel(self, run_id: int, running: dict[int, int]) -> None:
        """Tell busy workers to drop the run; wait until each has answered for its tasks."""
        from multiprocessing.connection import wait  # noqa: PLC0415

        waiting: dict[Connection, int] = {}
        for index in set(running.values()):
            worker = self._workers[index]
            if worker is None:
                continue
            try:
                worker.conn.send(("cancel", run_id))
            except OSError:
                self._kill(index)
                continue
            waiting[worker.conn] = index
        outstanding = {index: len(worker.queued) for index in waiting.values() if (worker := self._workers[index])}
        while waiting:
            ready = cast("list[Connection]", wait(list(waiting), timeout=STOP_TIMEOUT_S))
            if not ready:
                for index in waiting.values():
                    self._kill(index)
                break
            for conn in ready:
                index = waiting[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._kill(index)
                    del waiting[conn]
                    continue
                if message[0] in ("result", "error", "cancelled"):
                    outstanding[index] -= 1
                    worker = self._workers[index]
                    if worker is not None and message[1] in worker.queued:
                        worker.queued.remove(message[1])
                    if outstanding[index] <= 0:
                        del waiting[conn]
        running.clear()


@atexit.register
def _close_all() -> None:
    for executor in list(_LIVE_EXECUTORS):
        with contextlib.suppress(Exception):
            executor.close()
