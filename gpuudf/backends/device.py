"""The data path of a CUDA-like device, shared by CuPy and the simulated device.

Policy
------
The host-to-device link is the bottleneck for simple reductions, so the
path keeps it busy and copies frames as few times as it can:

- Frames that already sit in host memory as one array (memory datasets) are
  **page-locked in place** once per worker (``register_host``) and copied
  straight from there: no staging copy at all.  Where that is impossible
  (ROI-selected frames, memory that cannot be registered), frames go through
  the ring below.
- A **ring of pinned host buffers** (``RING_SIZE``) is allocated once per
  worker and reused for every tile of every run; it only grows when a tile
  of a later run is larger.
- A **feeder thread** reads frames straight from the dataset into the next
  free pinned slot, while the GPU works on earlier tiles; a large tile is
  read in ``READ_THREADS`` pieces at once, because one core's memory copy
  is slower than the bus.  A slot is free
  again once the host-to-device copy out of it has completed (its event).
- Each tile crosses the bus **once, in its native dtype**, as an
  asynchronous copy on the **copy stream** into a device staging slot; the
  **compute stream** waits for that copy's event, and the copy stream waits
  for the compute stream to be done with a staging slot before reusing it.
  So copy k+1 overlaps compute k.  The cast to the UDF's input dtype runs on
  the device.
- Result buffers stay on the device for the whole partition and come home
  once per partition through pinned memory.
- Device out-of-memory is recognised (``is_out_of_memory``) and the pool
  freed (``release_memory``) so the engine can retry with smaller tiles.

The device specifics (streams, events, pinned allocation, copies) are a
small :class:`DeviceAPI`, implemented with CuPy in ``cuda.py`` and with NumPy
stand-ins in ``simulated.py``, so CI exercises this very code.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.backends.backend import Backend, FrameReader
from gpuudf.shape import Positions

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["DeviceAPI", "DeviceBackend", "PipelineTimings"]


class DeviceAPI(ABC):
    """The few device operations the data path needs."""

    xp: Any

    @abstractmethod
    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """Make this device current in the calling thread."""

    @abstractmethod
    def stream(self) -> Any:
        """A new non-blocking stream; usable as a context manager making it current."""

    @abstractmethod
    def event(self) -> Any:
        """A new event with ``record(stream)`` and ``synchronize()``."""

    @abstractmethod
    def wait_event(self, stream: Any, event: Any) -> None:
        """Make ``stream`` wait for ``event`` without blocking the host."""

    @abstractmethod
    def empty_pinned(self, nbytes: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """Page-locked host memory of ``nbytes`` bytes."""

    @abstractmethod
    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        """An uninitialised device array."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        """A zeroed device array."""

    @abstractmethod
    def copy_to_device(self, dst: Any, src: np.ndarray[Any, Any], stream: Any) -> None:
        """Asynchronous copy of pinned ``src`` into device ``dst`` on ``stream``."""

    @abstractmethod
    def copy_to_host(self, dst: np.ndarray[Any, Any], src: Any, stream: Any) -> None:
        """Asynchronous copy of device ``src`` into pinned ``dst`` on ``stream``."""

    @abstractmethod
    def synchronize_stream(self, stream: Any) -> None:
        """Block until ``stream``'s work is done."""

    @abstractmethod
    def register_host(self, array: np.ndarray[Any, Any]) -> None:
        """Page-lock ``array``'s memory so copies out of it are direct and asynchronous."""

    @abstractmethod
    def unregister_host(self, address: int) -> None:
        """Undo :meth:`register_host` for the memory starting at ``address``."""

    @abstractmethod
    def free_nbytes(self) -> int:
        """Free device memory, pool included."""

    @abstractmethod
    def release_memory(self) -> None:
        """Return cached blocks of the memory pools to the device."""

    @abstractmethod
    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this device's out-of-memory error."""

    def is_device_array(self, array: Any) -> bool:
        """Whether ``array`` lives on this device."""
        return isinstance(array, self.xp.ndarray)


@dataclass
class PipelineTimings:
    """Where the data path's time went, summed over tiles since the last reset."""

    #: Feeder time spent reading frames into pinned slots.
    read_s: float = 0.0
    #: Time the consuming (compute) side waited for a filled slot.
    wait_for_data_s: float = 0.0

    def reset(self) -> None:
        """Zero both sums."""
        self.read_s = self.wait_for_data_s = 0.0


def _round_up_pow2(nbytes: int) -> int:
    """Sizes grow in powers of two, so partitions a frame apart share one allocation."""
    return 1 << max(nbytes - 1, 0).bit_length()


class _PinnedRing:
    """``size`` pinned slots, each with the event of the last copy out of it."""

    MIN_SLOT_NBYTES = 2**20

    def __init__(self, api: DeviceAPI, size: int) -> None:
        self.api = api
        self.size = size
        self.slot_nbytes = 0
        self.slots: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
        self.allocations = 0

    def ensure(self, nbytes: int) -> None:
        if nbytes <= self.slot_nbytes:
            return
        nbytes = max(_round_up_pow2(nbytes), self.MIN_SLOT_NBYTES)
        self.slots = []  # drop the old ring before allocating the larger one
        self.slots = [self.api.empty_pinned(nbytes) for _ in range(self.size)]
        self.slot_nbytes = nbytes
        self.allocations += 1

    def view(self, slot: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
        nbytes = math.prod(shape) * dtype.itemsize
        return self.slots[slot][:nbytes].view(dtype).reshape(shape)


class DeviceBackend(Backend):
    """A CUDA-like device fed through pinned memory; see the module policy.

    Parameters
    ----------
    api
        The device operations.
    device_id
        The GPU index, as in ``cuda:N``.
    label
        The device kind in names: ``cuda``, or ``sim`` for the simulated device.
    """

    array_backend = "cupy"
    device_class = "cuda"
    default_tile_nbytes = 32 * 2**20
    #: Pinned host slots (and device staging slots) in the ring.
    RING_SIZE = 3
    #: Share of free device memory one tile may take (ring, casts and UDF temporaries need the rest).
    FREE_MEMORY_SHARE_PER_TILE = 1 / 16

    #: Threads that fill one pinned slot together (NumPy copies release the GIL).
    READ_THREADS = min(8, os.cpu_count() or 1)
    #: Below this many bytes per thread a tile is read by the feeder alone.
    MIN_READ_NBYTES_PER_THREAD = 4 * 2**20

    def __init__(self, api: DeviceAPI, device_id: int, label: str = "cuda") -> None:
        self.api = api
        self.label = label
        self._read_pool: ThreadPoolExecutor | None = None
        self.timings = PipelineTimings()
        self._registered: dict[tuple[int, int], weakref.finalize[Any, Any]] = {}
        self._unregistrable: set[tuple[int, int]] = set()
        self.device_id = device_id
        self._ring = _PinnedRing(api, self.RING_SIZE)
        self._staging: list[Any] = []
        self._staging_nbytes = 0
        with api.activate():
            self.copy_stream = api.stream()
            self.compute_stream = api.stream()

    @property
    def xp(self) -> Any:
        return self.api.xp

    @property
    def pinned_ring_allocations(self) -> int:
        """How often the pinned ring was (re)allocated; once per worker normally."""
        return self._ring.allocations

    def describe(self) -> str:
        return f"{self.label}:{self.device_id}"

    def tile_budget_nbytes(self, preferred: int | None = None) -> int:
        """Tens of MiB by default, always capped by a share of the device's free memory."""
        with self.api.activate():
            free_share = int(self.api.free_nbytes() * self.FREE_MEMORY_SHARE_PER_TILE)
        return max(1, min(super().tile_budget_nbytes(preferred), free_share))

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        stack = contextlib.ExitStack()
        stack.enter_context(self.api.activate())
        stack.enter_context(self.compute_stream)
        return stack

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        return self.api.zeros(shape, dtype)

    def to_host(self, array: Any) -> np.ndarray[Any, Any]:
        if not self.api.is_device_array(array):
            return np.asarray(array)
        pinned = self.api.empty_pinned(max(array.nbytes, 1))
        staged: np.ndarray[Any, Any] = pinned[: array.nbytes].view(array.dtype).reshape(array.shape)
        self.api.copy_to_host(staged, array, self.compute_stream)
        self.api.synchronize_stream(self.compute_stream)
        return staged.copy()  # the pinned block goes back to its pool

    def synchronize(self) -> None:
        self.api.synchronize_stream(self.compute_stream)

    def release_memory(self) -> None:
        self._staging = []
        self._staging_nbytes = 0
        self.api.release_memory()

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return self.api.is_out_of_memory(exc)

    def _read(self, read: FrameReader, positions: Positions, out: np.ndarray[Any, Any]) -> None:
        """Fill ``out`` with the frames at ``positions``, in pieces on several threads when large."""
        pieces = min(self.READ_THREADS, out.nbytes // self.MIN_READ_NBYTES_PER_THREAD, len(positions))
        if pieces < 2:
            read(positions, out)
            return
        if self._read_pool is None:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - large tiles only

            self._read_pool = ThreadPoolExecutor(self.READ_THREADS, thread_name_prefix="gpuudf-read")
        bounds = np.linspace(0, len(positions), pieces + 1).astype(int)
        futures = [self._read_pool.submit(read, positions[a:b], out[a:b]) for a, b in itertools.pairwise(bounds)]
        for future in futures:
            future.result()

    def _ensure_staging(self, nbytes: int) -> None:
        if nbytes <= self._staging_nbytes:
            return
        nbytes = _round_up_pow2(nbytes)
        self._staging = []
        self._staging = [self.api.empty((nbytes,), np.dtype(np.uint8)) for _ in range(self.RING_SIZE)]
        self._staging_nbytes = nbytes

    def _ensure_registered(self, source: np.ndarray[Any, Any]) -> bool:
        """Page-lock ``source`` once; ``False`` where the device refuses."""
        key = (source.ctypes.data, source.nbytes)
        if key in self._registered:
            return True
        if key in self._unregistrable or not source.flags.c_contiguous or source.nbytes == 0:
            return False
        try:
            with self.api.activate():
                self.api.register_host(source)
        except Exception:  # noqa: BLE001 - e.g. overlapping registration: fall back to the ring
            self._unregistrable.add(key)
            return False

        def unregister(api: DeviceAPI = self.api, registered: dict[Any, Any] = self._registered) -> None:
            registered.pop(key, None)
            with contextlib.suppress(Exception), api.activate():
                api.unregister_host(key[0])

        self._registered[key] = weakref.finalize(source, unregister)
        return True

    def close(self) -> None:
        """Unregister page-locked dataset memory and stop the read threads."""
        for finalizer in list(self._registered.values()):
            finalizer()
        if self._read_pool is not None:
            self._read_pool.shutdown()
            self._read_pool = None

    def iter_tiles(
        self,
        read: FrameReader,
        tiles: Sequence[Positions],
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
        source: np.ndarray[Any, Any] | None = None,
    ) -> Generator[Any, None, None]:
        if not tiles:
            return
        if source is not None and all(isinstance(t, range) for t in tiles) and self._ensure_registered(source):
            yield from self._iter_registered(source, tiles, frame_shape, dtype)
            return
        yield from self._iter_through_ring(read, tiles, frame_shape, dtype)

    def _staging_view(self, slot: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        """The device staging slot ``slot`` as an array of ``shape``."""
        return self._staging[slot][: math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape)

    def _send(self, host: np.ndarray[Any, Any], device: Any, copy_done: Any, compute_done: Any) -> None:
        """Queue ``host`` → ``device`` on the copy stream once compute is done with the slot.

        The compute stream then waits for the copy; the host never blocks.
        """
        self.api.wait_event(self.copy_stream, compute_done)
        self.api.copy_to_device(device, host, self.copy_stream)
        copy_done.record(self.copy_stream)
        self.api.wait_event(self.compute_stream, copy_done)

    def _iter_registered(
        self,
        source: np.ndarray[Any, Any],
        tiles: Sequence[Positions],
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
    ) -> Generator[Any, None, None]:
        """Copy each tile straight from page-locked ``source``; the copy stream runs ahead."""
        api = self.api
        frame_nbytes = math.prod(frame_shape) * dtype.itemsize
        self._ensure_staging(max(len(t) for t in tiles) * frame_nbytes)
        copy_done = [api.event() for _ in range(self.RING_SIZE)]
        compute_done = [api.event() for _ in range(self.RING_SIZE)]
        for k, positions in enumerate(tiles):
            assert isinstance(positions, range)
            slot = k % self.RING_SIZE
            depth = len(positions)
            device = self._staging_view(slot, (depth, *frame_shape), dtype)
            self._send(source[positions.start : positions.stop], device, copy_done[slot], compute_done[slot])
            yield device
            compute_done[slot].record(self.compute_stream)

    def _iter_through_ring(
        self,
        read: FrameReader,
        tiles: Sequence[Positions],
        frame_shape: tuple[int, ...],
        dtype: np.dtype[Any],
    ) -> Generator[Any, None, None]:
        """Feeder thread fills pinned slots; each is copied to the device when filled."""
        import queue  # noqa: PLC0415 - only the ring path needs it

        api = self.api
        frame_nbytes = math.prod(frame_shape) * dtype.itemsize
        tile_nbytes = max(len(t) for t in tiles) * frame_nbytes
        self._ring.ensure(tile_nbytes)
        self._ensure_staging(tile_nbytes)
        ring_size = self.RING_SIZE
        copy_done = [api.event() for _ in range(ring_size)]
        compute_done = [api.event() for _ in range(ring_size)]
        free_slots: queue.Queue[int] = queue.Queue()
        filled: queue.Queue[tuple[int, int] | BaseException | None] = queue.Queue()
        stop = threading.Event()
        for slot in range(ring_size):
            free_slots.put(slot)

        def feed() -> None:
            try:
                with api.activate():
                    for positions in tiles:
                        slot = free_slots.get()
                        if stop.is_set():
                            return
                        copy_done[slot].synchronize()  # the copy out of this slot has finished
                        host = self._ring.view(slot, (len(positions), *frame_shape), dtype)
                        started = time.perf_counter()
                        self._read(read, positions, host)
                        self.timings.read_s += time.perf_counter() - started
                        filled.put((slot, len(positions)))
                filled.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
                filled.put(exc)

        feeder = threading.Thread(target=feed, name=f"gpuudf-feeder-{self.describe()}", daemon=True)
        feeder.start()
        try:
            while True:
                started = time.perf_counter()
                item = filled.get()
                self.timings.wait_for_data_s += time.perf_counter() - started
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                slot, depth = item
                device = self._staging_view(slot, (depth, *frame_shape), dtype)
                host = self._ring.view(slot, (depth, *frame_shape), dtype)
                self._send(host, device, copy_done[slot], compute_done[slot])
                free_slots.put(slot)  # the feeder may refill it once copy_done has fired
                yield device
                compute_done[slot].record(self.compute_stream)
        finally:
            stop.set()
            for slot in range(ring_size):
                free_slots.put(slot)  # unblock a feeder waiting for a slot
            feeder.join()
