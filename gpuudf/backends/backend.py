"""The Backend notion: one array module bound to one device.

Policy
------
A backend owns everything device-specific that the worker side of a run
needs: allocating result buffers, getting tiles of native-dtype frames onto
the device, casting them there, and bringing results home as NumPy.  The
engine (``gpuudf.task``) talks only to this interface, so the same partition
loop runs on a CPU core, a CUDA GPU or the simulated device.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from typing import Any, Protocol

import numpy as np

from gpuudf.shape import Positions

__all__ = ["PAGE_NBYTES", "Backend", "FrameReader", "page_aligned_empty"]

#: Host buffers that file reads fill start on this boundary.
PAGE_NBYTES = 4096


def page_aligned_empty(nbytes: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """``nbytes`` uninitialised bytes starting on a page boundary.

    Large NumPy buffers start 16 bytes into a page; the kernel copies file
    data into them several times slower (4 KiB aliasing between source and
    destination) than into a page-aligned buffer.
    """
    raw = np.empty(nbytes + PAGE_NBYTES, dtype=np.uint8)
    skip = -raw.ctypes.data % PAGE_NBYTES
    return raw[skip : skip + nbytes]


class FrameReader(Protocol):
    """Reads the frames at flat positions.

    It fills ``out`` and returns it; without ``out``, or with
    ``prefer_view`` where the frames already lie in (mapped) memory, it may
    return a read-only view instead.
    """

    def __call__(
        self, positions: Positions, out: np.ndarray[Any, Any] | None, /, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]: ...


class Backend(ABC):
    """An array module on one device, as a worker uses it."""

    #: ``"numpy"`` or ``"cupy"``: what ``get_backends()`` names.
    array_backend: str
    #: ``"cpu"`` or ``"cuda"``.
    device_class: str
    #: GPU index for CUDA backends, ``None`` on the CPU.
    device_id: int | None
    #: Bytes of input data per tile when a UDF states no preference.
    default_tile_nbytes: int
    #: Threads a UDF may use in ``process_*`` (``meta.threads_per_worker``); ``None``: no limit set.
    threads_per_worker: int | None = None

    @property
    @abstractmethod
    def xp(self) -> Any:
        """The array module UDF code uses as ``self.xp``."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        """A zeroed array on the device."""

    @abstractmethod
    def to_host(self, array: Any) -> np.ndarray[Any, Any]:
        """A NumPy copy (or the array itself when it already is NumPy)."""

    @abstractmethod
    def iter_tiles(
        self,
        read: FrameReader,
        tiles: Sequence[Positions],
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
        source: np.ndarray[Any, Any] | None = None,
    ) -> Generator[Any, None, None]:
        """Yield each tile's frames on the device, native dtype, in order.

        ``source``, when given, is the dataset's whole ``(frames, *sig)``
        array in host memory, for backends that can copy from it directly.
        """

    def cast(self, tile: Any, dtype: np.dtype[Any]) -> Any:
        """``tile`` as ``dtype``, converted on the device; no copy when it already is."""
        if tile.dtype == dtype:
            return tile
        return tile.astype(dtype)

    def synchronize(self) -> None:
        """Wait for all queued device work (a no-op on the CPU)."""

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """Make this device (and its compute stream) current while a partition runs."""
        return contextlib.nullcontext()

    #: No tile larger than this, whatever a UDF prefers.
    max_tile_nbytes: int = 512 * 2**20

    def tile_budget_nbytes(self, preferred: int | None = None) -> int:
        """Bytes of input data one tile may take: ``preferred`` or the default, within limits."""
        wanted = self.default_tile_nbytes if preferred is None else preferred
        return max(1, min(wanted, self.max_tile_nbytes))

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the device ran out of memory."""
        return False

    def release_memory(self) -> None:
        """Give cached memory back before a retry with smaller tiles."""

    def close(self) -> None:
        """Release what the backend holds beyond memory pools (threads, registrations)."""

    def describe(self) -> str:
        """A short device name for messages, e.g. ``cpu`` or ``cuda:0``."""
        if self.device_id is None:
            return self.device_class
        return f"{self.device_class}:{self.device_id}"
