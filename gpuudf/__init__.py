"""gpuudf: user-defined functions over N-D detector data, on CPUs and GPUs alike."""

from __future__ import annotations

from gpuudf.backends import detect
from gpuudf.buffers import BufferWrapper
from gpuudf.context import Context
from gpuudf.errors import (
    BackendUnavailableError,
    DataSetError,
    DeviceOutOfMemoryError,
    UDFDefinitionError,
    UDFRunCancelled,
    WorkerError,
)
from gpuudf.shape import Shape
from gpuudf.udf import UDF

__all__ = [
    "UDF",
    "BackendUnavailableError",
    "BufferWrapper",
    "Context",
    "DataSetError",
    "DeviceOutOfMemoryError",
    "Shape",
    "UDFDefinitionError",
    "UDFRunCancelled",
    "WorkerError",
    "__version__",
    "detect",
]

__version__ = "0.1.0"
