"""Unfiltered HDF5 chunks of whole frames, read from the file's bytes like a raw file.

Policy: each process reads the chunks' byte offsets from the file's chunk
index once (h5py) and keeps the tables of its last
``_OFFSET_TABLES_KEPT`` arrays, keyed by file, array, mtime and size.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gpuudf.datasets.files import BinaryFrames
from gpuudf.errors import DataSetError

__all__ = ["ChunkedFrames"]

#: Frame-offset tables of this process, by file, array, mtime and size: a
#: dataset arrives anew with each run's plan, its file usually unchanged.
_OFFSET_TABLES: dict[tuple[str, str, int, int], np.ndarray[Any, np.dtype[np.int64]]] = {}
_OFFSET_TABLES_KEPT = 8
_OFFSET_TABLES_LOCK = threading.Lock()


class ChunkedFrames(BinaryFrames):
    """Frames in the unfiltered chunks of an HDF5 array, each chunk whole frames.

    The chunks' byte offsets are read from the file's chunk index on first
    use in each process, and turned into a table of each frame's offset: its
    chunk's offset plus its place inside the chunk (edge chunks are stored
    at full size).
    """

    def __init__(
        self,
        path: Path,
        *,
        ds_path: str,
        stored_nav: tuple[int, ...],
        chunk_nav: tuple[int, ...],
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
        num_frames: int,
    ) -> None:
        super().__init__(path, offset_nbytes=0, frame_shape=frame_shape, dtype=dtype, num_frames=num_frames)
        self.ds_path = ds_path
        self.stored_nav = stored_nav
        self.chunk_nav = chunk_nav
        self._frame_offsets: np.ndarray[Any, np.dtype[np.int64]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_frame_offsets"] = None
        return state

    def _offsets(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Each frame's byte offset in the file, flat (8 bytes per frame), built once per process."""
        offsets = self._frame_offsets
        if offsets is None:
            status = self.path.stat()
            key = (str(self.path), self.ds_path, status.st_mtime_ns, status.st_size)
            with _OFFSET_TABLES_LOCK:  # a CUDA worker reads pieces of a tile in several threads
                offsets = _OFFSET_TABLES.get(key)
                if offsets is None:
                    try:
                        offsets = self._read_frame_offsets()
                    except DataSetError:
                        raise
                    except Exception as exc:
                        msg = f"{self.path}:{self.ds_path}: its chunk index cannot be read: {exc!r}"
                        raise DataSetError(msg) from exc
                    if len(_OFFSET_TABLES) >= _OFFSET_TABLES_KEPT:
                        _OFFSET_TABLES.pop(next(iter(_OFFSET_TABLES)))
                    _OFFSET_TABLES[key] = offsets
            self._frame_offsets = offsets
        return offsets

    def _read_frame_offsets(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        import h5py  # noqa: PLC0415 - only HDF5 datasets need it

        grid = tuple(math.ceil(n / c) for n, c in zip(self.stored_nav, self.chunk_nav, strict=True))
        chunk_offsets = np.full(grid, -1, dtype=np.int64)
        dims = len(self.chunk_nav)

        def note(info: Any) -> None:
            index = tuple(o // c for o, c in zip(info.chunk_offset[:dims], self.chunk_nav, strict=True))
            if all(i < n for i, n in zip(index, grid, strict=True)):  # a resizable array may have grown since
                chunk_offsets[index] = info.byte_offset

        with h5py.File(self.path, "r", locking=False) as file:
            array = file[self.ds_path]
            if hasattr(array.id, "chunk_iter"):
                array.id.chunk_iter(note)
            else:  # pragma: no cover - HDF5 before 1.14
                for i in range(array.id.get_num_chunks()):
                    note(array.id.get_chunk_info(i))
        if (chunk_offsets < 0).any():
            msg = f"{self.path}:{self.ds_path}: chunks went missing after the file was loaded"
            raise DataSetError(msg)
        index = np.unravel_index(np.arange(self.num_frames), self.stored_nav)
        chunk = tuple(i // c for i, c in zip(index, self.chunk_nav, strict=True))
        inside = np.ravel_multi_index(tuple(i % c for i, c in zip(index, self.chunk_nav, strict=True)), self.chunk_nav)
        offsets: np.ndarray[Any, np.dtype[np.int64]] = chunk_offsets[chunk] + inside * self.frame_nbytes
        return offsets

    def file_segments(self, stored_start: int, count: int) -> list[tuple[int, int]]:
        """Pieces of consecutive bytes: a chunk's frames along the last nav axis, or more where chunks adjoin."""
        positions = self._offsets()[stored_start : stored_start + count]
        if positions[-1] - positions[0] == (count - 1) * self.frame_nbytes and (
            count < 3 or (np.diff(positions) == self.frame_nbytes).all()
        ):
            return [(int(positions[0]), count)]
        breaks = np.flatnonzero(np.diff(positions) != self.frame_nbytes) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [count]])
        return [(int(positions[a]), int(b - a)) for a, b in zip(starts, stops, strict=True)]
