"""The worker processes of a local executor: started, connected, replaced, stopped.

Policy
------
- One slot per device the executor was given; a slot holds a running worker
  or nothing.  Workers start lazily (:meth:`WorkerPool.start`, at the first
  run) and a slot whose worker died or was killed is filled again at the
  next :meth:`WorkerPool.start`, i.e. when the next run starts.
- Workers connect back to one listener (a Unix socket, authenticated with a
  key the pool makes and hands over in the environment), in any order: the
  first thing a worker sends is its process id.
- A worker that does not connect or report ready within ``START_TIMEOUT_S``
  fails the start with :class:`~gpuudf.errors.WorkerError`; no half-started
  worker outlives a failed start.
- Killing is ``SIGKILL`` and reaping; stopping asks first (``Stop``) and
  kills after ``STOP_TIMEOUT_S``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gpuudf.errors import UDFRunCancelled, WorkerError
from gpuudf.executors.messages import Ready, StartFailed, ToWorker
from gpuudf.executors.output import WorkerOutput
from gpuudf.executors.process import (
    START_POLL_S,
    START_TIMEOUT_S,
    WorkerProcess,
    accept_worker,
    array_backend_of,
    kill_process,
    spawn_worker,
    stop_worker,
    stop_workers,
    unpack_exception,
)

if TYPE_CHECKING:
    # the process machinery loads at the first run: `import gpuudf; Context()` stays quick
    import subprocess
    from multiprocessing.connection import Listener

__all__ = ["WorkerPool"]


class WorkerPool:
    """Worker processes, one per device.

    Parameters
    ----------
    devices
        One device name per worker (``"cpu"``, ``"cuda:0"``, ``"sim:0"``).
    output
        Forwards what the workers print.
    """

    def __init__(self, devices: Sequence[str], output: WorkerOutput) -> None:
        self.devices = list(devices)
        self.workers: list[WorkerProcess | None] = [None] * len(self.devices)
        self._output = output
        self._listener: Listener | None = None
        self._authkey = os.urandom(32)

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [w.process.pid for w in self.workers if w is not None]

    def live(self) -> dict[int, WorkerProcess]:
        """The running workers, by slot."""
        return {index: worker for index, worker in enumerate(self.workers) if worker is not None}

    def start(self, should_stop: Callable[[], str | None] = lambda: None) -> None:
        """Start a worker in every slot that has none, or whose worker has exited.

        ``should_stop()`` is asked while the workers start: once it gives a
        reason, the start ends with :class:`~gpuudf.errors.UDFRunCancelled`
        (and no half-started worker).
        """
        missing = [i for i, w in enumerate(self.workers) if w is None or w.process.poll() is not None]
        if not missing:
            return
        from multiprocessing.connection import Listener  # noqa: PLC0415 - see TYPE_CHECKING above

        if self._listener is None:
            self._listener = Listener(family="AF_UNIX", authkey=self._authkey)
        processes = {}
        for index in missing:
            old = self.workers[index]
            if old is not None:
                stop_worker(old)
                self.workers[index] = None
            processes[index] = self._spawn(self.devices[index])
        try:
            self._connect(processes, should_stop)
        except BaseException:
            # no half-started worker may outlive the failure
            for index, process in processes.items():
                kill_process(process)
                worker = self.workers[index]
                if worker is not None:
                    worker.conn.close()
                self.workers[index] = None
            raise

    def send(self, index: int, message: ToWorker) -> bool:
        """Send ``message`` to worker ``index``; ``False`` when its connection is broken."""
        worker = self.workers[index]
        if worker is None:
            return False
        try:
            worker.conn.send(message)
        except (OSError, ValueError):  # ValueError: a connection closed under us
            return False
        return True

    def kill(self, index: int) -> int | None:
        """Kill worker ``index`` and free its slot; its exit code (``None``: the slot was empty)."""
        worker = self.workers[index]
        if worker is None:
            return None
        code = kill_process(worker.process)
        worker.conn.close()
        self.workers[index] = None
        return code

    def reap(self, index: int) -> int | None:
        """A worker found dead (or with a broken connection): its exit code, after making sure it is gone."""
        import subprocess  # noqa: PLC0415

        worker = self.workers[index]
        if worker is None:
            return None
        code: int | None
        try:
            code = worker.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:  # its connection broke but it lingers
            code = kill_process(worker.process)
        worker.conn.close()
        self.workers[index] = None
        return code

    def close(self) -> None:
        """Stop every worker (all asked at once, those not gone within ``STOP_TIMEOUT_S`` killed), and the listener."""
        stop_workers([w for w in self.workers if w is not None])
        self.workers = [None] * len(self.workers)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None

    def _spawn(self, device: str) -> subprocess.Popen[bytes]:
        assert self._listener is not None
        return self._output.watch(spawn_worker(str(self._listener.address), self._authkey, device))

    def _connect(self, processes: dict[int, subprocess.Popen[bytes]], should_stop: Callable[[], str | None]) -> None:
        index_of_pid = {process.pid: index for index, process in processes.items()}
        for _ in processes:
            assert self._listener is not None
            conn = accept_worker(self._listener, processes, should_stop)
            pid = conn.recv()
            index = index_of_pid[pid]
            conn.send(list(sys.path))
            self.workers[index] = WorkerProcess(
                self.devices[index], array_backend_of(self.devices[index]), processes[index], conn
            )
        for index in processes:
            worker = self.workers[index]
            assert worker is not None
            if not _ready_within(worker, should_stop):
                msg = f"worker for {worker.device} did not start within {START_TIMEOUT_S:.0f} s"
                raise WorkerError(msg)
            try:
                message = worker.conn.recv()
            except EOFError:
                msg = f"worker for {worker.device} failed to start (exit code {worker.process.wait()})"
                raise WorkerError(msg) from None
            if isinstance(message, StartFailed):
                raise unpack_exception(message.exception, message.traceback)
            assert isinstance(message, Ready), message


def _ready_within(worker: WorkerProcess, should_stop: Callable[[], str | None]) -> bool:
    """Whether ``worker`` sent its first message within ``START_TIMEOUT_S``; raises when the run is to stop."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + START_TIMEOUT_S
    while not worker.conn.poll(START_POLL_S):
        if (reason := should_stop()) is not None:
            raise UDFRunCancelled(reason)
        if time.monotonic() > deadline:
            return False
    return True
