"""The NumPy backend of CPU workers."""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from gpuudf.backends.backend import Backend, FrameReader, page_aligned_empty
from gpuudf.shape import Positions

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """Computes with NumPy in the worker's own memory.

    Tiles are a few MiB so that a tile and the UDF's temporaries stay in the
    core's cache.  Memory datasets and memory-mapped files hand out views,
    so nothing is copied; other reads fill one buffer that the backend reuses
    for every tile of every run, so a worker's memory holds one tile of file
    data.  A tile is therefore valid until the next one is requested.
    """

    array_backend = "numpy"
    device_class = "cpu"
    device_id = None
    default_tile_nbytes = 8 * 2**20

    def __init__(self) -> None:
        self._tile_buffer = np.empty(0, dtype=np.uint8)

    @property
    def xp(self) -> Any:
        return np

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
        if dtype.kind == "O":
            return np.full(shape, None, dtype=dtype)
        return np.zeros(shape, dtype=dtype)

    def to_host(self, array: Any) -> np.ndarray[Any, Any]:
        return np.asarray(array)

    def iter_tiles(
        self,
        read: FrameReader,
        tiles: Sequence[Positions],
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
        source: np.ndarray[Any, Any] | None = None,
    ) -> Generator[np.ndarray[Any, Any], None, None]:
        if source is not None:
            for positions in tiles:
                yield read(positions, None)
            return
        frame_nbytes = math.prod(frame_shape) * dtype.itemsize
        nbytes = max((len(t) for t in tiles), default=0) * frame_nbytes
        if self._tile_buffer.nbytes < nbytes:
            self._tile_buffer = np.empty(0, dtype=np.uint8)  # drop the old one before allocating
            self._tile_buffer = page_aligned_empty(nbytes)
        for positions in tiles:
            shape = (len(positions), *frame_shape)
            out = self._tile_buffer[: len(positions) * frame_nbytes].view(dtype).reshape(shape)
            yield read(positions, out, prefer_view=True)
