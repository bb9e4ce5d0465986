"""Built-in UDFs; each runs on ``numpy`` and ``cupy``."""

from __future__ import annotations

from gpuudf.udfs.noop import NoOpUDF
from gpuudf.udfs.sum import SumSigUDF, SumUDF

__all__ = ["NoOpUDF", "SumSigUDF", "SumUDF"]
