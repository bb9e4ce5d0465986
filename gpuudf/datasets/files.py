"""Reading frames from files: checks at load, reads in the workers.

Policy
------
- Everything that can be known about a file is checked when it is loaded, in
  the calling process, from its size and header only: the path exists, is a
  regular file and is readable, and holds every frame the dataset declares.
  Frame data is never read there.
- A dataset that travels to a worker carries its path, never an open file;
  each process opens the file when a partition first reads it and closes it
  (``release``) when the partition is done, so no file stays open between
  runs and a file replaced on disk is read anew.
- **Worker processes map the file** (:func:`allow_memory_maps`): a tile is a
  read-only view of a mapping of just that tile's bytes, unmapped when the
  tile is dropped, so a CPU worker computes straight from the page cache and
  its memory holds one tile.  Where a tile must land in a given buffer (a
  CUDA worker's pinned ring slot), it is copied there from the mapping: one
  copy, page cache to pinned memory.  Mapped reads beat positioned reads
  (``preadv``) severalfold from the page cache and match them from disk.
- **The user's own process reads with** ``preadv`` into the caller's buffer
  (the inline executor's reused tile buffer).  A file that shrinks under a
  mapping kills the process touching it (``SIGBUS``); in a worker the
  executor reports that as a :class:`DataSetError` for the partition (see
  ``check_unchanged``), but the user's process must never die of it.
- Data in a non-native byte order is swapped in the destination buffer, so
  every backend sees native frames.
- A file that turns out shorter during a run than it was at load is reported
  as a :class:`DataSetError` naming the frames and bytes that were missing,
  never as zeros or a hang.
"""

from __future__ import annotations

import math
import mmap
import os
import stat
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from gpuudf.backends.backend import page_aligned_empty
from gpuudf.datasets.dataset import DataSet, int_argument
from gpuudf.errors import DataSetError
from gpuudf.shape import Positions, Shape

__all__ = [
    "BinaryFileDataSet",
    "BinaryFrames",
    "allow_memory_maps",
    "checked_path",
    "consecutive_runs",
    "int_argument",
    "memory_maps_allowed",
    "numeric_dtype",
    "require_readable",
]

_MEMORY_MAPS = [False]


def allow_memory_maps(allowed: bool = True) -> None:
    """Let this process read file frames through memory maps (worker processes do at start)."""
    _MEMORY_MAPS[0] = allowed


def memory_maps_allowed() -> bool:
    """Whether this process reads file frames through memory maps."""
    return _MEMORY_MAPS[0]


def checked_path(path: Any, what: str) -> Path:
    """``path`` as an absolute :class:`Path` to a readable regular file.

    Raises
    ------
    DataSetError
        If it is not a path, does not exist, is a directory (or other
        non-file), or cannot be opened for reading.
    """
    if not isinstance(path, str | os.PathLike):
        msg = f"{what} needs a file path (str or pathlib.Path), got {type(path).__name__}"
        raise DataSetError(msg)
    resolved = Path(path).expanduser().absolute()
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        msg = f"{what}: no such file: {resolved}"
        raise DataSetError(msg) from None
    except OSError as exc:
        msg = f"{what}: cannot access {resolved}: {exc.strerror}"
        raise DataSetError(msg) from None
    if stat.S_ISDIR(mode):
        msg = f"{what}: {resolved} is a directory, not a file"
        raise DataSetError(msg)
    if not stat.S_ISREG(mode):
        msg = f"{what}: {resolved} is not a regular file"
        raise DataSetError(msg)
    try:
        with resolved.open("rb"):
            pass
    except PermissionError:
        msg = f"{what}: no permission to read {resolved}"
        raise DataSetError(msg) from None
    except OSError as exc:
        msg = f"{what}: cannot open {resolved}: {exc.strerror}"
        raise DataSetError(msg) from None
    return resolved


def numeric_dtype(dtype: Any, what: str) -> np.dtype[Any]:
    """``dtype`` as a NumPy dtype of numbers (bool, int, float, complex).

    Raises
    ------
    DataSetError
        For anything NumPy does not know as a dtype, and for strings,
        objects and records.
    """
    try:
        parsed: np.dtype[Any] = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        msg = f"{what}: unknown dtype {dtype!r} ({exc})"
        raise DataSetError(msg) from None
    if parsed.kind not in "biufc" or parsed.fields is not None or parsed.subdtype is not None:
        msg = f"{what}: frames must hold numbers (bool, int, float or complex), got dtype {parsed}"
        raise DataSetError(msg)
    return parsed


def consecutive_runs(positions: Positions) -> list[tuple[int, int]]:
    """``positions`` as ``(start, stop)`` runs of consecutive values, in order."""
    if isinstance(positions, range):
        return [(positions.start, positions.stop)] if len(positions) else []
    flat = np.asarray(positions, dtype=np.int64)
    if not flat.size:
        return []
    breaks = np.flatnonzero(np.diff(flat) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [flat.size]])
    return [(int(flat[a]), int(flat[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def require_readable(path: Path) -> None:
    """Raise :class:`DataSetError` if this process cannot read ``path``.

    Worker processes open a dataset's file by its path: on a cluster, the
    path must name the file on every worker's machine.
    """
    if not os.access(path, os.R_OK):
        reason = "there is no such file" if not path.exists() else "it is not readable"
        msg = f"{path}: {reason} in this worker process; a dataset's file must be readable where the workers run"
        raise DataSetError(msg)


def _close(fd: int) -> None:
    os.close(fd)


class BinaryFrames:
    """Frames stored back to back in a file, C order, after ``offset_nbytes``.

    Parameters
    ----------
    path
        The file, already checked with :func:`checked_path`.
    offset_nbytes
        Where the first frame starts (a header's size).
    frame_shape, dtype
        One frame as stored; ``dtype`` may be of either byte order.
    num_frames
        Stored frames the dataset reads (the file must hold them).  Positions
        are stored frame indices: the dataset applies its ``sync_offset``
        before it reads (:meth:`DataSet.read_frames`).
    """

    def __init__(
        self,
        path: Path,
        *,
        offset_nbytes: int,
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
        num_frames: int,
    ) -> None:
        self.path = path
        self.offset_nbytes = offset_nbytes
        self.frame_shape = frame_shape
        self.stored_dtype = dtype
        #: The dtype frames are handed out in: the stored one, in native byte order.
        self.dtype = dtype.newbyteorder("=")
        self.frame_size = math.prod(frame_shape)
        self.frame_nbytes = self.frame_size * dtype.itemsize
        self.num_frames = num_frames
        self._fd: int | None = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._lock = threading.Lock()

    @property
    def required_nbytes(self) -> int:
        """The smallest file size that holds every stored frame the dataset uses."""
        return self.offset_nbytes + self.num_frames * self.frame_nbytes

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fd"] = state["_closer"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _descriptor(self) -> int:
        fd = self._fd
        if fd is None:
            with self._lock:
                if self._fd is None:
                    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
                    fd = os.open(self.path, flags)
                    if hasattr(os, "posix_fadvise"):
                        # partitions are read front to back: ask for a large read-ahead
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                    self._closer = weakref.finalize(self, _close, fd)
                    self._fd = fd
                fd = self._fd
        return fd

    def release(self) -> None:
        """Close the file (mapped tiles stay valid); the next read opens it again, by its path."""
        with self._lock:
            if self._closer is not None:
                self._closer()
            self._fd = self._closer = None

    def read(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Stored frames at ``positions``, native byte order.

        Parameters
        ----------
        positions
            Stored frame indices, from 0 to ``num_frames - 1``.
        out
            Where to put them; allocated when ``None``.
        prefer_view
            Return a read-only view of a memory map instead of filling
            ``out`` when this process may map files (:func:`allow_memory_maps`)
            and the frames allow it (one run of consecutive bytes in the file,
            native byte order).

        Raises
        ------
        DataSetError
            If the file ends before a frame it held at load.
        """
        mapped = memory_maps_allowed()
        runs = consecutive_runs(positions)
        if mapped and (prefer_view or out is None) and self.stored_dtype.isnative and len(runs) == 1:
            start, stop = runs[0]
            segments = self.file_segments(start, stop - start)
            if len(segments) == 1:
                return self._map(segments[0][0], stop - start, start)
        if out is None:
            nbytes = len(positions) * self.frame_nbytes
            out = page_aligned_empty(nbytes).view(self.dtype).reshape(len(positions), *self.frame_shape)
        raw = out.reshape(len(positions), -1).view(np.uint8)
        row = 0
        for start, stop in runs:
            frame = start
            for position, count in self.file_segments(start, stop - start):
                target = raw[row : row + count]
                if mapped:
                    np.copyto(target, self._map(position, count, frame).reshape(count, -1).view(np.uint8))
                else:
                    self._read_into(target, position, count, frame)
                row += count
                frame += count
        if not self.stored_dtype.isnative:
            out.view(self.stored_dtype).byteswap(inplace=True)
        return out

    def file_segments(self, stored_start: int, count: int) -> list[tuple[int, int]]:
        """``(byte offset, frames)`` pieces holding ``count`` stored frames from ``stored_start``, in order.

        Back to back here: one piece.  Subclasses map frames scattered over a
        file (HDF5 chunks).
        """
        return [(self.offset_nbytes + stored_start * self.frame_nbytes, count)]

    def _truncated(self, first: int, count: int, end: int, size: int) -> DataSetError:
        msg = (
            f"{self.path} ends at byte {size}, but frames {first}-{first + count - 1} "
            f"need bytes up to {end}: the file was truncated or replaced after it was loaded"
        )
        return DataSetError(msg)

    def _map(self, position: int, count: int, first: int) -> np.ndarray[Any, Any]:
        """A read-only view of ``count`` frames stored from byte ``position``, mapping just their bytes.

        ``first`` is the stored index of the first of them, for messages.
        """
        fd = self._descriptor()
        end = position + count * self.frame_nbytes
        size = os.fstat(fd).st_size
        if size < end:
            raise self._truncated(first, count, end, size)
        aligned = position - position % _MAP_ALIGNMENT_NBYTES
        try:
            mapping = mmap.mmap(fd, end - aligned, access=mmap.ACCESS_READ, offset=aligned)
        except (ValueError, OSError) as exc:  # the file shrank since the size check
            raise self._truncated(first, count, end, os.fstat(fd).st_size) from exc
        frames = np.frombuffer(
            mapping, dtype=self.stored_dtype, count=count * self.frame_size, offset=position - aligned
        )
        return frames.reshape(count, *self.frame_shape)

    def file_nbytes(self) -> int:
        """The file's size now."""
        return self.path.stat().st_size

    def _read_into(self, target: np.ndarray[Any, Any], position: int, count: int, first: int) -> None:
        fd = self._descriptor()
        view = memoryview(target.reshape(-1))  # type: ignore[arg-type]
        done = 0
        total = count * self.frame_nbytes
        while done < total:
            # at most 1 GiB a call: macOS refuses reads over INT_MAX bytes
            got = _pread_into(fd, view[done : done + 2**30], position + done)
            if got == 0:
                raise self._truncated(first, count, position + total, os.fstat(fd).st_size)
            done += got


#: Mappings start on this file offset: the page cache holds large folios
#: aligned to it, which a mapping aligned alike maps whole; a map starting on
#: a plain page boundary was measured 20-30 % slower to sum.  The extra bytes
#: mapped in front are never touched, so never read.
_MAP_ALIGNMENT_NBYTES = max(2 * 2**20, mmap.ALLOCATIONGRANULARITY)


if hasattr(os, "preadv"):

    def _pread_into(fd: int, view: memoryview, position: int) -> int:
        return os.preadv(fd, [view], position)

else:  # pragma: no cover - platforms without positioned reads (Windows): one copy more
    _SEEK_LOCK = threading.Lock()

    def _pread_into(fd: int, view: memoryview, position: int) -> int:
        with _SEEK_LOCK:
            os.lseek(fd, position, os.SEEK_SET)
            data = os.read(fd, min(len(view), 1 << 30))
        view[: len(data)] = data
        return len(data)


class BinaryFileDataSet(DataSet):
    """A dataset whose frames lie back to back in one file (raw, ``.npy``, contiguous HDF5).

    Subclasses check their format's header and build the :class:`BinaryFrames`;
    this class checks the file's size and reads.  ``sync_offset``,
    ``stored_frames`` and ``tileshape`` are :class:`DataSet`'s.
    """

    #: How the format is named in messages.
    what = "file dataset"

    def __init__(
        self,
        frames: BinaryFrames,
        shape: Shape,
        num_partitions: int | None,
        *,
        describe_need: str = "",
        sync_offset: int = 0,
        stored_frames: int | None = None,
        tileshape: Any = None,
    ) -> None:
        size = frames.path.stat().st_size
        if size < frames.required_nbytes:
            msg = (
                f"{self.what}: {frames.path} holds {size} bytes, too few for {shape.nav_size} frames of "
                f"{tuple(shape.sig)} {frames.stored_dtype} ({frames.frame_nbytes} bytes each){describe_need}: "
                f"it needs {frames.required_nbytes} bytes"
            )
            raise DataSetError(msg)
        super().__init__(
            shape,
            frames.dtype,
            num_partitions,
            sync_offset=sync_offset,
            stored_frames=stored_frames,
            tileshape=tileshape,
        )
        self._binary = frames

    @property
    def path(self) -> Path:
        """The file the frames are read from."""
        return self._binary.path

    def read_stored(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Stored frames at ``positions``, from the file; see :meth:`BinaryFrames.read`."""
        return self._binary.read(positions, out, prefer_view=prefer_view)

    def release(self) -> None:
        """Close the file until the next read."""
        self._binary.release()

    def enter_worker_process(self) -> None:
        """Set the worker up (:meth:`DataSet.enter_worker_process`) and check that it can read the file."""
        super().enter_worker_process()
        require_readable(self.path)

    def check_unchanged(self) -> None:
        """Raise :class:`DataSetError` if the file is now too short for its frames."""
        frames = self._binary
        size = frames.file_nbytes()
        if size < frames.required_nbytes:
            msg = (
                f"{frames.path} is now {size} bytes, shorter than the {frames.required_nbytes} its frames need: "
                "it was truncated during the run"
            )
            raise DataSetError(msg)

    def _repr_location(self) -> str:
        return repr(str(self.path))

    def _describe(self) -> list[tuple[str, str]]:
        return [("File", str(self.path))]
