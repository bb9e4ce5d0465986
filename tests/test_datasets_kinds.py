"""The registry of dataset kinds: a kind registered once is taken by ``load``, ``ctx.load`` and ``"auto"``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import DataSetError
from gpuudf.datasets import DATASET_KINDS, DataSetKind, MemoryDataSet, NpyDataSet, detect_kind, load
from tests.udfs_for_tests import DATA_SHAPE

SCAN_MAGIC = b"SCAN"


def load_scan(path: str | Path, sig_dims: int = 2) -> MemoryDataSet:
    """A made-up format: ``SCAN`` and then the frames as float32, in ``DATA_SHAPE``."""
    data = np.frombuffer(Path(path).read_bytes()[len(SCAN_MAGIC) :], dtype=np.float32).reshape(DATA_SHAPE)
    return MemoryDataSet(data=data, sig_dims=sig_dims)


def has_scan_magic(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(SCAN_MAGIC)) == SCAN_MAGIC


@pytest.fixture
def scan_kind() -> Iterator[str]:
    DATASET_KINDS.register(
        "scan", DataSetKind(load_scan, recognizes=has_scan_magic, suffixes=frozenset({".scan"}), label="SCAN")
    )
    try:
        yield "scan"
    finally:
        DATASET_KINDS.unregister("scan")


def write_scan(path: Path, data: np.ndarray[Any, Any]) -> Path:
    path.write_bytes(SCAN_MAGIC + data.astype(np.float32).tobytes())
    return path


def test_the_built_in_kinds_are_registered_with_the_file_formats_in_the_order_auto_asks_them() -> None:
    assert DATASET_KINDS.names() == ("memory", "raw", "npy", "hdf5", "auto")
    formats = [name for name, kind in DATASET_KINDS.items() if kind.is_file_format]
    assert formats == ["npy", "hdf5"]
    assert DATASET_KINDS.lookup("npy").factory is NpyDataSet


def test_a_registered_kind_is_loaded_by_name_through_load_and_the_context(scan_kind: str, tmp_path: Path) -> None:
    data = np.arange(np.prod(DATA_SHAPE), dtype=np.float32).reshape(DATA_SHAPE)
    path = write_scan(tmp_path / "data.bin", data)
    ctx = gpuudf.Context.make_with("inline")
    for dataset in (load(scan_kind, path), ctx.load(scan_kind, path=path)):
        assert isinstance(dataset, MemoryDataSet)
        assert dataset.shape == DATA_SHAPE
        np.testing.assert_array_equal(dataset.read_frames(range(2)), data.reshape(-1, *DATA_SHAPE[2:])[:2])


def test_a_registered_kind_checks_load_arguments_as_the_built_in_ones_do(scan_kind: str, tmp_path: Path) -> None:
    path = write_scan(tmp_path / "data.scan", np.zeros(DATA_SHAPE))
    with pytest.raises(DataSetError, match=r"load\('scan'\): .*'nav_shape'"):
        load(scan_kind, path, nav_shape=(2, 2))


def test_auto_recognises_a_registered_format_by_its_contents_then_by_its_extension(
    scan_kind: str, tmp_path: Path
) -> None:
    by_contents = write_scan(tmp_path / "data.bin", np.ones(DATA_SHAPE))
    assert detect_kind(by_contents) == scan_kind
    assert isinstance(load("auto", by_contents), MemoryDataSet)
    by_extension = tmp_path / "broken.scan"
    by_extension.write_bytes(b"not quite a scan")
    assert detect_kind(by_extension) == scan_kind


def test_auto_names_every_registered_format_when_it_cannot_tell_a_file(scan_kind: str, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"nothing known")
    with pytest.raises(DataSetError, match=r"it is neither \.npy nor HDF5 nor SCAN; for a flat binary file"):
        load("auto", path)


def test_an_unknown_kind_lists_every_registered_kind_sorted(scan_kind: str) -> None:
    with pytest.raises(
        DataSetError, match=r"^unknown dataset kind 'zarr'; available: auto, hdf5, memory, npy, raw, scan$"
    ):
        load("zarr")


def test_an_unregistered_kind_is_unknown_again(tmp_path: Path) -> None:
    DATASET_KINDS.register("scan", DataSetKind(load_scan))
    DATASET_KINDS.unregister("scan")
    with pytest.raises(DataSetError, match=r"^unknown dataset kind 'scan'; available: auto, hdf5, memory, npy, raw$"):
        load("scan", tmp_path / "data.scan")
