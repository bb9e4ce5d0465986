"""A UDF that reads every tile and computes nothing: for tests and for timing the data path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuudf.buffers import BufferDeclaration
from gpuudf.udf import UDF

__all__ = ["NoOpUDF"]


class NoOpUDF(UDF):
    """Reads the data tile by tile and returns no buffers (LiberTEM's ``NoOpUDF``).

    Parameters
    ----------
    preferred_input_dtype
        The dtype tiles are cast to; by default the data's own.
    """

    def __init__(self, preferred_input_dtype: Any = UDF.USE_NATIVE_DTYPE) -> None:
        super().__init__(preferred_input_dtype=preferred_input_dtype)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {}

    def get_preferred_input_dtype(self) -> Any:
        return self.params.preferred_input_dtype

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def process_tile(self, tile: Any) -> None:
        """Do nothing with the tile."""
