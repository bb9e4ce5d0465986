"""HDF5 files through h5py.

Policy
------
- h5py is imported only when an HDF5 dataset is loaded or read.
- At load the file's metadata alone is read: which array, its shape, dtype,
  layout and chunks.  A file holding exactly one array of 3 or more axes
  needs no ``ds_path``.
- Unfiltered (uncompressed) arrays are read like a raw file, straight from
  the file into the caller's buffer or as memory-mapped views, so they cost
  what a raw file costs: a contiguous array at the offset HDF5 reports, a
  chunked one through a table of its chunks' offsets (read from the chunk
  index in each worker, once), when every chunk holds whole frames and is
  allocated.
- Other arrays (compressed, chunks that split frames, unallocated chunks) are
  read by h5py straight into the caller's buffer (``read_direct``), one
  hyperslab per run of frames along the last nav axis.  Partitions start and end on chunk boundaries where the data
  allows as many partitions as the executor wants, so no two workers
  decompress the same chunk; each worker's chunk cache holds one row of
  chunks (capped at :data:`MAX_CHUNK_CACHE_NBYTES`), so a chunk is
  decompressed once even when tiles cut through it.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gpuudf.datasets.dataset import DataSet, Partition, resolve_shape, split_evenly
from gpuudf.datasets.files import BinaryFrames, checked_path, consecutive_runs, numeric_dtype, require_readable
from gpuudf.datasets.hdf5_chunks import ChunkedFrames
from gpuudf.errors import DataSetError
from gpuudf.shape import Positions

__all__ = [
    "HDF5_SUFFIXES",
    "MAX_CHUNK_CACHE_NBYTES",
    "ChunkedFrames",
    "H5DataSet",
    "chunk_aligned_frames",
    "has_hdf5_signature",
]

#: The most a worker's HDF5 chunk cache may hold.
MAX_CHUNK_CACHE_NBYTES = 128 * 2**20

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Extensions taken as HDF5 (NeXus, EMD and friends are HDF5 inside).
HDF5_SUFFIXES = frozenset({".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".emd", ".cxi"})


def has_hdf5_signature(path: Path) -> bool:
    """Whether the file starts with the HDF5 signature (at 0, 512, 1024, ... for a user block)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        offset = 0
        while offset + len(_SIGNATURE) <= size:
            file.seek(offset)
            if file.read(len(_SIGNATURE)) == _SIGNATURE:
                return True
            offset = 512 if offset == 0 else 2 * offset
    return False


def chunk_aligned_frames(nav_shape: tuple[int, ...], chunk_nav: tuple[int, ...]) -> int:
    """The smallest run of flat frames whose multiples start on chunk boundaries.

    The first nav axis chunked by more than one frame sets it: one chunk's
    extent along it times everything after it, or, where its chunks do not
    tile it, one whole index of the axis before it.
    """
    for axis, (extent, chunk) in enumerate(zip(nav_shape, chunk_nav, strict=True)):
        if chunk > 1:
            if axis == 0 or extent % chunk == 0:
                return chunk * math.prod(nav_shape[axis + 1 :])
            # chunks do not tile this axis, so the grid restarts with each index of the axis before
            return math.prod(nav_shape[axis:])
    return 1


def _in_file(array: Any, path: Path) -> bool:
    """Whether ``array`` is stored in the file at ``path`` (not reached through an external link)."""
    target = Path(array.file.filename)
    return target.exists() and path.samefile(target)


def _bytes_readable(array: Any, path: Path) -> bool:
    """Whether ``array``'s stored bytes may be read without HDF5: see the module policy.

    Refused: arrays in another file (an external link), types whose stored
    layout is not NumPy's (compound "complex", enums, padded types), and
    files with a user block on HDF5 before 1.14.4, whose chunk addresses
    left the user block out.
    """
    import h5py  # noqa: PLC0415 - only HDF5 datasets need it

    if not _in_file(array, path):
        return False
    stored = array.id.get_type()
    if stored.get_class() not in {h5py.h5t.INTEGER, h5py.h5t.FLOAT} or stored.get_size() != array.dtype.itemsize:
        return False
    return not (array.file.userblock_size and h5py.version.hdf5_version_tuple < (1, 14, 4))


def _missing_filters(array: Any) -> list[str]:
    """Names of the array's HDF5 filters this HDF5 library cannot apply."""
    import h5py  # noqa: PLC0415 - only HDF5 datasets need it

    plist = array.id.get_create_plist()
    missing = []
    for i in range(plist.get_nfilters()):
        code, _flags, _values, name = plist.get_filter(i)
        if not h5py.h5z.filter_avail(code):
            missing.append(f"{name.decode(errors='replace') or 'unnamed'} (filter id {code})")
    return missing


def _chunks_hold_whole_frames(array: Any, split: int) -> bool:
    """Whether ``array``'s chunks can be read as bytes: no filters, whole frames, all allocated."""
    chunks = array.chunks
    if chunks is None or array.external or tuple(chunks[split:]) != tuple(array.shape[split:]):
        return False
    if array.id.get_create_plist().get_nfilters():
        return False
    grid = [math.ceil(n / c) for n, c in zip(array.shape[:split], chunks[:split], strict=True)]
    return bool(array.id.get_num_chunks() == math.prod(grid))


def _arrays_in(group: Any) -> list[tuple[str, tuple[int, ...]]]:
    import h5py  # noqa: PLC0415 - only HDF5 datasets need it

    found: list[tuple[str, tuple[int, ...]]] = []

    def visit(_name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            found.append((item.name, tuple(item.shape)))

    group.visititems(visit)
    return found


def _listing(arrays: list[tuple[str, tuple[int, ...]]]) -> str:
    if not arrays:
        return "none"
    return ", ".join(f"{name} {shape}" for name, shape in arrays)


class H5DataSet(DataSet):
    """Frames from an array in an HDF5 file.

    Parameters
    ----------
    path
        The HDF5 file.
    ds_path
        The array inside it, e.g. ``"/entry/data/data"``; may be left out when
        the file holds exactly one array of 3 or more axes.
    sig_dims
        How many trailing axes form a frame (default 2).
    nav_shape, sig_shape
        Reinterpret the array with these axes (same number of values); a frame
        must still be whole trailing axes of the stored array.
    num_partitions
        Fixed partition count; by default chosen from the data size and the
        executor's workers, on chunk boundaries.
    sync_offset
        In frames: frame ``k`` is the array's frame ``k + sync_offset``;
        positive skips frames at the start (the last positions get none),
        negative leaves the first positions without one.  Runs do not
        process positions without a frame, as in LiberTEM.
    tileshape
        LiberTEM's ``(depth, *sig)``: tiles of at most ``depth`` frames; the
        sig part is accepted, tiles hold whole frames.
    """

    what = "hdf5 dataset"
    kind = "hdf5"

    def __init__(
        self,
        path: str | os.PathLike[str],
        ds_path: str | None = None,
        *,
        sig_dims: int | None = None,
        nav_shape: tuple[int, ...] | None = None,
        sig_shape: tuple[int, ...] | None = None,
        num_partitions: int | None = None,
        sync_offset: int = 0,
        tileshape: tuple[int, ...] | None = None,
    ) -> None:
        resolved = checked_path(path, self.what)
        if not has_hdf5_signature(resolved):
            msg = f"{self.what}: {resolved} is not an HDF5 file (no HDF5 signature)"
            raise DataSetError(msg)
        try:
            import h5py  # noqa: PLC0415 - only HDF5 datasets need it
        except ImportError as exc:  # pragma: no cover - h5py is a dependency
            msg = f"{self.what}: reading HDF5 needs h5py ({exc})"
            raise DataSetError(msg) from None
        try:
            file = h5py.File(resolved, "r", locking=False)
        except OSError as exc:
            msg = f"{self.what}: {resolved} cannot be opened as HDF5: {exc}"
            raise DataSetError(msg) from None
        with file:
            array = self._find_array(file, ds_path, resolved)
            stored_shape = tuple(int(n) for n in array.shape)
            stored_dtype = numeric_dtype(array.dtype, f"{self.what} {resolved}:{array.name}")
            if len(stored_shape) < 2:
                msg = (
                    f"{self.what}: {resolved}:{array.name} has shape {stored_shape}; "
                    "frames need at least 2 axes (nav and sig)"
                )
                raise DataSetError(msg)
            shape = resolve_shape(stored_shape, sig_dims, nav_shape, sig_shape)
            splits = [k for k in range(1, len(stored_shape)) if math.prod(stored_shape[k:]) == shape.sig_size]
            if not splits:
                msg = (
                    f"{self.what}: frames of shape {tuple(shape.sig)} are not whole trailing axes of "
                    f"{resolved}:{array.name}, shape {stored_shape}"
                )
                raise DataSetError(msg)
            split = splits[0]
            missing = _missing_filters(array)
            if missing:
                msg = (
                    f"{self.what}: {resolved}:{array.name} is stored with HDF5 filters this installation lacks: "
                    f"{', '.join(missing)}; installing hdf5plugin (and importing it) may provide them"
                )
                raise DataSetError(msg)
            direct = _bytes_readable(array, resolved)
            offset = array.id.get_offset() if direct and array.chunks is None and not array.external else None
            chunks_direct = direct and _chunks_hold_whole_frames(array, split)
            # through an external link, the path as given: the link is followed again on each open
            self.ds_path: str = array.name if _in_file(array, resolved) or ds_path is None else ds_path
            self.chunks: tuple[int, ...] | None = None if array.chunks is None else tuple(array.chunks)
            self.compression: str | None = array.compression
        super().__init__(
            shape, stored_dtype.newbyteorder("="), num_partitions, sync_offset=sync_offset, tileshape=tileshape
        )
        self.path = resolved
        self._stored_nav = stored_shape[:split]
        self._stored_sig = stored_shape[split:]
        self._binary: BinaryFrames | None = None
        if offset is not None:
            self._binary = BinaryFrames(
                resolved,
                offset_nbytes=offset,
                frame_shape=shape.sig,
                dtype=stored_dtype,
                num_frames=shape.nav_size,
            )
        elif chunks_direct:
            self._binary = ChunkedFrames(
                resolved,
                ds_path=self.ds_path,
                stored_nav=self._stored_nav,
                chunk_nav=self.chunks[:split] if self.chunks else (),
                frame_shape=shape.sig,
                dtype=stored_dtype,
                num_frames=shape.nav_size,
            )
        if self._binary is not None and resolved.stat().st_size < self._binary.required_nbytes:
            msg = f"{self.what}: {resolved} is shorter than its array {self.ds_path} needs (truncated file?)"
            raise DataSetError(msg)
        self._file_nbytes = resolved.stat().st_size
        self._file: Any = None
        self._lock = threading.Lock()

    def _find_array(self, file: Any, ds_path: str | None, path: Path) -> Any:
        import h5py  # noqa: PLC0415 - only HDF5 datasets need it

        if ds_path is None:
            arrays = _arrays_in(file)
            candidates = [(name, shape) for name, shape in arrays if len(shape) >= 3]
            if len(candidates) != 1:
                which = "no array" if not candidates else "several arrays"
                msg = (
                    f"{self.what}: {path} holds {which} of 3 or more axes, so give ds_path; "
                    f"arrays there: {_listing(arrays)}"
                )
                raise DataSetError(msg)
            return file[candidates[0][0]]
        if not isinstance(ds_path, str):
            msg = f"{self.what}: ds_path must be a str, got {ds_path!r}"
            raise DataSetError(msg)
        item = file.get(ds_path)
        if item is None:
            msg = f"{self.what}: {path} has nothing at {ds_path!r}; arrays there: {_listing(_arrays_in(file))}"
            raise DataSetError(msg)
        if not isinstance(item, h5py.Dataset):
            below = f"; arrays below it: {_listing(_arrays_in(item))}" if isinstance(item, h5py.Group) else ""
            msg = f"{self.what}: {path}:{ds_path} is a {type(item).__name__.lower()}, not an array{below}"
            raise DataSetError(msg)
        return item

    @property
    def contiguous(self) -> bool:
        """Whether the array is stored contiguously, and so read like a raw file."""
        return self._binary is not None and self.chunks is None

    @property
    def reads_file_directly(self) -> bool:
        """Whether frames are read from the file's bytes (no filters), not through h5py."""
        return self._binary is not None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def get_partitions(self, min_partitions: int = 1) -> list[Partition]:
        """Partitions on chunk boundaries, where that still gives as many as wanted."""
        partitions = super().get_partitions(min_partitions)
        if self._num_partitions is not None or self.chunks is None:
            return partitions
        unit = chunk_aligned_frames(self._stored_nav, self.chunks[: len(self._stored_nav)])
        units = math.ceil(self.shape.nav_size / unit)
        if unit == 1 or units < len(partitions):
            return partitions
        return [
            Partition(p.index, p.start * unit, min(p.stop * unit, self.shape.nav_size))
            for p in split_evenly(units, len(partitions))
        ]

    def enter_worker_process(self) -> None:
        """Set the worker up (:meth:`DataSet.enter_worker_process`) and check that it can read the file."""
        super().enter_worker_process()
        require_readable(self.path)

    def check_unchanged(self) -> None:
        """Raise :class:`DataSetError` if the file is now shorter than at load."""
        size = self.path.stat().st_size
        if size < self._file_nbytes:
            msg = f"{self.path} is now {size} bytes, shorter than the {self._file_nbytes} it held at load"
            raise DataSetError(msg)

    def _array(self) -> Any:
        with self._lock:
            if self._file is None:
                import h5py  # noqa: PLC0415 - only HDF5 datasets need it

                # no file locking: a reader must not keep writers of the file out
                self._file = h5py.File(self.path, "r", locking=False, **self._chunk_cache())
            return self._file[self.ds_path]

    def release(self) -> None:
        """Close the file until the next read (HDF5 keeps other openers out while it is open)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        if self._binary is not None:
            self._binary.release()

    def _chunk_cache(self) -> dict[str, Any]:
        """h5py chunk-cache settings holding one row of chunks."""
        if self.chunks is None:
            return {}
        chunk_nbytes = math.prod(self.chunks) * self.dtype.itemsize
        row_frames = chunk_aligned_frames(self._stored_nav, self.chunks[: len(self._stored_nav)])
        row_nbytes = row_frames * self.frame_nbytes
        nbytes = min(max(row_nbytes, chunk_nbytes, 2**20), MAX_CHUNK_CACHE_NBYTES)
        slots = max(521, 100 * (nbytes // max(chunk_nbytes, 1)) + 1)
        # w0=1: a chunk read to its end is evicted first, as tiles move on
        return {"rdcc_nbytes": nbytes, "rdcc_nslots": slots, "rdcc_w0": 1.0}

    def read_stored(
        self, positions: Positions, out: np.ndarray[Any, Any] | None = None, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """Stored frames at ``positions``, read into ``out`` (or a new array; a mapped view where bytes are read)."""
        if self._binary is not None:
            return self._binary.read(positions, out, prefer_view=prefer_view)
        if out is None:
            out = np.empty((len(positions), *self.shape.sig), dtype=self.dtype)
        # HDF5 reads past the end of a shrunk file as zeros (unfiltered chunks): check, cheaply, per read
        self.check_unchanged()
        try:
            array = self._array()
        except OSError as exc:
            msg = f"{self.path}: cannot be opened as HDF5 any more: {exc} (was the file changed after it was loaded?)"
            raise DataSetError(msg) from exc
        frames = out.reshape(len(positions), *self._stored_sig)
        row_length = self._stored_nav[-1]
        row = 0
        for start, stop in consecutive_runs(positions):
            frame = start
            while frame < stop:
                index = np.unravel_index(frame, self._stored_nav)
                count = min(stop - frame, row_length - int(index[-1]))
                selection = (*(int(i) for i in index[:-1]), slice(int(index[-1]), int(index[-1]) + count))
                try:
                    array.read_direct(frames, source_sel=selection, dest_sel=np.s_[row : row + count])
                except OSError as exc:
                    msg = (
                        f"{self.path}:{self.ds_path}: reading frames {frame}-{frame + count - 1} failed: {exc} "
                        "(was the file changed after it was loaded?)"
                    )
                    raise DataSetError(msg) from exc
                frame += count
                row += count
        return out

    def _repr_location(self) -> str:
        return f"{str(self.path)!r}:{self.ds_path}"

    def _describe(self) -> list[tuple[str, str]]:
        return [
            ("File", str(self.path)),
            ("Array (ds_path)", self.ds_path),
            ("chunks", str(self.chunks)),
            ("compression", str(self.compression)),
            ("Read from the file's bytes", "yes" if self.reads_file_directly else "no, through h5py"),
        ]
