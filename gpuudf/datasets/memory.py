"""A dataset held in a NumPy array of the caller's."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpuudf.datasets.dataset import DataSet
from gpuudf.datasets.shared import SharedFrames
from gpuudf.errors import DataSetError
from gpuudf.shape import Positions, Shape

__all__ = ["MemoryDataSet"]


def _shape_from(
    array_shape: tuple[int, ...],
    sig_dims: int | None,
    nav_shape: tuple[int, ...] | None,
    sig_shape: tuple[int, ...] | None,
) -> Shape:
    """Resolve the dataset shape from an array shape and optional reshapes."""
    if sig_shape is not None:
        sig = tuple(int(n) for n in sig_shape)
        if sig_dims is not None and sig_dims != len(sig):
            msg = f"sig_dims={sig_dims} contradicts sig_shape={sig}"
            raise DataSetError(msg)
    else:
        dims = 2 if sig_dims is None else sig_dims
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims < len(array_shape):
            msg = (
                f"sig_dims={dims!r} does not fit data of shape {array_shape}: "
                f"need an int from 1 to {len(array_shape) - 1}"
            )
            raise DataSetError(msg)
        sig = array_shape[len(array_shape) - dims :]
    total = math.prod(array_shape)
    if nav_shape is not None:
        nav = tuple(int(n) for n in nav_shape)
    else:
        sig_size = math.prod(sig)
        if sig_size == 0:
            msg = f"dataset shape {array_shape} is empty: frames of shape {sig} hold no pixels"
            raise DataSetError(msg)
        if total % sig_size:
            msg = f"sig_shape={sig} does not divide data of shape {array_shape}"
            raise DataSetError(msg)
        nav = array_shape[: len(array_shape) - len(sig)]
        if sig_shape is not None:
            # keep the data's own nav axes where its trailing axes hold exactly one
            # frame: (5, 7, 9, 11) or (5, 7, 99) with sig_shape=(9, 11) -> nav (5, 7)
            splits = [k for k in range(1, len(array_shape)) if math.prod(array_shape[k:]) == sig_size]
            nav = array_shape[: splits[0]] if splits else (total // sig_size,)
    if math.prod(nav) * math.prod(sig) != total:
        msg = f"nav_shape={nav} and sig_shape={sig} hold {math.prod(nav) * math.prod(sig)} values, the data {total}"
        raise DataSetError(msg)
    if not nav:
        msg = f"data of shape {array_shape} has no navigation axis left with sig_dims={len(sig)}"
        raise DataSetError(msg)
    return Shape((*nav, *sig), sig_dims=len(sig))


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
    """

    def __init__(
        self,
        data: Any,
        sig_dims: int | None = None,
        num_partitions: int | None = None,
        nav_shape: tuple[int, ...] | None = None,
        sig_shape: tuple[int, ...] | None = None,
    ) -> None:
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
        shape = _shape_from(data.shape, sig_dims, nav_shape, sig_shape)
        super().__init__(shape, data.dtype, num_partitions)
        frames = np.ascontiguousarray(data).reshape(shape.flat_nav)
        if frames.flags.writeable:
            # a view, so that a UDF cannot write into the caller's array
            frames = frames.view()
            frames.flags.writeable = False
        self._frames = frames
        self._shared: SharedFrames | None = None

    def __getstate__(self) -> dict[str, Any]:
        # worker processes get the frames through shared memory, copied once
        if self._shared is None:
            self._shared = SharedFrames.copy_of(self._frames)
        state = self.__dict__.copy()
        del state["_frames"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        shared = self._shared
        assert shared is not None
        self._frames = shared.array()

    def host_frames(self) -> np.ndarray[Any, Any]:
        """The read-only ``(frames, *sig)`` view of the data."""
        return self._frames

    def read_frames(self, positions: Positions, out: np.ndarray[Any, Any] | None = None) -> np.ndarray[Any, Any]:
        """Frames at ``positions``; a read-only view for a range without ``out``."""
        if isinstance(positions, range):
            view = self._frames[positions.start : positions.stop]
            if out is None:
                return view
            out[...] = view
            return out
        if out is None:
            return self._frames[positions]
        # mode="clip": positions are valid, and the default "raise" buffers the whole result first
        np.take(self._frames, positions, axis=0, out=out, mode="clip")
        return out
