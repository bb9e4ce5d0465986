"""Choosing a file dataset's kind from the file itself.

Policy: the file's contents decide first (the ``.npy`` magic string, the
HDF5 signature), then its extension; a file that is neither ``.npy`` nor
HDF5 is read as raw when the arguments a raw file needs are given.  The
chosen loader checks the arguments, so a wrong one names that loader.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from gpuudf.datasets.dataset import DataSet
from gpuudf.datasets.files import checked_path
from gpuudf.datasets.hdf5 import H5DataSet, has_hdf5_signature
from gpuudf.datasets.npy import NpyDataSet
from gpuudf.datasets.raw import RawFileDataSet
from gpuudf.errors import DataSetError

__all__ = ["HDF5_SUFFIXES", "NPY_MAGIC", "detect_kind", "load_auto"]

NPY_MAGIC = b"\x93NUMPY"
#: Extensions taken as HDF5 (NeXus, EMD and friends are HDF5 inside).
HDF5_SUFFIXES = frozenset({".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".emd", ".cxi"})
_RAW_ARGUMENTS = ("nav_shape", "sig_shape", "dtype")


def detect_kind(path: str | os.PathLike[str], raw_arguments_given: bool = False) -> str:
    """``"npy"``, ``"hdf5"`` or ``"raw"`` for the file at ``path``.

    Raises
    ------
    DataSetError
        When the file cannot be read, or is neither ``.npy`` nor HDF5 and
        the arguments of a raw file are missing.
    """
    resolved = checked_path(path, "auto dataset")
    with resolved.open("rb") as file:
        start = file.read(len(NPY_MAGIC))
    if start == NPY_MAGIC:
        return "npy"
    if has_hdf5_signature(resolved):
        return "hdf5"
    suffix = resolved.suffix.lower()
    if suffix == ".npy":
        return "npy"  # its loader names what is wrong with the header
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if raw_arguments_given:
        return "raw"
    msg = (
        f"auto dataset: cannot tell what {resolved} holds: it is neither .npy nor HDF5; "
        "for a flat binary file give nav_shape, sig_shape and dtype (or use load('raw', ...))"
    )
    raise DataSetError(msg)


def load_auto(path: str | os.PathLike[str], **kwargs: Any) -> DataSet:
    """Load ``path`` with the loader :func:`detect_kind` picks, passing ``kwargs`` on.

    Raises
    ------
    DataSetError
        As :func:`detect_kind`, or for arguments the chosen loader does not take.
    """
    resolved = checked_path(path, "auto dataset")
    kind = detect_kind(resolved, raw_arguments_given=any(name in kwargs for name in _RAW_ARGUMENTS))
    loaders: dict[str, Callable[..., DataSet]] = {"npy": NpyDataSet, "hdf5": H5DataSet, "raw": RawFileDataSet}
    loader = loaders[kind]
    try:
        inspect.signature(loader).bind(resolved, **kwargs)
    except TypeError as exc:
        msg = f"auto dataset: {resolved} is read as {kind}, and load({kind!r}) does not take these arguments: {exc}"
        raise DataSetError(msg) from None
    return loader(resolved, **kwargs)
