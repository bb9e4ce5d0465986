"""Datasets and the ``load`` registry behind ``Context.load``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gpuudf.datasets.auto import detect_kind, load_auto
from gpuudf.datasets.dataset import DataSet, Partition, split_evenly
from gpuudf.datasets.files import BinaryFileDataSet
from gpuudf.datasets.hdf5 import H5DataSet
from gpuudf.datasets.memory import MemoryDataSet
from gpuudf.datasets.npy import NpyDataSet
from gpuudf.datasets.raw import RawFileDataSet
from gpuudf.errors import DataSetError

__all__ = [
    "DATASET_KINDS",
    "BinaryFileDataSet",
    "DataSet",
    "H5DataSet",
    "MemoryDataSet",
    "NpyDataSet",
    "Partition",
    "RawFileDataSet",
    "detect_kind",
    "load",
    "split_evenly",
]

DATASET_KINDS: dict[str, Callable[..., DataSet]] = {
    "memory": MemoryDataSet,
    "raw": RawFileDataSet,
    "npy": NpyDataSet,
    "hdf5": H5DataSet,
    "auto": load_auto,
}


def load(kind: str, /, *args: Any, **kwargs: Any) -> DataSet:
    """Create a dataset of ``kind``; every problem is a :class:`DataSetError` here.

    Raises
    ------
    DataSetError
        Unknown kind, unknown argument, or data that does not fit.
    """
    try:
        factory = DATASET_KINDS[kind]
    except (KeyError, TypeError):
        msg = f"unknown dataset kind {kind!r}; available: {', '.join(sorted(DATASET_KINDS))}"
        raise DataSetError(msg) from None
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as exc:
        msg = f"load({kind!r}): {exc}"
        raise DataSetError(msg) from None
    return factory(*args, **kwargs)
