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
- ``sync_offset`` is applied here, once for every kind: frame ``k`` of the
  dataset is stored frame ``k + sync_offset``.  Runs never ask for positions
  without a stored frame (``positions_with_data``; LiberTEM does not process
  them either); a direct ``read_frames`` reads them as zeros.  Subclasses
  read stored frames only (``read_stored``).
- ``tileshape`` is a tiling preference only: its depth caps the tiles of
  every run; tiles always hold whole frames.
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

__all__ = [
    "DataSet",
    "Partition",
    "axes_of",
    "check_sync_offset",
    "int_argument",
    "resolve_shape",
    "split_evenly",
    "tile_depth_of",
]


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
    """An N-D detector dataset: nav axes first, ``sig_dims`` signal axes last.

    Parameters
    ----------
    shape, dtype
        The dataset's shape and (native) dtype.
    num_partitions
        A fixed partition count, or ``None`` to choose by size.
    sync_offset
        In frames: frame ``k`` of the dataset is stored frame ``k +
        sync_offset``.  Positive skips stored frames at the start, negative
        leaves the first positions without a frame; positions without one
        are not processed by runs (``read_frames`` reads them as zeros).
    stored_frames
        How many frames the data holds (default: the dataset's frame count).
    tileshape
        ``(depth, *sig)``: tiles of at most ``depth`` frames
        (:attr:`preferred_tile_depth`); the sig part is accepted and ignored.
    """

    #: Bytes of native data a partition aims for when no count is given.
    TARGET_PARTITION_NBYTES = 256 * 2**20

    #: How ``load`` names the kind (``repr`` and diagnostics show it).
    kind = "dataset"

    def __init__(
        self,
        shape: Shape,
        dtype: np.dtype[Any],
        num_partitions: int | None,
        *,
        sync_offset: int = 0,
        stored_frames: int | None = None,
        tileshape: Any = None,
    ) -> None:
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
        self._stored_frames = shape.nav_size if stored_frames is None else stored_frames
        self._sync_offset = check_sync_offset(sync_offset, shape.nav_size, self._stored_frames)
        self._tile_depth = tile_depth_of(tileshape, shape)

    @property
    def shape(self) -> Shape:
        """The dataset's shape, with ``.nav`` and ``.sig``."""
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the stored data."""
        return self._dtype

    @property
    def sync_offset(self) -> int:
        """Frames skipped (positive) or inserted as zeros (negative) at the start."""
        return self._sync_offset

    @property
    def positions_with_data(self) -> range:
        """Flat nav positions that hold a stored frame; ``sync_offset`` leaves the others without one.

        As in LiberTEM, runs do not process the others: their ``nav`` results
        keep the buffers' initial values.
        """
        offset = self._sync_offset
        return range(max(0, -offset), min(self._shape.nav_size, self._stored_frames - offset))

    @property
    def preferred_tile_depth(self) -> int | None:
        """The most frames a tile holds, from ``tileshape``; ``None`` lets the run choose."""
        return self._tile_depth

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

    def read_frames(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Frames at flat nav ``positions``, shape ``(len(positions), *sig)``, native dtype.

        ``out`` is filled and returned, unless ``prefer_view`` is set and the
        frames are already in (mapped) memory: then a read-only view of them
        is returned instead.  Without ``out`` a view or a new array.  The
        ``sync_offset`` is applied here: frames outside the stored ones are
        zeros (and always land in ``out``).
        """
        offset = self._sync_offset
        if not offset:
            return self.read_stored(positions, out, prefer_view=prefer_view)
        stored: Positions
        if isinstance(positions, range):
            stored = range(positions.start + offset, positions.stop + offset)
            valid = np.arange(stored.start, stored.stop, dtype=np.intp)
        else:
            stored = valid = np.asarray(positions, dtype=np.intp) + offset
        inside = (valid >= 0) & (valid < self._stored_frames)
        if inside.all():
            return self.read_stored(stored, out, prefer_view=prefer_view)
        if out is None:
            out = np.empty((len(positions), *self._shape.sig), dtype=self._dtype)
        rows = np.flatnonzero(inside)
        out[~inside] = 0
        if rows.size:
            first, last = int(rows[0]), int(rows[-1]) + 1
            if last - first == rows.size:  # positions ascend: the stored frames are one block of rows
                part = out[first:last]
                wanted = stored[first:last] if isinstance(stored, range) else valid[first:last]
                got = self.read_stored(wanted, part)
                if got is not part:
                    part[...] = got
            else:
                out[rows] = self.read_stored(valid[rows])
        return out

    @abstractmethod
    def read_stored(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Stored frames at ``positions`` (all of them held by the data), as :meth:`read_frames` hands them out."""

    def enter_worker_process(self) -> None:
        """Set up a worker process for runs on this dataset; called there when a run's plan arrives.

        The default lets the process read files through memory maps (a file
        that shrinks under a mapping then kills the worker, which the
        executor reports, not the user's process) and unmaps shared frames
        that no run uses any more.  A dataset with per-process needs of its
        own extends it.
        """
        from gpuudf.datasets.files import allow_memory_maps  # noqa: PLC0415 - files imports this module
        from gpuudf.datasets.shared import release_unused  # noqa: PLC0415

        allow_memory_maps()
        release_unused()

    @staticmethod
    def clean_up_after(owner_pid: int) -> None:
        """In a worker whose main process ``owner_pid`` died: remove what only it would have removed.

        That is the shared-memory files it made for its datasets' frames.
        """
        from gpuudf.datasets.shared import remove_files_of  # noqa: PLC0415

        remove_files_of(owner_pid)

    def release(self) -> None:
        """Close open files until the next read; the engine calls it after each partition.

        Files stay closed between runs, so other programs may write them, and a
        file replaced on disk is read anew.
        """

    def check_unchanged(self) -> None:
        """Raise :class:`DataSetError` if the data no longer is what was loaded (a file that shrank)."""

    def sync_offset_info(self) -> dict[str, int]:
        """LiberTEM's four counts of frames that ``sync_offset`` moves in or out."""
        offset, stored, frames = self._sync_offset, self._stored_frames, self._shape.nav_size
        return {
            "frames_skipped_start": max(0, offset),
            "frames_ignored_end": max(0, stored - frames - offset),
            "frames_inserted_start": max(0, -offset),
            "frames_inserted_end": max(0, frames - stored + offset),
        }

    def get_diagnostics(self, min_partitions: int = 1) -> list[tuple[str, str]]:
        """``(name, value)`` rows describing the dataset, as LiberTEM's ``diagnostics`` lists them.

        Parameters
        ----------
        min_partitions
            The executor's minimum partition count (``Executor.num_workers()``).
        """
        partitions = self.get_partitions(min_partitions)
        first = partitions[0]
        info = self.sync_offset_info()
        return [
            ("Kind", self.kind),
            ("Shape", str(tuple(self._shape))),
            ("Navigation shape", str(tuple(self._shape.nav))),
            ("Signal shape", str(tuple(self._shape.sig))),
            ("dtype", str(self._dtype)),
            *self._describe(),
            ("Partition shape", str((first.num_frames, *self._shape.sig))),
            ("Number of partitions", str(len(partitions))),
            ("Tile depth (tileshape)", "chosen per run" if self._tile_depth is None else f"at most {self._tile_depth}"),
            ("sync_offset", str(self._sync_offset)),
            ("Number of frames skipped at the beginning", str(info["frames_skipped_start"])),
            ("Number of frames ignored at the end", str(info["frames_ignored_end"])),
            ("Number of blank frames inserted at the beginning", str(info["frames_inserted_start"])),
            ("Number of blank frames inserted at the end", str(info["frames_inserted_end"])),
        ]

    @property
    def diagnostics(self) -> list[dict[str, str]]:
        """LiberTEM's form of :meth:`get_diagnostics`: ``[{"name": ..., "value": ...}, ...]``, one worker."""
        return [{"name": name, "value": value} for name, value in self.get_diagnostics()]

    def _describe(self) -> list[tuple[str, str]]:
        """Rows a kind adds to the diagnostics (its file, ...)."""
        return []

    def _repr_location(self) -> str:
        """Where the frames come from, for the ``repr`` (a file's path); empty for none."""
        return ""

    def __repr__(self) -> str:
        fields = [self._repr_location(), f"shape={self._shape!r}", f"dtype={self._dtype}", f"kind={self.kind!r}"]
        fields.append(f"partitions={len(self.get_partitions())}")
        if self._sync_offset:
            fields.append(f"sync_offset={self._sync_offset}")
        return f"<{type(self).__name__} {' '.join(f for f in fields if f)}>"


def check_sync_offset(sync_offset: Any, num_frames: int, stored_frames: int) -> int:
    """``sync_offset`` as an int that leaves at least one stored frame in the dataset.

    Raises
    ------
    DataSetError
        Naming ``sync_offset`` when it is no int, pads every frame with zeros
        or skips every stored frame.
    """
    offset = int_argument("sync_offset", sync_offset)
    if offset + num_frames <= 0:
        msg = f"sync_offset={offset} pads all {num_frames} frames with zeros: no frame of the data is left"
        raise DataSetError(msg)
    if offset >= stored_frames:
        msg = f"sync_offset={offset} skips all {stored_frames} frames the data holds: no frame of the data is left"
        raise DataSetError(msg)
    return offset


def tile_depth_of(tileshape: Any, shape: Shape, name: str = "tileshape") -> int | None:
    """The depth of a LiberTEM ``tileshape`` ``(depth, *sig)``, checked; ``None`` for none.

    Raises
    ------
    DataSetError
        Naming ``name`` when it is not ``1 + sig_dims`` positive ints.
    """
    if tileshape is None:
        return None
    axes = axes_of(name, tileshape)
    if len(axes) != shape.sig_dims + 1:
        msg = (
            f"{name}={tuple(axes)} must have {shape.sig_dims + 1} axes, (depth, *sig) for frames of "
            f"{shape.sig_dims} axes like {tuple(shape.sig)}"
        )
        raise DataSetError(msg)
    return axes[0]


def int_argument(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int of at least ``minimum``.

    Raises
    ------
    DataSetError
        Naming ``name`` when it is no int or too small.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        msg = f"{name} must be an int, got {value!r}"
        raise DataSetError(msg)
    if minimum is not None and value < minimum:
        msg = f"{name} must be at least {minimum}, got {value}"
        raise DataSetError(msg)
    return int(value)


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
