"""gpuudf: user-defined functions over N-D detector data, on CPUs and GPUs alike."""

from __future__ import annotations

from gpuudf.buffers import BufferWrapper
from gpuudf.context import Context
from gpuudf.errors import BackendUnavailableError, DataSetError, UDFDefinitionError, UDFRunCancelled, WorkerError
from gpuudf.shape import Shape
from gpuudf.udf import UDF

__all__ = [
    "BackendUnavailableError",
    "BufferWrapper",
    "Context",
    "DataSetError",
    "Shape",
    "UDF",
    "UDFDefinitionError",
    "UDFRunCancelled",
    "WorkerError",
    "__version__",
]

__version__ = "0.1.0"
