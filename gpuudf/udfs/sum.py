"""Sum of all frames, and sum of each frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.udf import UDF

__all__ = ["SumSigUDF", "SumUDF"]

#: Tile size SumUDF prefers on a CPU: deep tiles amortise the per-tile add into the total.
_CPU_TILE_NBYTES = 16 * 2**20


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

    def get_tiling_preferences(self) -> Mapping[str, int]:
        # On a CPU deep tiles amortise the one extra frame-sized add per tile;
        # SumUDF has no tile-sized temporaries that would outgrow the caches.
        if self.meta.device_class == "cpu":
            return {"total_size": _CPU_TILE_NBYTES}
        return {}

    def preprocess(self) -> None:
        self._tile_sum = self.xp.empty(self.meta.dataset_shape.sig, dtype=self.meta.input_dtype)

    def process_tile(self, tile: Any) -> None:
        # into a reused buffer: a fresh frame-sized result per tile costs page faults
        self.xp.sum(tile, axis=0, out=self._tile_sum)
        self.results.intensity[:] += self._tile_sum

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
