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
import functools
import importlib.util
import itertools
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from gpuudf.backends import detect, parse_device
from gpuudf.errors import BackendUnavailableError
from gpuudf.executors.executor import CancelSignal, Executor, Task, TileCallback
from gpuudf.executors.output import WorkerOutput
from gpuudf.executors.process import STOP_TIMEOUT_S, RemoteTraceback, array_backend_of
from gpuudf.executors.run_turns import RunTurns
from gpuudf.executors.scheduling import QUEUE_DEPTH, default_cpu_workers, min_partitions

if TYPE_CHECKING:
    # a run's machinery (its state, messages, shell and the worker pool) loads at the first run
    from gpuudf.executors.pool import WorkerPool
    from gpuudf.executors.run_shell import RunSteps
    from gpuudf.executors.wake import Waker

__all__ = ["CANCEL_GRACE_S", "LocalExecutor", "RemoteTraceback", "check_workers_asked", "devices_for"]

#: Seconds a worker has to answer a cancellation before it is killed (``LocalExecutor(cancel_grace_s=...)``).
CANCEL_GRACE_S = 10.0

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

    #: Tasks each worker holds at once: its running task and one queued behind it.
    queue_depth = QUEUE_DEPTH

    def __init__(
        self,
        cpus: int | None = None,
        cudas: Sequence[int | str] | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        check_workers_asked(cpus, cudas, type(self).__name__)
        if not cancel_grace_s >= 0:
            msg = f"cancel_grace_s={cancel_grace_s}: give the seconds a worker has to stop, 0 or more"
            raise ValueError(msg)
        self._cpus_asked = cpus
        self._cudas_asked = None if cudas is None else list(cudas)
        self.cancel_grace_s = float(cancel_grace_s)
        self._devices: list[str] | None = None
        self._pool: WorkerPool | None = None
        self._run_ids = itertools.count()
        self._runs = RunTurns(type(self).__name__, lambda: self._stop_timeout_s)
        self._waker: Waker | None = None
        self._output = WorkerOutput()  # what the workers print, in the main process's streams
        _LIVE_EXECUTORS.add(self)

    @property
    def devices(self) -> list[str]:
        """One device name per worker, ``"cpu"`` first; devices are detected on first use."""
        if self._devices is None:
            # detected here, not in __init__: NVML takes time, and Context() should not
            self._devices = devices_for(self._cpus_asked, self._cudas_asked, type(self).__name__)
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

        def make_waker() -> None:
            if self._waker is None:
                from gpuudf.executors.wake import Waker  # noqa: PLC0415

                self._waker = Waker()

        return self._runs.start(functools.partial(self._drive, tasks=tasks, on_tile=on_tile, cancel=cancel), make_waker)

    @property
    def _stop_timeout_s(self) -> float:
        # the grace period, then killing and reaping the workers that did not answer
        return self.cancel_grace_s + STOP_TIMEOUT_S

    def close(self) -> None:
        """Stop the run in progress (its iterator raises ``UDFRunCancelled``), then every worker process."""
        self._runs.close()
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
    def _started_pool(self, should_stop: Callable[[], str | None]) -> WorkerPool:
        from gpuudf.executors.pool import WorkerPool  # noqa: PLC0415 - see TYPE_CHECKING above

        if self._pool is None:
            self._pool = WorkerPool(self.devices, self._output)  # detects the devices on the first run
        self._pool.start(should_stop)
        return self._pool

    def _drive(
        self, steps: RunSteps, *, tasks: Sequence[Task], on_tile: TileCallback | None, cancel: CancelSignal | None
    ) -> Generator[Any, None, None]:
        if not tasks:
            return
        assert self._waker is not None
        from gpuudf.executors.local_run import LocalRunShell  # noqa: PLC0415
        from gpuudf.executors.run_shell import stop_reason  # noqa: PLC0415

        def closed() -> bool:
            return self._runs.closed

        shell = LocalRunShell(
            # while the workers start, before the shell waits on them, the same reasons stop the run
            self._started_pool(functools.partial(stop_reason, steps, closed, cancel)),
            tasks,
            steps=steps,
            on_tile=on_tile,
            cancel=cancel,
            waker=self._waker,
            run_id=next(self._run_ids),
            grace_s=self.cancel_grace_s,
            output=self._output,
            closed=closed,
        )
        yield from shell.drive()


def check_workers_asked(cpus: int | None, cudas: Sequence[int | str] | None, executor: str) -> None:
    """Refuse worker counts and devices no executor can start (``ValueError``, naming ``executor``)."""
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
            msg = f"{executor} needs at least one worker, got cpus=0 and cudas=[]"
            raise ValueError(msg)


def devices_for(cpus: int | None, cudas: Sequence[int | str] | None, executor: str) -> list[str]:
    """One device name per worker, ``"cpu"`` first, for the workers asked (``None``: the machine's).

    By default every GPU :func:`gpuudf.detect` finds gets a worker (when CuPy
    is installed), and every core left a CPU worker.

    Raises
    ------
    BackendUnavailableError
        For CUDA devices asked for without CuPy installed.
    ValueError
        When that leaves no worker.
    """
    cupy_installed = importlib.util.find_spec("cupy") is not None  # found, not imported
    inventory = detect()
    if cudas is None:
        # GPUs without CuPy are not usable: a CPU-only run is what the user gets
        gpus = inventory.gpus if cupy_installed else ()
        cuda_devices = [f"cuda:{gpu.index}" for gpu in gpus]
    else:
        cuda_devices = [f"cuda:{c}" if isinstance(c, int) else c for c in cudas]
        if not cupy_installed and any(parse_device(d)[0] == "cuda" for d in cuda_devices):
            msg = (
                f"cudas={list(cudas)}: CuPy is not installed "
                "(install gpuudf[cuda12] or gpuudf[cuda13]), so no CUDA worker can start"
            )
            raise BackendUnavailableError(msg)
    if cpus is None:
        cpus = default_cpu_workers(inventory.cpu_cores, len(cuda_devices))
    if cpus == 0 and not cuda_devices:
        msg = f"{executor} found no GPU, and cpus=0 leaves it without workers"
        raise ValueError(msg)
    return ["cpu"] * cpus + cuda_devices


@atexit.register
def _close_all() -> None:
    for executor in list(_LIVE_EXECUTORS):
        with contextlib.suppress(Exception):
            executor.close()
