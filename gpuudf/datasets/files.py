"""Reading frames from files: checks at load, positioned reads in the workers.

Policy
------
- Everything that can be known about a file is checked when it is loaded, in
  the calling process, from its size and header only: the path exists, is a
  regular file and is readable, and holds every frame the dataset declares.
  Frame data is never read there.
- A dataset that travels to a worker carries its path, never an open file;
  each process opens the file once, on its first read, and reads with
  positioned reads (``preadv``), so threads of one process share the
  descriptor without seeking.
- Reads go straight into the caller's buffer (a CPU worker's reused tile
  buffer, a CUDA worker's pinned ring slot): no intermediate copy.  Data in a
  non-native byte order is swapped in that buffer, so every backend sees
  native frames.
- A file that turns out shorter during a run than it was at load is reported
  as a :class:`DataSetError` naming the frames and bytes that were missing,
  never as zeros or a hang.
"""

from __future__ import annotations

import os
import stat
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from gpuudf.datasets.dataset import DataSet
from gpuudf.errors import DataSetError
from gpuudf.shape import Positions, Shape

__all__ = ["BinaryFileDataSet", "BinaryFrames", "checked_path", "consecutive_runs", "int_argument", "numeric_dtype"]


def int_argument(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int of at least ``minimum``.

    Raises
    ------
    DataSetError
        Naming ``name`` when it is no int or too small.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        msg = f"{name} must be an int, got {value!r}"
        raise DataSetError(msg)
    if minimum is not None and value < minimum:
        msg = f"{name} must be at least {minimum}, got {value}"
        raise DataSetError(msg)
    return int(value)


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
    first_frame
        The stored frame that is the dataset's frame 0: positive skips frames,
        negative puts that many frames of zeros first (a ``sync_offset``).
    num_frames
        Frames in the dataset.
    """

    def __init__(
        self,
        path: Path,
        *,
        offset_nbytes: int,
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
        first_frame: int,
        num_frames: int,
    ) -> None:
        self.path = path
        self.offset_nbytes = offset_nbytes
        self.frame_shape = frame_shape
        self.stored_dtype = dtype
        #: The dtype frames are handed out in: the stored one, in native byte order.
        self.dtype = dtype.newbyteorder("=")
        self.frame_nbytes = int(np.prod(frame_shape)) * dtype.itemsize
        self.first_frame = first_frame
        self.num_frames = num_frames
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def required_nbytes(self) -> int:
        """The smallest file size that holds every stored frame the dataset uses."""
        return self.offset_nbytes + (self.first_frame + self.num_frames) * self.frame_nbytes

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fd"] = None
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
                    fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                    if hasattr(os, "posix_fadvise"):
                        # partitions are read front to back: ask for a large read-ahead
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                    weakref.finalize(self, _close, fd)
                    self._fd = fd
                fd = self._fd
        return fd

    def read(self, positions: Positions, out: np.ndarray[Any, Any] | None = None) -> np.ndarray[Any, Any]:
        """Frames at dataset ``positions`` into ``out`` (allocated when ``None``).

        Raises
        ------
        DataSetError
            If the file ends before a frame it held at load.
        """
        if out is None:
            out = np.empty((len(positions), *self.frame_shape), dtype=self.dtype)
        raw = out.reshape(len(positions), -1).view(np.uint8)
        row = 0
        for start, stop in consecutive_runs(positions):
            count = stop - start
            stored_start = start + self.first_frame
            if stored_start < 0:  # frames before the file's first one: zeros
                pad = min(-stored_start, count)
                raw[row : row + pad] = 0
                row += pad
                stored_start += pad
                count -= pad
            if count:
                self._read_into(raw[row : row + count], stored_start, count)
                row += count
        if not self.stored_dtype.isnative:
            out.view(self.stored_dtype).byteswap(inplace=True)
        return out

    def _read_into(self, target: np.ndarray[Any, Any], stored_start: int, count: int) -> None:
        fd = self._descriptor()
        view = memoryview(target.reshape(-1))  # type: ignore[arg-type]
        position = self.offset_nbytes + stored_start * self.frame_nbytes
        done = 0
        total = count * self.frame_nbytes
        while done < total:
            got = _pread_into(fd, view[done:], position + done)
            if got == 0:
                first = stored_start - self.first_frame
                msg = (
                    f"{self.path} ends at byte {position + done}, but frames {first}-{first + count - 1} "
                    f"need bytes up to {position + total}: the file was truncated or replaced "
                    f"after it was loaded (it held {self.required_nbytes} bytes or more then)"
                )
                raise DataSetError(msg)
            done += got


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
    this class checks the file's size and reads.
    """

    #: How the format is named in messages.
    what = "file dataset"

    def __init__(
        self, frames: BinaryFrames, shape: Shape, num_partitions: int | None, *, describe_need: str = ""
    ) -> None:
        super().__init__(shape, frames.dtype, num_partitions)
        size = frames.path.stat().st_size
        if size < frames.required_nbytes:
            msg = (
                f"{self.what}: {frames.path} holds {size} bytes, too few for {shape.nav_size} frames of "
                f"{shape.sig} {frames.stored_dtype} ({frames.frame_nbytes} bytes each){describe_need}: "
                f"it needs {frames.required_nbytes} bytes"
            )
            raise DataSetError(msg)
        self._binary = frames

    @property
    def path(self) -> Path:
        """The file the frames are read from."""
        return self._binary.path

    def read_frames(self, positions: Positions, out: np.ndarray[Any, Any] | None = None) -> np.ndarray[Any, Any]:
        """Frames at ``positions``, read from the file into ``out`` (or a new array)."""
        return self._binary.read(positions, out)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} shape={self.shape!r} dtype={self.dtype}>"
