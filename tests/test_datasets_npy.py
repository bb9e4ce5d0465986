"""``load("npy", ...)``: ``.npy`` files against NumPy, sig_dims, reshapes, dtypes, header versions, Fortran, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import DataSetError
from gpuudf.datasets import NpyDataSet, load
from tests.conftest import PER_FRAME
from tests.udfs_for_tests import (
    DATA_SHAPE,
    FILE_ROI,
    NAV_SHAPE,
    SIG_DIMS_CASES,
    SIG_SHAPE,
    assert_reads_match,
    assert_sum_udfs_match_numpy,
)

FRAMES = math.prod(NAV_SHAPE)

CountsFn = Callable[..., np.ndarray[Any, Any]]
FileFn = Callable[..., tuple[Path, dict[str, Any]]]


def write_npy(path: Path, data: np.ndarray[Any, Any], version: tuple[int, int] | None = None) -> Path:
    with path.open("wb") as file:
        np.lib.format.write_array(file, data, version=version)
    return path


def write_header_and_data(path: Path, data: np.ndarray[Any, Any], *, fortran_order: bool) -> Path:
    """A ``.npy`` file whose header says ``fortran_order``, holding ``data``'s bytes in that order."""
    header = np.lib.format.header_data_from_array_1_0(data)
    header["fortran_order"] = fortran_order
    with path.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        file.write(data.tobytes(order="F" if fortran_order else "C"))
    return path


def header_says_fortran_order(path: Path) -> bool:
    with path.open("rb") as file:
        np.lib.format.read_magic(file)
        return bool(np.lib.format.read_array_header_1_0(file)[1])


# ---------------------------------------------------------------- against NumPy


def test_npy_udf_results_equal_numpys_with_and_without_roi(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, num_partitions: int | str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file("npy", data)
    count = FRAMES if num_partitions == PER_FRAME else int(num_partitions)
    ds = ctx.load("npy", **kwargs, num_partitions=count)
    assert len(ds.get_partitions()) == count
    assert_sum_udfs_match_numpy(ctx, ds, data)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI)


def test_read_frames_returns_the_arrays_frames_at_ranges_and_index_arrays(
    tmp_path: Path, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="int32", high=1000)
    ds = load("npy", path=write_npy(tmp_path / "data.npy", data))
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    assert_array_equal(ds.read_frames(range(FRAMES)), flat)
    assert_array_equal(ds.read_frames(range(6, 13)), flat[6:13])
    positions = np.array([0, 1, 8, 9, 10, 34])
    assert_array_equal(ds.read_frames(positions), flat[positions])
    out = np.empty((len(positions), *SIG_SHAPE), dtype=np.int32)
    assert ds.read_frames(positions, out) is out
    assert_array_equal(out, flat[positions])


@pytest.mark.parametrize(
    ("data_shape", "sig_dims", "nav", "sig"),
    SIG_DIMS_CASES,
)
def test_sig_dims_takes_that_many_trailing_axes_as_a_frame(
    tmp_path: Path,
    random_counts: CountsFn,
    data_shape: tuple[int, ...],
    sig_dims: int | None,
    nav: tuple[int, ...],
    sig: tuple[int, ...],
) -> None:
    data = random_counts(data_shape, dtype="uint16", high=1000)
    kwargs = {} if sig_dims is None else {"sig_dims": sig_dims}
    ds = load("npy", path=write_npy(tmp_path / "data.npy", data), **kwargs)
    assert ds.shape == data_shape
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    frames = data.reshape(math.prod(nav), *sig)
    assert_array_equal(ds.read_frames(range(len(frames))), frames)
    assert_array_equal(ds.read_frames(np.array([0, len(frames) - 1])), frames[[0, -1]])


@pytest.mark.parametrize(
    ("data_shape", "kwargs", "nav", "sig"),
    [
        pytest.param((35, 9, 11), {"nav_shape": NAV_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="nav-shape"),
        pytest.param(DATA_SHAPE, {"nav_shape": (35,)}, (35,), SIG_SHAPE, id="flatten-nav"),
        pytest.param((5, 7, 99), {"sig_shape": SIG_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="sig-shape"),
        pytest.param(DATA_SHAPE, {"sig_shape": (99,)}, NAV_SHAPE, (99,), id="flatten-sig"),
        pytest.param((35, 99), {"sig_shape": SIG_SHAPE}, (35,), SIG_SHAPE, id="flat-nav-sig-shape"),
        pytest.param(DATA_SHAPE, {"nav_shape": (7, 5), "sig_shape": (11, 9)}, (7, 5), (11, 9), id="both"),
        pytest.param(DATA_SHAPE, {"sig_shape": (99,), "sig_dims": 1}, NAV_SHAPE, (99,), id="sig-dims-agrees"),
    ],
)
def test_nav_shape_and_sig_shape_reinterpret_the_arrays_values(
    ctx: gpuudf.Context,
    tmp_path: Path,
    random_counts: CountsFn,
    data_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    nav: tuple[int, ...],
    sig: tuple[int, ...],
) -> None:
    data = random_counts(data_shape, dtype="float32")
    ds = ctx.load("npy", path=write_npy(tmp_path / "data.npy", data), num_partitions=2, **kwargs)
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    assert_sum_udfs_match_numpy(ctx, ds, data.reshape(*nav, *sig))


@pytest.mark.parametrize(
    "dtype",
    [
        *("bool", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint64"),
        *("float16", "float32", "float64", "complex64", "complex128", ">f8", ">i4", ">c16", "<f4"),
    ],
)
def test_every_numeric_dtype_is_read_in_native_byte_order_with_its_values(
    tmp_path: Path, random_counts: CountsFn, dtype: str
) -> None:
    values = random_counts(DATA_SHAPE, dtype="int64", high=2 if dtype == "bool" else 100)
    data = values.astype(dtype)
    if data.dtype.kind == "c":
        data += 1j * values[::-1].astype(dtype)
    ds = load("npy", path=write_npy(tmp_path / "data.npy", data))
    native = np.dtype(dtype).newbyteorder("=")
    assert ds.dtype == native
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    for positions in (range(FRAMES), range(5, 6), np.array([0, 2, 3, 34])):
        frames = ds.read_frames(positions)
        assert frames.dtype == native
        assert_array_equal(frames, flat[positions])


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["v1", "v2", "v3"])
def test_npy_header_versions_are_read(tmp_path: Path, random_counts: CountsFn, version: tuple[int, int]) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    path = write_npy(tmp_path / "data.npy", data, version=version)
    assert path.read_bytes()[6:8] == bytes(version)
    ds = load("npy", path=path)
    assert ds.shape == DATA_SHAPE
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


def test_a_long_v2_header_is_skipped_to_the_right_offset(tmp_path: Path, random_counts: CountsFn) -> None:
    # a structured-looking but numeric header is not possible; a long shape makes the header long
    data = random_counts((3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 4), dtype="float32")
    path = write_npy(tmp_path / "data.npy", data, version=(2, 0))
    ds = load("npy", path=path, sig_dims=2)
    assert_array_equal(ds.read_frames(range(3)), data.reshape(3, 5, 4))


def test_a_fortran_order_file_is_refused_with_a_dataset_error_that_says_fortran(
    tmp_path: Path, random_counts: CountsFn
) -> None:
    path = tmp_path / "fortran.npy"
    np.save(path, np.asfortranarray(random_counts(DATA_SHAPE)))
    assert np.load(path, mmap_mode="r").flags.f_contiguous  # really stored in Fortran order
    with pytest.raises(
        DataSetError, match=r"npy dataset: .*fortran\.npy is stored in Fortran order.*ascontiguousarray"
    ):
        load("npy", path=path)


@pytest.mark.parametrize("shape", [(35, 1, 1), (1, 35, 1), (1, 1, 99), (35, 1), (1, 99, 1, 1)])
def test_a_fortran_order_file_with_one_axis_longer_than_one_is_read(
    tmp_path: Path, random_counts: CountsFn, shape: tuple[int, ...]
) -> None:
    data = random_counts(shape, dtype="int16", high=1000)
    path = write_header_and_data(tmp_path / "fortran.npy", data, fortran_order=True)
    assert header_says_fortran_order(path)
    sig_dims = len(shape) - 1 if shape[0] > 1 else 1
    ds = load("npy", path=path, sig_dims=sig_dims)
    frames = data.reshape(ds.shape.nav_size, *ds.shape.sig)
    assert_array_equal(ds.read_frames(range(ds.shape.nav_size)), frames)


def test_npy_dataset_class_and_load_agree(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="float64")
    path = write_npy(tmp_path / "data.npy", data)
    direct = NpyDataSet(path)
    loaded = load("npy", path=str(path))
    assert isinstance(loaded, NpyDataSet)
    assert direct.shape == loaded.shape == DATA_SHAPE
    assert direct.dtype == loaded.dtype == np.float64
    assert direct.path == loaded.path == path
    assert direct.nbytes == data.nbytes
    assert repr(direct) == (
        f"<NpyDataSet {str(path)!r} shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float64 kind='npy' partitions=1>"
    )


# ---------------------------------------------------------------- errors at load


@pytest.mark.parametrize(
    ("data_shape", "sig_dims", "message"),
    [
        pytest.param(DATA_SHAPE, 4, r"sig_dims=4 does not fit data of shape \(5, 7, 9, 11\): need an int from 1 to 3"),
        pytest.param(DATA_SHAPE, 7, r"sig_dims=7 does not fit data of shape \(5, 7, 9, 11\)"),
        pytest.param((35, 99), 2, r"sig_dims=2 does not fit data of shape \(35, 99\): need an int from 1 to 1"),
        pytest.param(DATA_SHAPE, 0, r"sig_dims=0 does not fit"),
    ],
)
def test_sig_dims_larger_than_the_arrays_rank_is_a_dataset_error(
    tmp_path: Path, data_shape: tuple[int, ...], sig_dims: int, message: str
) -> None:
    path = write_npy(tmp_path / "data.npy", np.zeros(data_shape, dtype=np.float32))
    with pytest.raises(DataSetError, match=message):
        load("npy", path=path, sig_dims=sig_dims)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(np.zeros(DATA_SHAPE, dtype="U4"), r"got dtype <U4", id="str"),
        pytest.param(np.zeros(DATA_SHAPE, dtype=object), r"got dtype object", id="object"),
        pytest.param(np.zeros(DATA_SHAPE, dtype=[("a", "u2")]), r"got dtype \[\('a', '<u2'\)\]", id="record"),
        pytest.param(np.zeros(DATA_SHAPE, dtype="M8[ms]"), r"got dtype datetime64\[ms\]", id="datetime"),
    ],
)
def test_a_non_numeric_npy_file_is_a_dataset_error(tmp_path: Path, data: np.ndarray[Any, Any], message: str) -> None:
    path = tmp_path / "data.npy"
    np.save(path, data, allow_pickle=True)
    with pytest.raises(DataSetError, match=r"npy dataset .*data\.npy: frames must hold numbers .*" + message):
        load("npy", path=path)


@pytest.mark.parametrize("shape", [(35,), ()])
def test_an_array_of_fewer_than_two_axes_is_a_dataset_error(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = write_npy(tmp_path / "data.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(DataSetError, match=r"holds an array of shape .*; frames need at least 2 axes"):
        load("npy", path=path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not an npy file at all, just text", id="text"),
        pytest.param(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',", id="cut-header"),
        pytest.param(b"\x93NUMPY\x09\x00" + b" " * 100, id="unknown-version"),
    ],
)
def test_a_file_that_is_not_npy_is_a_dataset_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.npy"
    path.write_bytes(content)
    with pytest.raises(DataSetError, match=r"npy dataset: .*data\.npy is not a readable \.npy file"):
        load("npy", path=path)


def test_an_npy_file_shorter_than_its_header_says_is_a_dataset_error(tmp_path: Path) -> None:
    path = write_npy(tmp_path / "data.npy", np.zeros(DATA_SHAPE, dtype=np.float32))
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(size - 1)
    with pytest.raises(
        DataSetError,
        match=rf"npy dataset: .*data\.npy holds {size - 1} bytes, too few for 35 frames .* after its 128-byte header",
    ):
        load("npy", path=path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"nav_shape": (6, 7)}, r"nav_shape=\(6, 7\) and sig_shape=\(9, 11\) hold 4158 values", id="nav"),
        pytest.param({"sig_shape": (10, 10)}, r"sig_shape=\(10, 10\) does not divide data", id="sig"),
        pytest.param({"sig_shape": (0, 99)}, r"sig_shape must be a tuple of positive ints", id="sig-zero"),
        pytest.param({"sig_shape": (99,), "sig_dims": 2}, r"sig_dims=2 contradicts sig_shape=\(99,\)", id="contra"),
        pytest.param({"dtype": "float32"}, r"load\('npy'\): got an unexpected keyword argument 'dtype'", id="arg"),
        pytest.param({"num_partitions": 36}, r"num_partitions=36 must be between 1 and", id="partitions"),
    ],
)
def test_bad_npy_arguments_are_dataset_errors_at_load(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = write_npy(tmp_path / "data.npy", np.zeros(DATA_SHAPE, dtype=np.float32))
    with pytest.raises(DataSetError, match=message):
        load("npy", path=path, **kwargs)


def test_a_missing_path_argument_is_a_dataset_error_naming_it() -> None:
    with pytest.raises(DataSetError, match=r"load\('npy'\): missing a required argument: 'path'"):
        load("npy", sig_dims=2)


# ---------------------------------------------------------------- sync_offset (LiberTEM's meaning)


ShiftFn = Callable[[np.ndarray[Any, Any], int], np.ndarray[Any, Any]]


@pytest.mark.parametrize("sync_offset", [1, 4, 34, -1, -4, -34])
def test_npy_sync_offset_runs_equal_numpy_on_the_shifted_frames_with_and_without_roi(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, sync_shifted: ShiftFn, sync_offset: int
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32") + 1
    _, kwargs = data_file("npy", data)
    ds = ctx.load("npy", **kwargs, num_partitions=3, sync_offset=sync_offset)
    expected = sync_shifted(data.reshape(FRAMES, *SIG_SHAPE), sync_offset).reshape(DATA_SHAPE)
    assert_sum_udfs_match_numpy(ctx, ds, expected, sync_offset=sync_offset)
    assert_sum_udfs_match_numpy(ctx, ds, expected, roi=FILE_ROI, sync_offset=sync_offset)


@pytest.mark.parametrize("sync_offset", [3, -3])
def test_npy_sync_offset_read_frames_skips_or_inserts_frames(
    tmp_path: Path, random_counts: CountsFn, sync_shifted: ShiftFn, sync_offset: int
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000) + 1
    ds = load("npy", path=write_npy(tmp_path / "data.npy", data), sync_offset=sync_offset)
    expected = sync_shifted(data.reshape(FRAMES, *SIG_SHAPE), sync_offset)
    assert_reads_match(ds, expected, [range(FRAMES), range(2), range(33, 35), np.array([0, 1, 2, 17, 32, 33, 34])])


@pytest.mark.parametrize(
    ("sync_offset", "message"),
    [
        pytest.param(35, r"sync_offset=35 skips all 35 frames the data holds", id="skips-all"),
        pytest.param(-35, r"sync_offset=-35 pads all 35 frames with zeros", id="pads-all"),
        pytest.param(0.5, r"sync_offset must be an int, got 0\.5", id="float"),
        pytest.param(False, r"sync_offset must be an int, got False", id="bool"),
    ],
)
def test_a_bad_npy_sync_offset_is_a_dataset_error_at_load(tmp_path: Path, sync_offset: Any, message: str) -> None:
    path = write_npy(tmp_path / "data.npy", np.zeros(DATA_SHAPE))
    with pytest.raises(DataSetError, match=message):
        load("npy", path=path, sync_offset=sync_offset)


def test_the_npy_repr_and_diagnostics_name_the_file_and_the_sync_offset(tmp_path: Path) -> None:
    path = write_npy(tmp_path / "data.npy", np.zeros(DATA_SHAPE, dtype=np.float32))
    ds = load("npy", path=path, sync_offset=-2, num_partitions=5)
    assert repr(ds) == (
        f"<NpyDataSet {str(path)!r} shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float32 kind='npy' "
        "partitions=5 sync_offset=-2>"
    )
    rows = dict(ds.get_diagnostics())
    assert (rows["Kind"], rows["File"], rows["sync_offset"]) == ("npy", str(path), "-2")
    assert rows["Number of blank frames inserted at the beginning"] == "2"
    assert rows["Number of frames ignored at the end"] == "2"
