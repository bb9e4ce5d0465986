"""Sum of all frames, and sum of each frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.udf import UDF

__all__ = ["SumSigUDF", "SumUDF"]

#: Frames at least this large are added one by one on the CPU (see SumUDF.process_tile).
_INPLACE_FRAME_NBYTES = 128 * 2**10


class SumUDF(UDF):
    """Sum over the navigation axes: one frame-shaped ``intensity``.

    Parameters
    ----------
    dtype
        Accumulation dtype; at least ``float32`` and the data's own.
    """

    def __init__(self, dtype: Any = "float32") -> None:
        super().__init__(dtype=dtype)

    def get_preferred_input_dtype(self) -> Any:
        return self.params.dtype

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"intensity": self.buffer(kind="sig", dtype=self.meta.input_dtype)}

    def process_tile(self, tile: Any) -> None:
        intensity = self.results.intensity
        if self.meta.array_backend == "numpy" and tile[0].nbytes >= _INPLACE_FRAME_NBYTES:
            # large frames: add each in place; a tile sum would cost a
            # frame-sized temporary, a copy and an extra add per tile
            for frame in tile:
                intensity += frame
        else:
            intensity += self.xp.sum(tile, axis=0)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.intensity[:] += src.intensity

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


class SumSigUDF(UDF):
    """Sum over the signal axes: one ``intensity`` value per frame."""

    def __init__(self, dtype: Any = "float32") -> None:
        super().__init__(dtype=dtype)

    def get_preferred_input_dtype(self) -> Any:
        return self.params.dtype

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"intensity": self.buffer(kind="nav", dtype=self.meta.input_dtype)}

    def process_tile(self, tile: Any) -> None:
        sig_axes = tuple(range(1, tile.ndim))
        self.results.intensity[:] = self.xp.sum(tile, axis=sig_axes)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")
