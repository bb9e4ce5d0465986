"""A dataset held in a NumPy array of the caller's."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuudf.datasets.dataset import DataSet, resolve_shape
from gpuudf.datasets.shared import SharedFrames
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
        shape = resolve_shape(data.shape, sig_dims, nav_shape, sig_shape)
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

    def read_frames(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Frames at ``positions``; a read-only view for a range without ``out`` (or with ``prefer_view``)."""
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
