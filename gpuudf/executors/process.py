"""Worker processes as the local executor's main process sees them, and what crosses to them.

Policy: a worker is a fresh interpreter running :mod:`gpuudf.executors.worker`
(never a fork, never multiprocessing's ``spawn`` of the user's script), in its
own session so that Ctrl-C reaches only the main process.  CPU workers get one
BLAS/OpenMP thread.  Its standard output and error are pipes that
:mod:`gpuudf.executors.output` forwards.  What crosses the connection is
pickled with cloudpickle: a run's shared part once per distinct object,
exceptions with their traceback text.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpuudf.backends import parse_device
from gpuudf.errors import UDFRunCancelled, WorkerError
from gpuudf.executors.executor import Task

if TYPE_CHECKING:
    import subprocess
    from multiprocessing.connection import Connection, Listener

__all__ = [
    "AUTHKEY_ENV",
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "RemoteTraceback",
    "WorkerProcess",
    "accept_worker",
    "array_backend_of",
    "kill_process",
    "loads_payload",
    "pickle_shared",
    "spawn_worker",
    "stop_worker",
    "stop_workers",
    "unpack_exception",
]

#: Environment variable that hands a worker the connection's key (never user configuration).
AUTHKEY_ENV = "GPUUDF_WORKER_AUTHKEY"
#: Seconds a worker may take to start, to answer a cancel, or to stop.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
#: Seconds between two looks at whether a run that is starting its workers is to stop.
START_POLL_S = 0.1
#: Seconds to wait for a killed process to be reaped.
KILL_WAIT_S = 5.0


class RemoteTraceback(Exception):  # noqa: N818 - carries a traceback, not an error of its own
    """The traceback of an exception raised in a worker process, as text."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nTraceback in the worker process:\n{self.text}"


@dataclass
class WorkerProcess:
    """A worker process as the main process holds it: its device, process and connection."""

    device: str
    array_backend: str
    process: subprocess.Popen[bytes]
    conn: Connection
    shared_sent: tuple[int, int] | None = None  # (run id, id of the shared part) it holds


def array_backend_of(device: str) -> str:
    """``numpy`` for the CPU, ``cupy`` for a CUDA (or simulated) device."""
    kind, _ = parse_device(device)
    return "numpy" if kind == "cpu" else "cupy"


def spawn_worker(address: str, authkey: bytes, device: str) -> subprocess.Popen[bytes]:
    """Start a worker process for ``device`` that connects back to ``address``.

    Its standard output and error are pipes: hand the process to
    :meth:`gpuudf.executors.output.WorkerOutput.watch`, which forwards them.
    """
    import subprocess  # noqa: PLC0415 - the process machinery loads at the first run

    env = dict(os.environ)
    env[AUTHKEY_ENV] = authkey.hex()
    if device == "cpu":
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
            env[name] = "1"
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "gpuudf.executors.worker", address, device],
        env=env,
        stdout=subprocess.PIPE,  # forwarded by the main process: a notebook shows it in the cell
        stderr=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C goes to the main process, which cancels the workers
    )


def accept_worker(
    listener: Listener,
    processes: dict[int, subprocess.Popen[bytes]],
    should_stop: Callable[[], str | None] = lambda: None,
) -> Connection:
    """The next worker's connection.

    Raises :class:`WorkerError` if none connects within ``START_TIMEOUT_S``,
    and :class:`UDFRunCancelled` as soon as ``should_stop()`` gives a reason
    (asked every ``START_POLL_S``).
    """
    import time  # noqa: PLC0415

    listener_socket = listener._listener._socket  # type: ignore[attr-defined]  # noqa: SLF001
    listener_socket.settimeout(START_POLL_S)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return listener.accept()
        except TimeoutError:
            if (reason := should_stop()) is not None:
                raise UDFRunCancelled(reason) from None
            if time.monotonic() < deadline:
                continue
            codes = {p.pid: p.poll() for p in processes.values()}
            msg = f"a worker process did not connect within {START_TIMEOUT_S:.0f} s (exit codes by pid: {codes})"
            raise WorkerError(msg) from None
        except OSError as exc:
            codes = {p.pid: p.poll() for p in processes.values()}
            msg = f"a worker process could not connect (exit codes by pid: {codes}): {exc}"
            raise WorkerError(msg) from exc


def stop_worker(worker: WorkerProcess) -> None:
    """Ask a worker to stop; kill it if it has not within ``STOP_TIMEOUT_S``."""
    stop_workers([worker])


def stop_workers(workers: Sequence[WorkerProcess]) -> None:
    """Ask every worker to stop at once; kill those not gone within ``STOP_TIMEOUT_S`` of the asking."""
    import subprocess  # noqa: PLC0415
    import time  # noqa: PLC0415

    from gpuudf.executors.messages import Stop  # noqa: PLC0415 - the messages load at the first run

    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(Stop())
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_process(worker.process)
        worker.conn.close()


def kill_process(process: subprocess.Popen[bytes]) -> int | None:
    """Kill and reap ``process``; its exit code, ``None`` if even that did not end it within ``KILL_WAIT_S``."""
    import subprocess  # noqa: PLC0415

    process.kill()
    try:
        return process.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:  # in uninterruptible sleep (a hung driver): nothing more to do here
        return None


def pickle_shared(task: Task, payloads: dict[int, tuple[Any, bytes]]) -> bytes:
    """The task's class and shared part, pickled once per distinct shared object of a run."""
    shared = task.shared
    entry = payloads.get(id(shared))
    if entry is None:
        import cloudpickle  # noqa: PLC0415 - only runs on worker processes pay for it

        try:
            payload = cloudpickle.dumps((type(task), shared))
        except Exception as exc:
            raise task.pickling_failure(exc) from exc
        # the object is kept with its pickle, so that its id is not reused during the run
        entry = payloads[id(shared)] = (shared, payload)
    return entry[1]


def loads_payload(payload: bytes) -> Any:
    """A worker's result, unpickled."""
    import cloudpickle  # noqa: PLC0415

    return cloudpickle.loads(payload)


def unpack_exception(payload: bytes, text: str) -> BaseException:
    """A worker's exception, with its traceback text as ``__cause__``."""
    import cloudpickle  # noqa: PLC0415

    exc: BaseException = cloudpickle.loads(payload)
    exc.__cause__ = RemoteTraceback(text)
    return exc
