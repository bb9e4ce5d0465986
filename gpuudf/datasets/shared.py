"""Frames in shared memory, so worker processes read them without a copy per task.

Policy: an in-memory dataset is copied into one shared-memory file the first
time it is sent to worker processes, and only the file's name travels.  The
process that created the file owns it and removes it when the dataset is
garbage-collected (or at interpreter exit); workers map it and
keep their mapping while a run uses it.  The mapping is writable so that
CUDA can page-lock it; the arrays handed out are flagged read-only.  Files are named
``gpuudf-<owner pid>-<pid namespace>-*`` under ``/dev/shm`` where that exists
(processes in other containers may share ``/dev/shm``, and their process ids
mean nothing here).

An owner that dies without its finalizers (killed, ``os._exit``) cannot
remove its files: its worker processes do, on their way out
(:func:`remove_files_of`), and the first file a later process makes sweeps
away the files of owners of its own pid namespace that are gone
(:func:`remove_orphaned_files`).  A name that is not of this form is left
alone.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SHARED_MEMORY_DIR",
    "SharedFrames",
    "attach_shared_frames",
    "release_unused",
    "remove_files_of",
    "remove_orphaned_files",
]

#: Where shared frames live: tmpfs on Linux, the temp directory elsewhere.
SHARED_MEMORY_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else os.environ.get("TMPDIR", "/tmp")  # noqa: PTH112, S108

_ATTACHED: dict[str, np.ndarray[Any, Any]] = {}


_PREFIX = "gpuudf-"
_SWEPT = [False]  # orphaned files are swept once per process


_MAX_PID_DIGITS = 10


def _pid_namespace() -> str:
    """The pid namespace of this process (the inode of ``/proc/self/ns/pid``), ``"0"`` where there is none."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)  # noqa: PTH116 - one stat, at most once per file
    except OSError:
        return "0"


def _owner_of(name: str) -> tuple[int, str] | None:
    """The owner pid and pid namespace in a shared-frame file's name, if it has them."""
    parts = name.removeprefix(_PREFIX).split("-", 2) if name.startswith(_PREFIX) else []
    if len(parts) < 3 or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts[:2]):
        return None
    if len(parts[0]) > _MAX_PID_DIGITS:
        return None
    return int(parts[0]), parts[1]


def _entries(directory: str) -> list[Path]:
    try:
        return list(Path(directory).iterdir())
    except OSError:
        return []


def _unlink(entry: Path) -> bool:
    try:
        entry.unlink(missing_ok=True)
    except OSError:  # another user's file in a sticky directory, a directory: not ours to remove
        return False
    return True


def remove_files_of(pid: int, directory: str = SHARED_MEMORY_DIR) -> int:
    """Remove the shared-frame files process ``pid`` of this pid namespace made; returns how many."""
    namespace = _pid_namespace()
    return sum(_unlink(entry) for entry in _entries(directory) if _owner_of(entry.name) == (pid, namespace))


def remove_orphaned_files(directory: str = SHARED_MEMORY_DIR) -> int:
    """Remove the shared-frame files of owners of this pid namespace that no longer run; returns how many."""
    namespace, me = _pid_namespace(), os.getpid()
    removed = 0
    for entry in _entries(directory):
        owner = _owner_of(entry.name)
        if owner is not None and owner[1] == namespace and owner[0] != me and not _alive(owner[0]):
            removed += _unlink(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process, or no pid at all: leave it
        return True
    return True


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # noqa: PTH108 - called from a finalizer at exit, keep it minimal


class SharedFrames:
    """A ``(frames, *sig)`` array in a shared-memory file.

    Create with :meth:`copy_of` in the owning process; pickling sends only the
    file's name, and unpickling maps the file (once per process).
    """

    def __init__(self, path: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.path = path
        self.shape = shape
        self.dtype = dtype

    @classmethod
    def copy_of(cls, frames: np.ndarray[Any, Any]) -> SharedFrames:
        """Copy ``frames`` into a new shared-memory file owned by this process."""
        import tempfile  # noqa: PLC0415 - only datasets that go to worker processes need it

        if not _SWEPT[0]:
            _SWEPT[0] = True
            remove_orphaned_files()
        fd, path = tempfile.mkstemp(prefix=f"{_PREFIX}{os.getpid()}-{_pid_namespace()}-", dir=SHARED_MEMORY_DIR)
        os.close(fd)
        shared = cls(path, tuple(frames.shape), frames.dtype)
        weakref.finalize(shared, _remove, path)  # weakref keeps it until the owner goes, or the interpreter exits
        if frames.nbytes:
            target = np.memmap(path, dtype=frames.dtype, mode="w+", shape=frames.shape)
            target[...] = frames
            target.flush()
            del target
        return shared

    def array(self) -> np.ndarray[Any, Any]:
        """The frames, mapped read-only."""
        return attach_shared_frames(self.path, self.shape, self.dtype)

    def __reduce__(self) -> tuple[Any, tuple[str, tuple[int, ...], np.dtype[Any]]]:
        return (SharedFrames, (self.path, self.shape, self.dtype))


def release_unused() -> int:
    """Forget mappings nothing else references, so their memory can go; returns how many."""
    unused = [path for path in _ATTACHED if sys.getrefcount(_ATTACHED[path]) <= _ONLY_CACHED_REFCOUNT]
    for path in unused:
        del _ATTACHED[path]
    return len(unused)


#: References to a cached mapping when only the cache holds it (the dict and
#: the argument of getrefcount).
_ONLY_CACHED_REFCOUNT = 2


def attach_shared_frames(path: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """Map a shared-memory file once per process; later calls reuse the mapping."""
    array = _ATTACHED.get(path)
    if array is None:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if nbytes == 0:
            array = np.empty(shape, dtype=dtype)
        else:
            with open(path, "r+b") as file:  # noqa: PTH123 - mmap needs the file descriptor
                # writable so that CUDA can page-lock the mapping (the array is read-only);
                # populated at once: faulting 4 KiB pages in during runs costs more than the sum
                mapped = mmap.mmap(file.fileno(), nbytes, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            array = np.frombuffer(mapped, dtype=dtype).reshape(shape)
        array.flags.writeable = False
        _ATTACHED[path] = array
    return array
