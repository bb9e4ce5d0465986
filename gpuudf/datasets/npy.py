"""NumPy ``.npy`` files, read like raw files after their header.

Policy: only the header is parsed at load (``numpy.lib.format``); frames are
read with positioned reads like any flat binary file, never through
``numpy.load``, so a worker's memory holds a tile, not the file.  Fortran-order
files are refused, because their frames are scattered over the whole file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gpuudf.datasets.dataset import resolve_shape
from gpuudf.datasets.files import BinaryFileDataSet, BinaryFrames, checked_path, numeric_dtype
from gpuudf.errors import DataSetError

__all__ = ["NPY_MAGIC", "NpyDataSet", "has_npy_magic", "read_npy_header"]

NPY_MAGIC = b"\x93NUMPY"


def has_npy_magic(path: Path) -> bool:
    """Whether the file starts with the ``.npy`` magic string."""
    with path.open("rb") as file:
        return file.read(len(NPY_MAGIC)) == NPY_MAGIC


def read_npy_header(path: os.PathLike[str] | str) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """``(shape, fortran_order, dtype, data_offset_nbytes)`` of a ``.npy`` file.

    Raises
    ------
    DataSetError
        If the file is not a ``.npy`` file NumPy can read the header of.
    """
    with open(path, "rb") as file:  # noqa: PTH123 - the header reader wants a binary file object
        try:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
        except Exception as exc:  # noqa: BLE001 - any parser failure (tokenize, literal_eval, EOF) means the same
            msg = f"npy dataset: {path} is not a readable .npy file ({exc})"
            raise DataSetError(msg) from None
        return tuple(int(n) for n in shape), bool(fortran_order), dtype, file.tell()


class NpyDataSet(BinaryFileDataSet):
    """Frames from a ``.npy`` file, read in place.

    Parameters
    ----------
    path
        The ``.npy`` file (C order).
    sig_dims
        How many trailing axes form a frame (default 2).
    nav_shape, sig_shape
        Reinterpret the data with these axes (same number of values).
    num_partitions
        Fixed partition count; by default chosen from the data size and the
        executor's workers.
    sync_offset
        In frames: frame ``k`` is the array's frame ``k + sync_offset``;
        positive skips frames at the start (the last positions get none),
        negative leaves the first positions without one.  Runs do not
        process positions without a frame, as in LiberTEM.
    tileshape
        LiberTEM's ``(depth, *sig)``: tiles of at most ``depth`` frames; the
        sig part is accepted, tiles hold whole frames.
    """

    what = "npy dataset"
    kind = "npy"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sig_dims: int | None = None,
        nav_shape: tuple[int, ...] | None = None,
        sig_shape: tuple[int, ...] | None = None,
        num_partitions: int | None = None,
        sync_offset: int = 0,
        tileshape: tuple[int, ...] | None = None,
    ) -> None:
        resolved = checked_path(path, self.what)
        array_shape, fortran_order, dtype, offset = read_npy_header(resolved)
        dtype = numeric_dtype(dtype, f"{self.what} {resolved}")
        if len(array_shape) < 2:
            msg = (
                f"{self.what}: {resolved} holds an array of shape {array_shape}; "
                "frames need at least 2 axes (nav and sig)"
            )
            raise DataSetError(msg)
        if fortran_order and sum(n > 1 for n in array_shape) > 1:
            msg = (
                f"{self.what}: {resolved} is stored in Fortran order, so each frame is scattered over the whole "
                "file; save a C-order copy to a new file, e.g. "
                "numpy.save(new_path, numpy.ascontiguousarray(numpy.load(path, mmap_mode='r')))"
            )
            raise DataSetError(msg)
        shape = resolve_shape(array_shape, sig_dims, nav_shape, sig_shape)
        frames = BinaryFrames(
            resolved, offset_nbytes=offset, frame_shape=shape.sig, dtype=dtype, num_frames=shape.nav_size
        )
        super().__init__(
            frames,
            shape,
            num_partitions,
            describe_need=f" after its {offset}-byte header",
            sync_offset=sync_offset,
            tileshape=tileshape,
        )
