"""gpuudf: user-defined functions over N-D detector data, on CPUs and GPUs alike."""

from __future__ import annotations

from gpuudf.backends import detect
from gpuudf.buffers import BufferWrapper
from gpuudf.context import Context, UDFResults
from gpuudf.errors import (
    BackendUnavailableError,
    DataSetError,
    DeviceOutOfMemoryError,
    UDFDefinitionError,
    UDFRunCancelled,
    WorkerError,
)
from gpuudf.runner import CancelHandle
from gpuudf.shape import Shape
from gpuudf.udf import UDF

__all__ = [
    "UDF",
    "BackendUnavailableError",
    "BufferWrapper",
    "CancelHandle",
    "Context",
    "DataSetError",
    "DeviceOutOfMemoryError",
    "Shape",
    "UDFDefinitionError",
    "UDFResults",
    "UDFRunCancelled",
    "WorkerError",
    "__version__",
    "detect",
]

__version__ = "0.1.0"
