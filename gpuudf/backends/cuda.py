"""CuPy on NVIDIA GPUs, and GPU discovery through NVML.

Policy: this is the only module that imports ``cupy``, ``cupyx`` or
``pynvml``, and only inside functions, so ``import gpuudf`` and every
CPU-only run load none of them (a subprocess test proves it).  Discovery uses
NVML, which does not create a CUDA context; a missing driver, library or
package means "no GPU", quietly.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from gpuudf.backends.device import DeviceAPI, DeviceBackend
from gpuudf.backends.inventory import GPUInfo

__all__ = ["CupyAPI", "GPUInfo", "cupy_usable", "list_gpus", "make_cupy_backend", "sparse_to_cupy"]


def list_gpus() -> list[GPUInfo]:
    """The GPUs NVML sees; empty when there is no driver, NVML or nvidia-ml-py."""
    try:
        import pynvml  # noqa: PLC0415
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            gpus.append(
                GPUInfo(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    total_memory_nbytes=int(memory.total),
                    free_memory_nbytes=int(memory.free),
                )
            )
    except Exception:  # noqa: BLE001 - a GPU that cannot be queried is not usable
        return []
    else:
        return gpus
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def cupy_usable() -> bool:
    """Whether CuPy imports and sees at least one device (creates no context)."""
    try:
        import cupy  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - ImportError, or a CUDA library that fails to load
        return False
    try:
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # noqa: BLE001 - cudaErrorNoDevice, cudaErrorInsufficientDriver
        return False


class CupyAPI(DeviceAPI):
    """The data path's device operations, with CuPy on GPU ``device_id``."""

    def __init__(self, device_id: int) -> None:
        import cupy  # noqa: PLC0415
        import cupyx  # noqa: PLC0415

        self._cupy = cupy
        self._cupyx = cupyx
        self.device_id = device_id
        self.xp = cupy
        # the device is current in this thread from here on, so nothing lands on GPU 0 by default
        cupy.cuda.Device(device_id).use()

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return self._cupy.cuda.Device(self.device_id)  # type: ignore[no-any-return]

    def stream(self) -> Any:
        return self._cupy.cuda.Stream(non_blocking=True)

    def event(self) -> Any:
        return self._cupy.cuda.Event(disable_timing=True)

    def wait_event(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def empty_pinned(self, nbytes: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        return self._cupyx.empty_pinned((nbytes,), dtype=np.uint8)  # type: ignore[no-any-return]

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        return self._cupy.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        return self._cupy.zeros(shape, dtype=dtype)

    def copy_to_device(self, dst: Any, src: np.ndarray[Any, Any], stream: Any) -> None:
        dst.set(src, stream=stream)

    def copy_to_host(self, dst: np.ndarray[Any, Any], src: Any, stream: Any) -> None:
        src.get(stream=stream, out=dst)

    def synchronize_stream(self, stream: Any) -> None:
        stream.synchronize()

    def register_host(self, array: np.ndarray[Any, Any]) -> None:
        self._cupy.cuda.runtime.hostRegister(array.ctypes.data, array.nbytes, 0)

    def unregister_host(self, address: int) -> None:
        self._cupy.cuda.runtime.hostUnregister(address)

    def free_nbytes(self) -> int:
        free, _total = self._cupy.cuda.runtime.memGetInfo()
        return int(free) + int(self._cupy.get_default_memory_pool().free_bytes())

    def release_memory(self) -> None:
        self._cupy.get_default_memory_pool().free_all_blocks()
        self._cupy.get_default_pinned_memory_pool().free_all_blocks()

    def is_out_of_memory(self, exc: BaseException) -> bool:
        if isinstance(exc, self._cupy.cuda.memory.OutOfMemoryError):
            return True
        runtime_error = self._cupy.cuda.runtime.CUDARuntimeError
        return isinstance(exc, runtime_error) and "cudaErrorMemoryAllocation" in str(exc)


def make_cupy_backend(device_id: int) -> DeviceBackend:
    """The backend of a CUDA worker on GPU ``device_id``."""
    return DeviceBackend(CupyAPI(device_id), device_id)


def sparse_to_cupy(matrix: Any) -> Any:
    """A SciPy CSR matrix as a ``cupyx.scipy.sparse.csr_matrix`` on the current GPU."""
    import cupyx.scipy.sparse  # noqa: PLC0415

    return cupyx.scipy.sparse.csr_matrix(matrix)
