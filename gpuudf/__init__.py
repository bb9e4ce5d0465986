"""gpuudf: user-defined functions over N-D detector data, on CPUs and GPUs alike."""

from __future__ import annotations

from gpuudf.aux_data import AuxData
from gpuudf.backends import detect
from gpuudf.context import Context, UDFResults
from gpuudf.errors import (
    BackendUnavailableError,
    DataSetError,
    DeviceOutOfMemoryError,
    ExecutorSpecException,
    InvalidMaskError,
    MissingMergeError,
    MissingProcessMethodError,
    UDFDefinitionError,
    UDFException,
    UDFRunCancelled,
    UndeclaredBufferError,
    UnpicklableParameterError,
    UseDiscouragedWarning,
    WorkerError,
)
from gpuudf.meta import UDFMeta
from gpuudf.results import ArrayWithMask, BufferWrapper
from gpuudf.runner import CancelHandle
from gpuudf.shape import Shape
from gpuudf.slice import Slice
from gpuudf.udf import UDF, UDFMethod

__all__ = [
    "UDF",
    "ArrayWithMask",
    "AuxData",
    "BackendUnavailableError",
    "BufferWrapper",
    "CancelHandle",
    "Context",
    "DataSetError",
    "DeviceOutOfMemoryError",
    "ExecutorSpecException",
    "InvalidMaskError",
    "MissingMergeError",
    "MissingProcessMethodError",
    "Shape",
    "Slice",
    "UDFDefinitionError",
    "UDFException",
    "UDFMeta",
    "UDFMethod",
    "UDFResults",
    "UDFRunCancelled",
    "UndeclaredBufferError",
    "UnpicklableParameterError",
    "UseDiscouragedWarning",
    "WorkerError",
    "__version__",
    "detect",
]

__version__ = "0.1.0"
