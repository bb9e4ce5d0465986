"""What runs on a dask worker for the dask executor: a task, its progress, and the flags that cancel it.

Policy
------
- A task is a call of :func:`run_task` that dask routes to one worker (by
  address, with that worker's dask resources).  It never raises: its
  answer, a :class:`~gpuudf.executors.messages.TaskDone`,
  :class:`~gpuudf.executors.messages.TaskFailed` or
  :class:`~gpuudf.executors.messages.TaskDropped`, is its result, so a
  failure keeps its type and traceback (named with the worker) whatever
  dask does with exceptions, and a dask error means the worker, not the task.
- A run's plan reaches a worker as a dask dependency (sent once per worker)
  and is unpickled once per process and plan; the frames it names
  (:class:`~gpuudf.datasets.transport.ScatteredFrames`) are dependencies too.
  Setting the process up for the plan (``enter_worker``) happens then; a
  failure there (a file this worker cannot read) is each task's answer,
  naming the worker.
- **Frames are aligned** before use: dask hands a scattered array out of
  the buffer it received, at whatever offset it landed (a float32 array 2
  bytes off its alignment ran matrix products 2 to 4 times slower).  Such an
  array is copied once per process into page-aligned memory, and the copy
  replaces dask's in the worker's store, so that the memory is not held
  twice and peers fetch the aligned copy.
- Every thread of a worker has its own backend: a dask worker with several
  threads runs several tasks at once, and each task's UDF instances belong
  to one backend.
- Progress goes to the client as dask events on the executor's topic, at
  most every :data:`~gpuudf.executors.worker.PROGRESS_INTERVAL_S` per task.
- A cancellation is a flag :func:`mark_cancelled` sets (the client calls it
  through ``Client.run``, which the worker's event loop serves while a UDF
  runs); a task checks it before it starts and after every tile.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
import weakref
from collections.abc import Mapping
from typing import Any

from gpuudf.executors.messages import TaskDone, TaskDropped, TaskFailed

__all__ = ["MAX_CANCELLED_REMEMBERED", "MAX_PLANS_KEPT", "mark_cancelled", "run_task"]

#: Cancelled runs a worker process remembers (older ones are forgotten first).
MAX_CANCELLED_REMEMBERED = 64
#: Plans a worker process keeps unpickled: few, since a plan holds its dataset's frames
#: (a dataset the client dropped must not stay in the worker's memory).
MAX_PLANS_KEPT = 2

_lock = threading.Lock()
_cancelled: collections.OrderedDict[str, None] = collections.OrderedDict()
_backends: dict[tuple[str, int], Any] = {}
_aligned_copies: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


class _LoadFailure:
    """A run's plan that could not be unpickled or entered here, and why."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.text = "".join(traceback.format_exception(exc))


class _Cancelled(Exception):  # noqa: N818 - internal signal, never leaves the worker
    pass


_plans: collections.OrderedDict[str, tuple[Any, Any] | _LoadFailure] = collections.OrderedDict()


def mark_cancelled(run_key: str) -> None:
    """Have the tasks of run ``run_key`` on this worker stop at their next tile, and its queued ones not start."""
    with _lock:
        _cancelled[run_key] = None
        while len(_cancelled) > MAX_CANCELLED_REMEMBERED:
            _cancelled.popitem(last=False)


def _aligned(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """``arrays`` with every ndarray not starting on a page boundary replaced by an aligned copy (once per key)."""
    import numpy as np  # noqa: PLC0415

    from gpuudf.backends.backend import PAGE_NBYTES, page_aligned_empty  # noqa: PLC0415

    out = dict(arrays)
    for key, array in arrays.items():
        if not isinstance(array, np.ndarray) or array.ctypes.data % PAGE_NBYTES == 0:
            continue
        with _lock:
            copy = _aligned_copies.get(key)
            if copy is None:
                copy = page_aligned_empty(array.nbytes).view(array.dtype).reshape(array.shape)
                copy[...] = array
                copy.flags.writeable = False
                _aligned_copies[key] = copy
                _store_in_worker(key, copy)
        out[key] = copy
    return out


def _store_in_worker(key: str, array: Any) -> None:
    """Replace the worker's own copy of ``key`` with ``array`` (on its event loop, where its store is changed)."""
    from distributed import get_worker  # noqa: PLC0415

    worker = get_worker()

    def store() -> None:
        if key in worker.data:
            worker.data[key] = array

    worker.loop.add_callback(store)


def _worker_name() -> str:
    from distributed import get_worker  # noqa: PLC0415 - only ever called on a dask worker

    worker = get_worker()
    return f"dask worker {worker.name!r} at {worker.address}"


def _plan(plan_key: str, payload: bytes, arrays: Mapping[str, Any]) -> tuple[Any, Any] | _LoadFailure:
    """The run's (task class, shared part), unpickled and entered once per process; or why not."""
    with _lock:
        known = _plans.get(plan_key)
    if known is not None:
        return known
    import cloudpickle  # noqa: PLC0415

    from gpuudf.datasets.transport import frames_resolved  # noqa: PLC0415

    loaded: tuple[Any, Any] | _LoadFailure
    try:
        with frames_resolved(arrays):
            task_class, shared = cloudpickle.loads(payload)
        task_class.enter_worker(shared)
        loaded = (task_class, shared)
    except Exception as exc:  # noqa: BLE001 - each task of the run reports it
        loaded = _LoadFailure(exc)
    with _lock:
        _plans[plan_key] = loaded
        while len(_plans) > MAX_PLANS_KEPT:
            _plans.popitem(last=False)
    return loaded


def _backend(device: str) -> Any:
    key = (device, threading.get_ident())
    backend = _backends.get(key)
    if backend is None:
        from gpuudf.backends import make_backend  # noqa: PLC0415

        backend = _backends[key] = make_backend(device)
        if backend.device_class == "cpu":
            backend.threads_per_worker = 1  # one task per thread: BLAS threads would compete
    return backend


def _failed(task_id: int, exc: BaseException, text: str) -> TaskFailed:
    from gpuudf.errors import DataSetError, DeviceOutOfMemoryError  # noqa: PLC0415
    from gpuudf.executors.worker import pack_exception  # noqa: PLC0415

    where = f"(on {_worker_name()})\n"
    if type(exc) is DataSetError:  # the data is not what this worker sees: say which worker
        exc = DataSetError(f"{exc} (on {_worker_name()})")
    return TaskFailed(task_id, pack_exception(exc), where + text, out_of_memory=isinstance(exc, DeviceOutOfMemoryError))


def run_task(  # noqa: PLR0917 - dask passes a task's arguments by position
    run_key: str,
    plan_key: str,
    payload: bytes,
    arrays: Mapping[str, Any],
    task_id: int,
    own: Any,
    device: str,
    topic: str,
) -> TaskDone | TaskFailed | TaskDropped:
    """Run one task of run ``run_key`` on ``device``; its answer, whatever happens.

    Parameters
    ----------
    run_key
        The run, as :func:`mark_cancelled` names it.
    plan_key, payload
        The run's plan (cloudpickle of the task class and shared part) and a
        key for it, unique to this version of the plan.
    arrays
        The frames the plan names, by key (dask delivers them).
    task_id, own
        The task's index in the run and its own part.
    device
        The device of the worker (``"cpu"``, ``"cuda:0"``, ``"sim:0"``).
    topic
        The dask event topic progress goes to, as ``(run_key, task_id, frames)``.
    """
    from gpuudf.executors.worker import PROGRESS_INTERVAL_S  # noqa: PLC0415

    if run_key in _cancelled:
        return TaskDropped(task_id)
    loaded = _plan(plan_key, payload, _aligned(arrays))
    if isinstance(loaded, _LoadFailure):
        return _failed(task_id, loaded.exc, loaded.text)
    task_class, shared = loaded
    from distributed import get_worker  # noqa: PLC0415

    worker = get_worker()
    unreported = [0]
    last_sent_s = [time.monotonic()]

    def on_tile(frames: int) -> None:
        unreported[0] += frames
        now = time.monotonic()
        if now - last_sent_s[0] >= PROGRESS_INTERVAL_S:
            worker.log_event(topic, [run_key, task_id, unreported[0]])
            unreported[0], last_sent_s[0] = 0, now
        if run_key in _cancelled:
            raise _Cancelled

    started = time.perf_counter()
    try:
        result = task_class.rebuild(shared, own).run(_backend(device), on_tile)
    except _Cancelled:
        return TaskDropped(task_id)
    except BaseException as exc:  # noqa: BLE001 - every failure of a task goes home
        return _failed(task_id, exc, "".join(traceback.format_exception(exc)))
    import cloudpickle  # noqa: PLC0415

    try:  # cloudpickle: object buffers may hold instances of classes from the user's script
        payload_out = cloudpickle.dumps(result)
    except Exception as exc:  # noqa: BLE001 - a result that cannot travel is the task's error
        return _failed(task_id, exc, "".join(traceback.format_exception(exc)))
    return TaskDone(task_id, payload_out, unreported[0], time.perf_counter() - started)
