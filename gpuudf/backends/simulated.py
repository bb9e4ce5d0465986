"""A simulated CUDA device: NumPy underneath, CuPy's rules on top.

Policy
------
The simulated device exists so that CI, which has no GPU, runs the whole
CUDA data path (``device.py``) and every UDF the way a GPU would:

- Its arrays (:class:`SimulatedArray`) refuse implicit conversion to NumPy
  exactly where CuPy's do: ``numpy.asarray(a)``, ``host[...] = a``, mixing a
  device array with a NumPy array in one operation, and a non-scalar NumPy
  array assigned into anything but a whole device array.  Reductions return
  0-d device arrays, not scalars, as CuPy's do.  Dtypes CuPy has no arrays
  of (strings, objects, datetimes, records) are refused at allocation.  ``float(a)``, ``int(a)``,
  ``a.item()`` and ``a.get()`` work (they synchronise on a GPU).
- Every crossing of the simulated bus is counted in :data:`TRANSFERS`, so a
  test can assert the transfer pattern of a run (one host-to-device copy per
  tile, one device-to-host copy per result buffer and partition).
- Streams and events are synchronous stand-ins; pinned memory is plain
  memory whose allocations are counted.
- ``max_alloc_nbytes`` makes large allocations fail with
  :class:`SimulatedOutOfMemoryError`, to test out-of-memory handling.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.lib.mixins

from gpuudf.backends.device import DeviceAPI, DeviceBackend

__all__ = [
    "TRANSFERS",
    "SimulatedAPI",
    "SimulatedArray",
    "SimulatedArrayModule",
    "SimulatedOutOfMemoryError",
    "TransferCounters",
    "make_simulated_backend",
]

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)


class SimulatedOutOfMemoryError(MemoryError):
    """An allocation on the simulated device exceeded ``max_alloc_nbytes``."""


@dataclass
class TransferCounters:
    """Bus crossings and pinned allocations since the last :meth:`reset`."""

    h2d_copies: int = 0
    h2d_nbytes: int = 0
    d2h_copies: int = 0
    d2h_nbytes: int = 0
    pinned_allocations: int = 0
    host_registrations: int = 0

    def reset(self) -> None:
        """Set every counter to zero."""
        for f in fields(self):
            setattr(self, f.name, 0)


#: The process-wide transfer counters of the simulated device.
TRANSFERS = TransferCounters()


def _unwrap(value: Any) -> Any:
    """Device operands to NumPy; host arrays are refused, as CuPy refuses them."""
    if isinstance(value, SimulatedArray):
        return value._array  # noqa: SLF001
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return value[()]
        msg = f"Unsupported type {type(value)}"
        raise TypeError(msg)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):  # a Shape too: its constructor takes more than the items
        return tuple(_unwrap(v) for v in value)
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return SimulatedArray(value)
    if isinstance(value, np.generic):
        return SimulatedArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _index(key: Any) -> Any:
    if isinstance(key, SimulatedArray):
        return key._array  # noqa: SLF001
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key


def _is_whole(key: Any) -> bool:
    return key is Ellipsis or (isinstance(key, slice) and key == slice(None))


class SimulatedArray(numpy.lib.mixins.NDArrayOperatorsMixin):
    """An array on the simulated device; see the module policy for its rules."""

    __slots__ = ("_array",)
    _array: np.ndarray[Any, Any]

    def __init__(self, array: np.ndarray[Any, Any]) -> None:
        self._array = array

    # -- the conversions CuPy refuses ------------------------------------------
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray[Any, Any]:
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(o) for o in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*(_unwrap(i) for i in inputs), **kwargs))

    def __array_function__(self, func: Callable[..., Any], types: Any, args: Any, kwargs: Any) -> Any:
        return _wrap(func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    # -- the conversions CuPy allows -------------------------------------------
    def get(self, stream: Any = None, out: np.ndarray[Any, Any] | None = None) -> np.ndarray[Any, Any]:
        """Copy to the host (counted as one device-to-host transfer)."""
        TRANSFERS.d2h_copies += 1
        TRANSFERS.d2h_nbytes += self._array.nbytes
        if out is None:
            return self._array.copy()
        out[...] = self._array
        return out

    def set(self, array: np.ndarray[Any, Any], stream: Any = None) -> None:
        """Copy a host array of the same shape in (one host-to-device transfer)."""
        if array.shape != self._array.shape or array.dtype != self._array.dtype:
            msg = f"set() needs shape {self._array.shape} {self._array.dtype}, got {array.shape} {array.dtype}"
            raise ValueError(msg)
        TRANSFERS.h2d_copies += 1
        TRANSFERS.h2d_nbytes += array.nbytes
        self._array[...] = array

    def item(self) -> Any:
        """The single value, on the host."""
        return self._array.item()

    def tolist(self) -> Any:
        """Nested lists on the host."""
        return self._array.tolist()

    def __float__(self) -> float:
        return float(self._array)

    def __int__(self) -> int:
        return int(self._array)

    def __complex__(self) -> complex:
        return complex(self._array)

    def __bool__(self) -> bool:
        return bool(self._array)

    def __index__(self) -> int:
        return self._array.__index__()

    # -- indexing ---------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        result = self._array[_index(key)]
        return SimulatedArray(result) if isinstance(result, np.ndarray) else SimulatedArray(np.asarray(result))

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, np.ndarray) and value.ndim > 0:
            if not _is_whole(key):
                msg = "non-scalar numpy.ndarray cannot be used for fill"
                raise ValueError(msg)
            TRANSFERS.h2d_copies += 1
            TRANSFERS.h2d_nbytes += value.nbytes
            self._array[...] = value
            return
        self._array[_index(key)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    # -- everything else: NumPy's methods and attributes, results kept on device --
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            # __array_interface__ and friends would hand NumPy the memory behind CuPy's back
            raise AttributeError(name)
        attribute = getattr(self._array, name)
        if callable(attribute):

            def method(*args: Any, **kwargs: Any) -> Any:
                return _wrap(attribute(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

            return method
        return _wrap(attribute)

    @property
    def shape(self) -> tuple[int, ...]:
        """As NumPy's."""
        return tuple(self._array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """As NumPy's."""
        dtype: np.dtype[Any] = self._array.dtype
        return dtype

    @property
    def ndim(self) -> int:
        """As NumPy's."""
        return self._array.ndim

    @property
    def size(self) -> int:
        """As NumPy's."""
        return self._array.size

    @property
    def nbytes(self) -> int:
        """As NumPy's."""
        return self._array.nbytes

    def __repr__(self) -> str:
        return f"SimulatedArray({self._array!r})"


_CREATION = frozenset(
    {"zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "arange", "linspace",
     "eye", "identity", "indices", "mgrid", "ogrid", "meshgrid", "logspace", "geomspace", "tri"}
)  # fmt: skip


class SimulatedArrayModule:
    """``self.xp`` on the simulated device: NumPy's namespace, CuPy's rules.

    Parameters
    ----------
    max_alloc_nbytes
        Allocations above this raise :class:`SimulatedOutOfMemoryError`.
    """

    ndarray = SimulatedArray

    def __init__(self, max_alloc_nbytes: int | None = None, namespace: types.ModuleType = np) -> None:
        self.max_alloc_nbytes = max_alloc_nbytes
        self._namespace = namespace

    def _check(self, array: np.ndarray[Any, Any]) -> None:
        if array.dtype.kind not in "biufc":
            msg = f"Unsupported dtype {array.dtype}"  # as CuPy: no strings, objects, datetimes, records
            raise ValueError(msg)
        if self.max_alloc_nbytes is not None and array.nbytes > self.max_alloc_nbytes:
            msg = f"simulated device: out of memory allocating {array.nbytes} bytes"
            raise SimulatedOutOfMemoryError(msg)

    def asarray(self, value: Any, dtype: Any = None) -> SimulatedArray:
        """To the device; a host array costs one host-to-device transfer."""
        if isinstance(value, SimulatedArray):
            return value if dtype is None else value.astype(dtype)
        array = np.array(value, dtype=dtype)
        self._check(array)
        if isinstance(value, np.ndarray):
            TRANSFERS.h2d_copies += 1
            TRANSFERS.h2d_nbytes += array.nbytes
        return SimulatedArray(array)

    array = asarray

    def asnumpy(self, value: Any, stream: Any = None, out: np.ndarray[Any, Any] | None = None) -> Any:
        """To the host; a device array costs one device-to-host transfer."""
        if isinstance(value, SimulatedArray):
            return value.get(out=out)
        return np.asarray(value)

    def get_array_module(self, *args: Any) -> Any:
        """The simulated module when any argument is a device array, else NumPy."""
        return self if any(isinstance(a, SimulatedArray) for a in args) else np

    def __reduce__(self) -> tuple[Callable[..., SimulatedArrayModule], tuple[int | None, str]]:
        # CuPy's xp is a module, which a UDF pickles by name; this stand-in travels the same way
        return (_simulated_module, (self.max_alloc_nbytes, self._namespace.__name__))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._namespace, name)
        if isinstance(attribute, types.ModuleType):
            return SimulatedArrayModule(self.max_alloc_nbytes, attribute)
        if name in ("mgrid", "ogrid", "r_", "c_"):
            return _IndexTricks(attribute)
        if isinstance(attribute, type) or not callable(attribute):
            return attribute  # dtypes, constants
        creation = name in _CREATION

        def function(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
            if creation and isinstance(result, np.ndarray):
                self._check(result)
            return _wrap(result)

        function.__name__ = name
        return function


def _simulated_module(max_alloc_nbytes: int | None, namespace: str) -> SimulatedArrayModule:
    """A :class:`SimulatedArrayModule` re-created from what ``__reduce__`` gave (a copy, an unpickling)."""
    return SimulatedArrayModule(max_alloc_nbytes, importlib.import_module(namespace))


class _IndexTricks:
    """``mgrid``, ``ogrid``, ``r_``, ``c_``: indexed, not called; results on the device."""

    def __init__(self, trick: Any) -> None:
        self._trick = trick

    def __getitem__(self, key: Any) -> Any:
        result = self._trick[key]
        return [_wrap(r) for r in result] if isinstance(result, list) else _wrap(result)


class _Stream:
    """A stream stand-in: work is synchronous, so it only has to be usable."""

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def synchronize(self) -> None:
        return None


class _Event:
    def record(self, stream: Any = None) -> None:
        return None

    def synchronize(self) -> None:
        return None


class SimulatedAPI(DeviceAPI):
    """Device operations of the simulated device."""

    def __init__(self, max_alloc_nbytes: int | None = None, free_nbytes: int = 16 * 2**30) -> None:
        self.xp = SimulatedArrayModule(max_alloc_nbytes)
        self._free_nbytes = free_nbytes
        self.released = 0

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def stream(self) -> Any:
        return _Stream()

    def event(self) -> Any:
        return _Event()

    def wait_event(self, stream: Any, event: Any) -> None:
        return None

    def empty_pinned(self, nbytes: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        TRANSFERS.pinned_allocations += 1
        return np.empty(nbytes, dtype=np.uint8)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        return self.xp.zeros(shape, dtype=dtype)

    def copy_to_device(self, dst: Any, src: np.ndarray[Any, Any], stream: Any) -> None:
        dst.set(src, stream=stream)

    def copy_to_host(self, dst: np.ndarray[Any, Any], src: Any, stream: Any) -> None:
        src.get(stream=stream, out=dst)

    def synchronize_stream(self, stream: Any) -> None:
        return None

    def register_host(self, array: np.ndarray[Any, Any]) -> None:
        TRANSFERS.host_registrations += 1

    def unregister_host(self, address: int) -> None:
        TRANSFERS.host_registrations -= 1

    def free_nbytes(self) -> int:
        return self._free_nbytes

    def release_memory(self) -> None:
        self.released += 1

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return isinstance(exc, SimulatedOutOfMemoryError)


def make_simulated_backend(
    device_id: int = 0, max_alloc_nbytes: int | None = None, free_nbytes: int = 16 * 2**30
) -> DeviceBackend:
    """A CUDA-class backend on the simulated device."""
    return DeviceBackend(SimulatedAPI(max_alloc_nbytes, free_nbytes), device_id, label="sim")
