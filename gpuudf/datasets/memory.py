"""A dataset held in a NumPy array of the caller's.

Policy: LiberTEM's ``MemoryDataSet`` keywords are taken where they mean
something here (``tileshape``, ``sync_offset``, ``tiledelay``,
``datashape``) or are harmless (``check_cast``, ``force_need_decode``,
``base_shape``, ``io_backend=None``), and refused by name where gpuudf
cannot do what they ask (another ``io_backend``, sparse ``array_backends``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gpuudf.datasets.dataset import DataSet, axes_of, resolve_shape, tile_depth_of
from gpuudf.datasets.shared import SharedFrames
from gpuudf.datasets.transport import ScatteredFrames, current_frame_transport
from gpuudf.errors import DataSetError
from gpuudf.shape import Positions

__all__ = ["MemoryDataSet"]


class MemoryDataSet(DataSet):
    """Frames from an in-memory NumPy array.

    Parameters
    ----------
    data
        The array, nav axes first.  It is not copied when C-contiguous; keep it
        unchanged while runs use it.
    sig_dims
        How many trailing axes form a frame (default 2).
    num_partitions
        Fixed partition count; by default chosen from the data size and the
        executor's workers.
    nav_shape, sig_shape
        Reinterpret the data with these axes (same number of values).
    sync_offset
        In frames: frame ``k`` is the array's frame ``k + sync_offset``;
        positive skips frames at the start (the last positions get none),
        negative leaves the first positions without one.  Runs do not
        process positions without a frame, as in LiberTEM.
    tileshape
        LiberTEM's ``(depth, *sig)``: tiles of at most ``depth`` frames; the
        sig part is accepted, tiles hold whole frames.
    tiledelay
        Seconds to sleep at each tile read (LiberTEM's aid for testing
        progress and cancellation); ``None`` or 0 for none.
    datashape
        Without ``data``: a float32 array of zeros of this shape.
    check_cast, force_need_decode, base_shape
        LiberTEM's; accepted and without effect (casts are never lossy, tiles
        hold whole frames); ``base_shape`` is checked like ``tileshape``.
    io_backend, array_backends
        ``io_backend``: only ``None``.  ``array_backends``: ``None`` or dense
        backends (``("numpy",)``, ``("numpy", "cupy")``), which is what a
        memory dataset gives anyway: NumPy on a CPU worker, CuPy on a GPU
        worker; sparse backends are refused.  A run's backends follow its UDFs.
    """

    kind = "memory"

    def __init__(
        self,
        data: Any = None,
        sig_dims: int | None = None,
        num_partitions: int | None = None,
        nav_shape: tuple[int, ...] | None = None,
        sig_shape: tuple[int, ...] | None = None,
        *,
        sync_offset: int = 0,
        tileshape: tuple[int, ...] | None = None,
        tiledelay: float | None = None,
        datashape: tuple[int, ...] | None = None,
        check_cast: bool = True,
        force_need_decode: bool = False,
        base_shape: tuple[int, ...] | None = None,
        io_backend: Any = None,
        array_backends: Any = None,
    ) -> None:
        for name, value in (("check_cast", check_cast), ("force_need_decode", force_need_decode)):
            if not isinstance(value, bool | np.bool_):
                msg = f"memory dataset: {name} must be True or False, got {value!r}"
                raise DataSetError(msg)
        dense = isinstance(array_backends, tuple | list) and set(array_backends) <= {"numpy", "cupy"}
        for name, given in (("io_backend", io_backend), ("array_backends", None if dense else array_backends)):
            if given is not None:
                msg = (
                    f"memory dataset: {name}={given!r} is not supported: frames are read from the array as dense "
                    "NumPy arrays (CuPy on a GPU worker), and run_udf(backends=...) chooses the array backends"
                )
                raise DataSetError(msg)
        self._tiledelay = _delay_of(tiledelay)
        if data is None:
            if datashape is None:
                msg = "memory dataset needs data (a NumPy array), or datashape for an array of zeros"
                raise DataSetError(msg)
            data = np.zeros(axes_of("datashape", datashape), dtype=np.float32)
        elif datashape is not None and tuple(axes_of("datashape", datashape)) != getattr(data, "shape", None):
            msg = f"memory dataset: datashape={datashape!r} contradicts the data's shape {getattr(data, 'shape', None)}"
            raise DataSetError(msg)
        if not isinstance(data, np.ndarray):
            msg = (
                f"memory dataset needs a NumPy array as data, got {type(data).__name__}; "
                "convert with numpy.asarray() (device arrays with .get())"
            )
            raise DataSetError(msg)
        if data.dtype.kind not in "biufc":
            msg = f"memory dataset needs numeric data, got dtype {data.dtype}"
            raise DataSetError(msg)
        if data.ndim < 2:
            msg = f"memory dataset needs at least 2 axes (nav and sig), got shape {data.shape}"
            raise DataSetError(msg)
        shape = resolve_shape(data.shape, sig_dims, nav_shape, sig_shape)
        super().__init__(shape, data.dtype, num_partitions, sync_offset=sync_offset, tileshape=tileshape)
        tile_depth_of(base_shape, shape, "base_shape")  # checked, then left alone: tiles hold whole frames
        frames = np.ascontiguousarray(data).reshape(shape.flat_nav)
        if frames.flags.writeable:
            # a view, so that a UDF cannot write into the caller's array
            frames = frames.view()
            frames.flags.writeable = False
        self._frames = frames
        self._shared: SharedFrames | ScatteredFrames | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_frames"]
        transport = current_frame_transport()
        if transport is not None:  # workers that may be elsewhere: the executor sends the frames, once
            state["_shared"] = transport.publish(self, self._frames)
            return state
        # worker processes on this machine get the frames through shared memory, copied once
        if self._shared is None:
            self._shared = state["_shared"] = SharedFrames.copy_of(self._frames)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        shared = self._shared
        assert shared is not None
        self._frames = shared.array()
        if isinstance(shared, ScatteredFrames):
            self._shared = None  # a copy on the worker: it never sends its frames on

    def host_frames(self) -> np.ndarray[Any, Any] | None:
        """The read-only ``(frames, *sig)`` view of the data; ``None`` where frames are shifted or delayed."""
        if self.sync_offset or self._tiledelay:
            return None
        return self._frames

    def read_stored(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Frames at ``positions``; a read-only view for a range without ``out`` (or with ``prefer_view``)."""
        if self._tiledelay:
            time.sleep(self._tiledelay)
        if isinstance(positions, range):
            view = self._frames[positions.start : positions.stop]
            if out is None or prefer_view:
                return view
            out[...] = view
            return out
        if out is None:
            return self._frames[positions]
        # mode="clip": positions are valid, and the default "raise" buffers the whole result first
        np.take(self._frames, positions, axis=0, out=out, mode="clip")
        return out


def _delay_of(tiledelay: Any) -> float:
    """``tiledelay`` in seconds, checked: ``None`` is 0.

    Raises
    ------
    DataSetError
        Naming ``tiledelay`` when it is not a number of at least 0.
    """
    if tiledelay is None:
        return 0.0
    if isinstance(tiledelay, bool) or not isinstance(tiledelay, int | float | np.integer | np.floating):
        msg = f"memory dataset: tiledelay must be a number of seconds, got {tiledelay!r}"
        raise DataSetError(msg)
    if not tiledelay >= 0:
        msg = f"memory dataset: tiledelay must be at least 0 seconds, got {tiledelay!r}"
        raise DataSetError(msg)
    return float(tiledelay)
