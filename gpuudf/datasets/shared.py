"""Frames in shared memory, so worker processes read them without a copy per task.

Policy: an in-memory dataset is copied into one shared-memory file the first
time it is sent to worker processes, and only the file's name travels.  The
process that created the file owns it and removes it when the dataset is
garbage-collected (or at interpreter exit); workers map it and
keep their mapping while a run uses it.  The mapping is writable so that
CUDA can page-lock it; the arrays handed out are flagged read-only.  Files are named ``gpuudf-*`` under
``/dev/shm`` where that exists.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import sys
import weakref
from typing import Any

import numpy as np

__all__ = ["SHARED_MEMORY_DIR", "SharedFrames", "attach_shared_frames", "release_unused"]

#: Where shared frames live: tmpfs on Linux, the temp directory elsewhere.
SHARED_MEMORY_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else os.environ.get("TMPDIR", "/tmp")  # noqa: PTH112, S108

_ATTACHED: dict[str, np.ndarray[Any, Any]] = {}


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
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @classmethod
    def copy_of(cls, frames: np.ndarray[Any, Any]) -> SharedFrames:
        """Copy ``frames`` into a new shared-memory file owned by this process."""
        import tempfile  # noqa: PLC0415 - only datasets that go to worker processes need it

        fd, path = tempfile.mkstemp(prefix="gpuudf-", dir=SHARED_MEMORY_DIR)
        os.close(fd)
        shared = cls(path, tuple(frames.shape), frames.dtype)
        shared._finalizer = weakref.finalize(shared, _remove, path)
        if frames.nbytes:
            target = np.memmap(path, dtype=frames.dtype, mode="w+", shape=frames.shape)
            target[...] = frames
            target.flush()
            del target
        return shared

    def array(self) -> np.ndarray[Any, Any]:
        """The frames, mapped read-only."""
        return attach_shared_frames(self.path, self.shape, self.dtype)

    def release(self) -> None:
        """Remove the file now (owner only); mappings in workers stay valid."""
        if self._finalizer is not None:
            self._finalizer()

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
