"""The NumPy backend of CPU workers."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from gpuudf.backends.backend import Backend, FrameReader
from gpuudf.shape import Positions

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """Computes with NumPy in the worker's own memory.

    Tiles are a few MiB so that a tile and the UDF's temporaries stay in the
    core's cache; memory datasets hand out views, so nothing is copied.
    """

    array_backend = "numpy"
    device_class = "cpu"
    device_id = None
    default_tile_nbytes = 8 * 2**20

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
        for positions in tiles:
            yield read(positions, None)
