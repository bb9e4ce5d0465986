"""What every dataset offers the engine: shape, dtype, partitions, frames.

Policy
------
- All validation happens in the constructor, which ``Context.load`` calls:
  a dataset object that exists can be read.
- Positions are flat nav indices.  A partition is a contiguous run of them;
  a read names either a ``range`` (contiguous, the fast path) or an index
  array (frames selected by a ROI).
- ``read_frames`` returns frames in the dataset's native dtype.  It may return
  a read-only view of the dataset's own memory (or of a memory-mapped file);
  callers that need the frames in a buffer of theirs pass ``out``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpuudf.errors import DataSetError
from gpuudf.shape import Positions, Shape

__all__ = ["DataSet", "Partition", "axes_of", "resolve_shape", "split_evenly"]


@dataclass(frozen=True)
class Partition:
    """A contiguous run of frames, ``start <= flat nav index < stop``."""

    index: int
    start: int
    stop: int

    @property
    def num_frames(self) -> int:
        """Frames in the partition, ROI not applied."""
        return self.stop - self.start


def split_evenly(num_frames: int, num_partitions: int) -> list[Partition]:
    """Split ``num_frames`` into ``num_partitions`` runs whose sizes differ by at most one."""
    bounds = np.linspace(0, num_frames, num_partitions + 1).round().astype(int)
    return [Partition(i, int(a), int(b)) for i, (a, b) in enumerate(itertools.pairwise(bounds))]


class DataSet(ABC):
    """An N-D detector dataset: nav axes first, ``sig_dims`` signal axes last."""

    #: Bytes of native data a partition aims for when no count is given.
    TARGET_PARTITION_NBYTES = 256 * 2**20

    def __init__(self, shape: Shape, dtype: np.dtype[Any], num_partitions: int | None) -> None:
        if shape.nav_size == 0 or shape.sig_size == 0:
            msg = f"dataset shape {tuple(shape)} is empty"
            raise DataSetError(msg)
        if num_partitions is not None:
            if not isinstance(num_partitions, int | np.integer) or isinstance(num_partitions, bool):
                msg = f"num_partitions must be an int, got {num_partitions!r}"
                raise DataSetError(msg)
            if not 1 <= num_partitions <= shape.nav_size:
                msg = f"num_partitions={num_partitions} must be between 1 and the number of frames ({shape.nav_size})"
                raise DataSetError(msg)
        self._shape = shape
        self._dtype = dtype
        self._num_partitions = None if num_partitions is None else int(num_partitions)

    @property
    def shape(self) -> Shape:
        """The dataset's shape, with ``.nav`` and ``.sig``."""
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the stored data."""
        return self._dtype

    @property
    def frame_nbytes(self) -> int:
        """Bytes of one frame in the native dtype."""
        return self._shape.sig_size * self._dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the whole dataset in the native dtype."""
        return self.frame_nbytes * self._shape.nav_size

    def get_partitions(self, min_partitions: int = 1) -> list[Partition]:
        """Partitions covering all frames.

        Parameters
        ----------
        min_partitions
            What the executor wants for load balance; ignored when the
            dataset was loaded with an explicit ``num_partitions``.
        """
        if self._num_partitions is not None:
            count = self._num_partitions
        else:
            by_size = math.ceil(self.nbytes / self.TARGET_PARTITION_NBYTES)
            count = min(self._shape.nav_size, max(by_size, min_partitions, 1))
        return split_evenly(self._shape.nav_size, count)

    def host_frames(self) -> np.ndarray[Any, Any] | None:
        """All frames as one C-contiguous ``(frames, *sig)`` host array, if the data is one."""
        return None

    @abstractmethod
    def read_frames(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Frames at flat nav ``positions``, shape ``(len(positions), *sig)``, native dtype.

        ``out`` is filled and returned, unless ``prefer_view`` is set and the
        frames are already in (mapped) memory: then a read-only view of them
        is returned instead.  Without ``out`` a view or a new array.
        """

    def release(self) -> None:
        """Close open files until the next read; the engine calls it after each partition.

        Files stay closed between runs, so other programs may write them, and a
        file replaced on disk is read anew.
        """

    def check_unchanged(self) -> None:
        """Raise :class:`DataSetError` if the data no longer is what was loaded (a file that shrank)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} shape={self._shape!r} dtype={self._dtype}>"


def resolve_shape(
    array_shape: tuple[int, ...],
    sig_dims: int | None,
    nav_shape: tuple[int, ...] | None,
    sig_shape: tuple[int, ...] | None,
) -> Shape:
    """The dataset shape of data stored as ``array_shape``, with optional reshapes.

    ``sig_dims`` takes the trailing axes as a frame; ``sig_shape`` and
    ``nav_shape`` reinterpret the same values in C order.

    Raises
    ------
    DataSetError
        When the reshapes do not fit the data.
    """
    if sig_shape is not None:
        sig = axes_of("sig_shape", sig_shape)
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
        nav = axes_of("nav_shape", nav_shape)
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


def axes_of(name: str, value: Any) -> tuple[int, ...]:
    """``value`` as a shape: a non-empty sequence of positive ints (an int is one axis).

    Raises
    ------
    DataSetError
        Naming ``name`` and what was given.
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (value,)
    try:
        axes = tuple(value)
    except TypeError:
        axes = ()
    if not axes or any(isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1 for n in axes):
        msg = f"{name} must be a tuple of positive ints, got {value!r}"
        raise DataSetError(msg)
    return tuple(int(n) for n in axes)
