"""Datasets, and the registry of dataset kinds behind ``Context.load``.

Policy: every kind ``load`` takes is registered here, once, in
:data:`DATASET_KINDS` (see :mod:`gpuudf.datasets.kinds`); the order of the
file formats is the order in which ``load("auto", ...)`` asks them.
"""

from __future__ import annotations

from gpuudf.datasets.auto import detect_kind, load_auto
from gpuudf.datasets.dataset import DataSet, Partition, split_evenly
from gpuudf.datasets.files import BinaryFileDataSet
from gpuudf.datasets.hdf5 import HDF5_SUFFIXES, H5DataSet, has_hdf5_signature
from gpuudf.datasets.kinds import DATASET_KINDS, DataSetKind, load
from gpuudf.datasets.memory import MemoryDataSet
from gpuudf.datasets.npy import NpyDataSet, has_npy_magic
from gpuudf.datasets.raw import RawFileDataSet

__all__ = [
    "DATASET_KINDS",
    "BinaryFileDataSet",
    "DataSet",
    "DataSetKind",
    "H5DataSet",
    "MemoryDataSet",
    "NpyDataSet",
    "Partition",
    "RawFileDataSet",
    "detect_kind",
    "load",
    "split_evenly",
]

DATASET_KINDS.register("memory", DataSetKind(MemoryDataSet))
DATASET_KINDS.register("raw", DataSetKind(RawFileDataSet))
DATASET_KINDS.register(
    "npy", DataSetKind(NpyDataSet, recognizes=has_npy_magic, suffixes=frozenset({".npy"}), label=".npy")
)
DATASET_KINDS.register(
    "hdf5", DataSetKind(H5DataSet, recognizes=has_hdf5_signature, suffixes=HDF5_SUFFIXES, label="HDF5")
)
DATASET_KINDS.register("auto", DataSetKind(load_auto))
