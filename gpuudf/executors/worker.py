"""A worker process of the local executor: one device, tasks in, results out.

Started as ``python -m gpuudf.executors.worker ADDRESS DEVICE`` by
:class:`~gpuudf.executors.local.LocalExecutor`, never by forking or by
multiprocessing's ``spawn`` (which would re-run the user's script).

The messages it exchanges with the main process are those of
:mod:`gpuudf.executors.messages`.

Output: the worker's standard output and error are pipes to the main
process, not part of the protocol; :mod:`gpuudf.executors.output` forwards
them.  Both are line-buffered, and flushed before each answer to a task
(``result``, ``error``, ``cancelled``), so a task's lines are in the pipes
before its answer is sent.

Policy
------
- A reader thread takes every message from the main process as it comes,
  so the main process never waits on a send while a UDF runs (a large plan
  and a large result would otherwise block both ends).  A cancellation is
  marked by that thread and noticed by the task at its next tile boundary;
  queued tasks of a cancelled run are answered
  :class:`~gpuudf.executors.messages.TaskDropped` without running.  A UDF
  that never finishes its tile is the main process's to kill.
- A worker never outlives the main process: a watchdog thread checks every
  :data:`PARENT_POLL_S` that the process that started it is still its
  parent, also while a UDF runs; when it is not, the worker lets the task
  classes of its runs remove what that process left (``clean_up_after``:
  its datasets' frames in shared memory) and ends at once.
- What a process needs for a run's data is the task's to say
  (``enter_worker``, when a plan arrives): the worker knows nothing of
  datasets.
- The worker's device is chosen before CuPy is imported, and CPU workers run
  BLAS single-threaded.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from typing import Any

from gpuudf.executors.messages import (
    CancelRun,
    Ready,
    RunTask,
    StartFailed,
    StartRun,
    Stop,
    TaskDone,
    TaskDropped,
    TaskFailed,
    TileProgress,
    ToWorker,
)

__all__ = [
    "PARENT_POLL_S",
    "PROGRESS_INTERVAL_S",
    "clean_up_if_orphaned",
    "flush_output",
    "line_buffer_output",
    "main",
    "pack_exception",
    "watch_parent",
]

#: Least time between two progress messages of a worker.
PROGRESS_INTERVAL_S = 0.05
#: Seconds between two checks of the watchdog that the main process lives.
PARENT_POLL_S = 0.1


def pack_exception(exc: BaseException) -> bytes:
    """The exception, pickled with cloudpickle; a RuntimeError stand-in if it does not pickle."""
    import cloudpickle  # noqa: PLC0415

    try:
        payload: bytes = cloudpickle.dumps(exc)
        cloudpickle.loads(payload)
    except Exception:  # noqa: BLE001 - an exception that does not travel still gets its message home
        return cloudpickle.dumps(RuntimeError(f"{type(exc).__qualname__}: {exc}"))  # type: ignore[no-any-return]
    return payload


def line_buffer_output() -> None:
    """Make ``print`` reach the pipes to the main process line by line, not in blocks of 8 KiB."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # a TextIOWrapper; anything else is left as it is
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def flush_output() -> None:
    """Hand what the worker printed to the pipes, before a task's answer follows it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a UDF may have replaced or closed the stream
            stream.flush()


def watch_parent(on_orphaned: Callable[[int], None], poll_s: float = PARENT_POLL_S) -> threading.Thread:
    """Start the watchdog: when this process's parent is gone, call ``on_orphaned(parent pid)`` and end the process."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        with contextlib.suppress(Exception):  # nothing may keep an orphan alive
            on_orphaned(parent)
        os._exit(1)

    thread = threading.Thread(target=watch, name="gpuudf-parent-watchdog", daemon=True)
    thread.start()
    return thread


def clean_up_if_orphaned(parent: int, clean_up_after: Callable[[int], None], wait_s: float = 2.0) -> None:
    """After a broken connection: when ``parent`` is gone (this process was reparented), clean up after it.

    The kernel closes a dead process's connections before it reparents its
    children, so the parent may look alive for a moment: wait up to
    ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    while os.getppid() == parent:
        if time.monotonic() > deadline:
            return  # the parent lives and closed the connection itself: nothing to clean up
        time.sleep(0.01)
    with contextlib.suppress(Exception):
        clean_up_after(parent)


class _LoadFailure:
    """A run's plan that could not be unpickled here, and why."""

    def __init__(self, exc: BaseException, text: str) -> None:
        self.exc = exc
        self.text = text


class _Cancelled(Exception):  # noqa: N818 - internal signal, never leaves the worker
    pass


class _Worker:
    def __init__(self, conn: Connection, device: str) -> None:
        from gpuudf.backends import make_backend  # noqa: PLC0415 - after the environment is set

        self.conn = conn
        self.backend = make_backend(device)
        if self.backend.device_class == "cpu":
            self.backend.threads_per_worker = 1  # the executor started us with one BLAS/OpenMP thread
        # a reader thread takes every message at once: the main process's sends never wait for a UDF
        self.inbox: queue.SimpleQueue[ToWorker | BaseException] = queue.SimpleQueue()
        self.cancelled_runs: set[int] = set()
        self.runs: dict[int, tuple[Any, Any] | _LoadFailure] = {}
        self.task_classes: set[Any] = set()  # of the runs so far, who know what a dead parent leaves

    def clean_up_after(self, parent_pid: int) -> None:
        for task_class in list(self.task_classes):
            with contextlib.suppress(Exception):
                task_class.clean_up_after(parent_pid)

    def _read(self) -> None:
        while True:
            try:
                message: ToWorker = self.conn.recv()
            except BaseException as exc:  # noqa: BLE001 - EOF or a broken connection ends the serving loop
                self.inbox.put(exc)
                return
            if isinstance(message, CancelRun):
                self.cancelled_runs.add(message.run_id)  # seen by the running task at its next tile
            self.inbox.put(message)
            if isinstance(message, Stop):
                return

    def _take(self) -> ToWorker:
        message = self.inbox.get()
        if isinstance(message, BaseException):
            raise message
        return message

    def _check_cancel(self, run_id: int) -> None:
        if run_id in self.cancelled_runs:
            raise _Cancelled

    def serve(self) -> None:
        self.conn.send(Ready(self.backend.describe()))
        threading.Thread(target=self._read, name="gpuudf-worker-inbox", daemon=True).start()
        while True:
            message = self._take()
            if isinstance(message, Stop):
                return
            if isinstance(message, CancelRun):
                self.cancelled_runs.add(message.run_id)
            elif isinstance(message, StartRun):
                import cloudpickle  # noqa: PLC0415

                try:
                    loaded = cloudpickle.loads(message.payload)
                except Exception as exc:  # noqa: BLE001 - each task of the run reports it
                    loaded = _LoadFailure(exc, "".join(traceback.format_exception(exc)))
                self.runs = {message.run_id: loaded}  # one run at a time; a second plan replaces the first
                if not isinstance(loaded, _LoadFailure):
                    self._enter(message.run_id, *loaded)
                for old in [r for r in self.cancelled_runs if r < message.run_id]:  # in place: the reader adds
                    self.cancelled_runs.discard(old)
            else:
                assert isinstance(message, RunTask), message
                self._run_task(message.task_id, message.run_id, message.own)

    def _enter(self, run_id: int, task_class: Any, shared: Any) -> None:
        # after the last plan was dropped, so that what only it used can go
        self.task_classes.add(task_class)
        try:
            task_class.enter_worker(shared)
        except Exception as exc:  # noqa: BLE001 - each task of the run reports it
            self.runs[run_id] = _LoadFailure(exc, "".join(traceback.format_exception(exc)))

    def _answer(self, message: TaskDone | TaskFailed | TaskDropped) -> None:
        flush_output()  # the task's lines travel before its answer
        self.conn.send(message)

    def _failed(self, task_id: int, exc: BaseException, text: str) -> TaskFailed:
        from gpuudf.errors import DeviceOutOfMemoryError  # noqa: PLC0415

        out_of_memory = isinstance(exc, DeviceOutOfMemoryError)
        return TaskFailed(task_id, pack_exception(exc), text, out_of_memory=out_of_memory)

    def _run_task(self, task_id: int, run_id: int, own: Any) -> None:
        if run_id in self.cancelled_runs or run_id not in self.runs:
            self._answer(TaskDropped(task_id))
            return
        loaded = self.runs[run_id]
        if isinstance(loaded, _LoadFailure):
            self._answer(self._failed(task_id, loaded.exc, loaded.text))
            return
        task_class, shared = loaded
        unreported = [0]
        last_sent_s = [time.monotonic()]

        def on_tile(frames: int) -> None:
            # progress goes home at most every PROGRESS_INTERVAL_S: a message per tile
            # would wake the main process hundreds of times a second, on a core the
            # workers need; cancellation is still checked after every tile
            unreported[0] += frames
            now = time.monotonic()
            if now - last_sent_s[0] >= PROGRESS_INTERVAL_S:
                self.conn.send(TileProgress(task_id, unreported[0]))
                unreported[0], last_sent_s[0] = 0, now
            self._check_cancel(run_id)

        started = time.perf_counter()
        try:
            result = task_class.rebuild(shared, own).run(self.backend, on_tile)
        except _Cancelled:
            self._answer(TaskDropped(task_id))
        except BaseException as exc:  # noqa: BLE001 - every failure of a task goes home
            # KeyboardInterrupt too: workers run in their own session, so one here was
            # raised by the UDF, not typed by the user; the worker stays usable
            self._answer(self._failed(task_id, exc, "".join(traceback.format_exception(exc))))
        else:
            import cloudpickle  # noqa: PLC0415

            try:  # cloudpickle: object buffers may hold instances of classes from the user's script
                payload = cloudpickle.dumps(result)
            except Exception as exc:  # noqa: BLE001 - a result that cannot travel is the task's error
                self._answer(self._failed(task_id, exc, "".join(traceback.format_exception(exc))))
                return
            self._answer(TaskDone(task_id, payload, unreported[0], time.perf_counter() - started))


def main(argv: list[str] | None = None) -> None:
    """Connect to the main process and serve tasks until told to stop."""
    args = sys.argv[1:] if argv is None else argv
    address, device = args[0], args[1]
    from gpuudf.executors.process import AUTHKEY_ENV  # noqa: PLC0415

    line_buffer_output()
    parent = os.getppid()
    made: list[_Worker] = []  # the worker, once made: it knows the task classes that clean up
    watch_parent(lambda parent: made[0].clean_up_after(parent) if made else None)
    authkey = bytes.fromhex(os.environ.pop(AUTHKEY_ENV))
    conn = Client(address, authkey=authkey)
    conn.send(os.getpid())  # workers connect in any order: this says which process we are
    sys.path[:0] = [p for p in conn.recv() if p not in sys.path]
    try:
        try:
            worker = _Worker(conn, device)
            made.append(worker)
        except Exception as exc:  # noqa: BLE001 - e.g. BackendUnavailableError: the main process raises it
            conn.send(StartFailed(pack_exception(exc), "".join(traceback.format_exception(exc))))
            return
        worker.serve()
    except (EOFError, ConnectionError):
        # the main process went away: if it died, clean up after it (its watchdog may not have seen it yet)
        if made:
            clean_up_if_orphaned(parent, made[0].clean_up_after)
    except KeyboardInterrupt:
        pass  # interrupted: just end
    finally:
        conn.close()


if __name__ == "__main__":
    main()
