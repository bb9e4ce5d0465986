"""Choosing a file dataset's kind from the file itself.

Policy: the file's contents decide first (each registered file format's
``recognizes``: the ``.npy`` magic string, the HDF5 signature), then its
extension (each format's ``suffixes``), both in the order the kinds were
registered; a file that no format claims is read as raw when the arguments
a raw file needs are given.  The chosen loader checks the arguments, so a
wrong one names that loader.  The formats are the entries of
:data:`~gpuudf.datasets.kinds.DATASET_KINDS`: a new one needs no change here.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from gpuudf.datasets.dataset import DataSet
from gpuudf.datasets.files import checked_path
from gpuudf.datasets.hdf5 import HDF5_SUFFIXES
from gpuudf.datasets.kinds import DATASET_KINDS
from gpuudf.datasets.npy import NPY_MAGIC
from gpuudf.errors import DataSetError

__all__ = ["HDF5_SUFFIXES", "NPY_MAGIC", "detect_kind", "load_auto"]

#: The kind of a file no format claims, when the caller gives these arguments.
_FALLBACK_KIND = "raw"
_RAW_ARGUMENTS = ("nav_shape", "sig_shape", "dtype")


def detect_kind(path: str | os.PathLike[str], raw_arguments_given: bool = False) -> str:
    """The registered kind for the file at ``path``: ``"npy"``, ``"hdf5"`` or ``"raw"`` among the built-in ones.

    Raises
    ------
    DataSetError
        When the file cannot be read, or is of no registered format and the
        arguments of a raw file are missing.
    """
    resolved = checked_path(path, "auto dataset")
    formats = [(name, kind) for name, kind in DATASET_KINDS.items() if kind.is_file_format]
    for name, kind in formats:
        if kind.recognizes is not None and kind.recognizes(resolved):
            return name
    suffix = resolved.suffix.lower()
    for name, kind in formats:
        if suffix in kind.suffixes:
            return name  # its loader names what is wrong with the contents
    if raw_arguments_given:
        return _FALLBACK_KIND
    labels = " nor ".join(kind.label or name for name, kind in formats)
    msg = (
        f"auto dataset: cannot tell what {resolved} holds: it is neither {labels}; "
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
    loader = DATASET_KINDS.lookup(kind).factory
    try:
        inspect.signature(loader).bind(resolved, **kwargs)
    except TypeError as exc:
        msg = f"auto dataset: {resolved} is read as {kind}, and load({kind!r}) does not take these arguments: {exc}"
        raise DataSetError(msg) from None
    return loader(resolved, **kwargs)
