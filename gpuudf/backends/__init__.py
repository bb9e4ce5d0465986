"""Array backends: NumPy on CPU cores, CuPy on CUDA GPUs, a simulated device for tests."""

from __future__ import annotations

from gpuudf.backends.backend import Backend, FrameReader
from gpuudf.backends.cpu import NumpyBackend

__all__ = ["Backend", "FrameReader", "NumpyBackend"]
