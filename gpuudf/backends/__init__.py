"""Array backends: NumPy on CPU cores, CuPy on CUDA GPUs, a simulated device for tests."""

from __future__ import annotations

from gpuudf.backends.backend import Backend, FrameReader
from gpuudf.backends.cpu import NumpyBackend
from gpuudf.backends.devices import DeviceInventory, GPUInfo, detect, make_backend, parse_device

__all__ = [
    "Backend",
    "DeviceInventory",
    "FrameReader",
    "GPUInfo",
    "NumpyBackend",
    "detect",
    "make_backend",
    "parse_device",
]
