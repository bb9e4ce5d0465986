"""``load("auto", ...)``: the kind is told by magic bytes, then extension, then raw arguments; results equal NumPy's."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import DataSetError
from gpuudf.datasets import H5DataSet, NpyDataSet, RawFileDataSet, detect_kind, load
from gpuudf.datasets.auto import HDF5_SUFFIXES
from tests.udfs_for_tests import DATA_SHAPE, FILE_KINDS, FILE_ROI, NAV_SHAPE, SIG_SHAPE, assert_sum_udfs_match_numpy

FRAMES = math.prod(NAV_SHAPE)

CountsFn = Callable[..., np.ndarray[Any, Any]]
FileFn = Callable[..., tuple[Path, dict[str, Any]]]

CLASSES = {
    "raw": RawFileDataSet,
    "npy": NpyDataSet,
    "hdf5": H5DataSet,
    "hdf5-chunked": H5DataSet,
    "hdf5-unfiltered": H5DataSet,
}


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_auto_udf_results_equal_numpys_for_every_file_kind(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, kind: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file(kind, data)
    ds = ctx.load("auto", **kwargs, num_partitions=3)
    assert type(ds) is CLASSES[kind]
    assert ds.shape == DATA_SHAPE
    assert_sum_udfs_match_numpy(ctx, ds, data)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI)


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_auto_reads_the_same_frames_as_the_kinds_own_loader(
    data_file: FileFn, random_counts: CountsFn, kind: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    path, kwargs = data_file(kind, data)
    own = load(kind.split("-", maxsplit=1)[0], **kwargs)
    auto = load("auto", **kwargs)
    assert type(auto) is type(own)
    assert (auto.shape, auto.dtype) == (own.shape, own.dtype)
    positions = np.array([0, 1, 2, 9, 34])
    assert_array_equal(auto.read_frames(positions), own.read_frames(positions))
    assert_array_equal(auto.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))
    assert detect_kind(path, raw_arguments_given=kind == "raw") == kind.split("-", maxsplit=1)[0]


def test_an_hdf5_file_needs_only_its_path(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    with h5py.File(tmp_path / "scan.nxs", "w") as file:
        file.create_dataset("/entry/data/data", data=data)
        file.create_dataset("/entry/data/x", data=np.arange(5))
    ds = load("auto", path=tmp_path / "scan.nxs")
    assert isinstance(ds, H5DataSet)
    assert ds.ds_path == "/entry/data/data"
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


# ---------------------------------------------------------------- magic bytes first


@pytest.mark.parametrize("suffix", [".raw", ".dat", ".h5", ""])
def test_an_npy_file_is_npy_whatever_its_extension(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    with path.open("wb") as file:
        np.save(file, np.zeros(DATA_SHAPE, dtype=np.float32))
    assert detect_kind(path) == "npy"
    assert detect_kind(path, raw_arguments_given=True) == "npy"
    assert isinstance(load("auto", path=path), NpyDataSet)


@pytest.mark.parametrize("suffix", [".raw", ".npy", ".bin", ""])
@pytest.mark.parametrize("userblock_size", [0, 512, 2048])
def test_an_hdf5_file_is_hdf5_whatever_its_extension_and_user_block(
    tmp_path: Path, suffix: str, userblock_size: int
) -> None:
    path = tmp_path / f"data{suffix}"
    with h5py.File(path, "w", userblock_size=userblock_size or None) as file:
        file.create_dataset("data", data=np.zeros(DATA_SHAPE, dtype=np.float32))
    assert detect_kind(path) == "hdf5"
    assert isinstance(load("auto", path=path), H5DataSet)


# ---------------------------------------------------------------- then the extension, then raw


def test_a_file_with_the_npy_extension_but_no_npy_header_gets_the_npy_loaders_error(tmp_path: Path) -> None:
    path = tmp_path / "data.npy"
    path.write_bytes(np.zeros(DATA_SHAPE, dtype=np.uint16).tobytes())
    assert detect_kind(path) == "npy"
    with pytest.raises(DataSetError, match=r"npy dataset: .*data\.npy is not a readable \.npy file"):
        load("auto", path=path)


@pytest.mark.parametrize("suffix", sorted(HDF5_SUFFIXES | {".H5", ".Hdf5"}))
def test_a_file_with_an_hdf5_extension_but_no_signature_gets_the_hdf5_loaders_error(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_bytes(b"\x00" * 2048)
    assert detect_kind(path) == "hdf5"
    with pytest.raises(DataSetError, match=r"hdf5 dataset: .* is not an HDF5 file \(no HDF5 signature\)"):
        load("auto", path=path)


@pytest.mark.parametrize("given", ["nav_shape", "sig_shape", "dtype"])
def test_any_raw_argument_makes_an_unknown_file_raw(tmp_path: Path, given: str) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(np.zeros(DATA_SHAPE, dtype=np.uint16).tobytes())
    assert detect_kind(path, raw_arguments_given=True) == "raw"
    args = {"nav_shape": NAV_SHAPE, "sig_shape": SIG_SHAPE, "dtype": "uint16"}
    assert isinstance(load("auto", path=path, **args), RawFileDataSet)
    with pytest.raises(DataSetError, match=r"auto dataset: .*data\.bin .*load\('raw'\) .*missing a required argument"):
        load("auto", path=path, **{given: args[given]})


def test_an_unknown_file_without_raw_arguments_is_a_dataset_error_saying_what_to_give(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(np.zeros(DATA_SHAPE, dtype=np.uint16).tobytes())
    with pytest.raises(
        DataSetError,
        match=r"auto dataset: cannot tell what .*data\.bin holds: it is neither \.npy nor HDF5; "
        r"for a flat binary file give nav_shape, sig_shape and dtype",
    ):
        load("auto", path=path)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        pytest.param("npy", {"dtype": "float32"}, r"load\('npy'\) does not take .*'dtype'", id="npy-dtype"),
        pytest.param("hdf5", {"header_nbytes": 8}, r"load\('hdf5'\) does not take .*'header_nbytes'", id="h5-header"),
        pytest.param("raw", {"sig_dims": 2}, r"load\('raw'\) does not take .*'sig_dims'", id="raw-sig-dims"),
        pytest.param(
            "npy", {"nav_shape": (7, 5), "dtype": "u2"}, r"load\('npy'\) does not take .*'dtype'", id="npy-raw-args"
        ),
    ],
)
def test_arguments_the_chosen_loader_does_not_take_are_a_dataset_error_naming_it(
    data_file: FileFn, random_counts: CountsFn, kind: str, extra: dict[str, Any], message: str
) -> None:
    path, kwargs = data_file(kind, random_counts(DATA_SHAPE, dtype="float32"))
    given = {**kwargs, **extra} if kind == "raw" else {"path": path, **extra}
    with pytest.raises(DataSetError, match=rf"auto dataset: .*{path.name} .*" + message):
        load("auto", **given)


def test_bad_arguments_are_checked_by_the_chosen_loader(data_file: FileFn, random_counts: CountsFn) -> None:
    path, _ = data_file("npy", random_counts(DATA_SHAPE, dtype="float32"))
    with pytest.raises(DataSetError, match=r"sig_dims=4 does not fit data of shape \(5, 7, 9, 11\)"):
        load("auto", path=path, sig_dims=4)
    _, kwargs = data_file("raw", random_counts(DATA_SHAPE, dtype="float32"))
    with pytest.raises(DataSetError, match=r"raw dataset: unknown dtype 'foo'"):
        load("auto", **{**kwargs, "dtype": "foo"})


def test_a_missing_file_is_a_dataset_error_from_auto(tmp_path: Path) -> None:
    with pytest.raises(DataSetError, match=r"auto dataset: no such file: .*missing\.npy"):
        load("auto", path=tmp_path / "missing.npy")
    with pytest.raises(DataSetError, match=r"load\('auto'\): missing a required argument: 'path'"):
        load("auto")
