"""``load("raw", ...)``: flat binary files against NumPy, sync_offset, headers, byte order, shapes and load errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import DataSetError, Shape
from gpuudf.datasets import RawFileDataSet, load
from gpuudf.udfs import SumUDF
from tests.conftest import PER_FRAME
from tests.udfs_for_tests import DATA_SHAPE, FILE_ROI, NAV_SHAPE, SIG_SHAPE, assert_sum_udfs_match_numpy

FRAMES = math.prod(NAV_SHAPE)

CountsFn = Callable[..., np.ndarray[Any, Any]]
FileFn = Callable[..., tuple[Path, dict[str, Any]]]


def write_raw(path: Path, data: np.ndarray[Any, Any], header: bytes = b"") -> Path:
    path.write_bytes(header + data.tobytes())
    return path


def raw_args(path: Path, dtype: Any = "uint16", **kwargs: Any) -> dict[str, Any]:
    return {"path": path, "nav_shape": NAV_SHAPE, "sig_shape": SIG_SHAPE, "dtype": dtype, **kwargs}


# ---------------------------------------------------------------- against NumPy


def test_raw_udf_results_equal_numpys_with_and_without_roi(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, num_partitions: int | str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    _, kwargs = data_file("raw", data)
    count = FRAMES if num_partitions == PER_FRAME else int(num_partitions)
    ds = ctx.load("raw", **kwargs, num_partitions=count)
    assert len(ds.get_partitions()) == count
    assert_sum_udfs_match_numpy(ctx, ds, data)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI)


def test_read_frames_returns_the_files_frames_at_ranges_and_index_arrays(
    data_file: FileFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    _, kwargs = data_file("raw", data)
    ds = load("raw", **kwargs)
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    assert_array_equal(ds.read_frames(range(FRAMES)), flat)
    assert_array_equal(ds.read_frames(range(3, 9)), flat[3:9])
    positions = np.array([0, 1, 2, 5, 6, 20, 34])
    frames = ds.read_frames(positions)
    assert frames.dtype == np.uint16
    assert frames.shape == (len(positions), *SIG_SHAPE)
    assert_array_equal(frames, flat[positions])


def test_read_frames_fills_the_given_out_buffer_and_returns_it(data_file: FileFn, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file("raw", data)
    ds = load("raw", **kwargs)
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    out = np.full((4, *SIG_SHAPE), -1, dtype=np.float32)
    assert ds.read_frames(range(30, 34), out) is out
    assert_array_equal(out, flat[30:34])
    positions = np.array([1, 33, 34, 7])
    assert ds.read_frames(positions, out) is out
    assert_array_equal(out, flat[positions])


def test_a_file_longer_than_its_frames_is_read_from_its_start(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16")
    path = tmp_path / "long.raw"
    path.write_bytes(data.tobytes() + b"trailing bytes of another frame")
    assert_array_equal(load("raw", **raw_args(path)).read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


# ---------------------------------------------------------------- sync_offset and header


@pytest.mark.parametrize("sync_offset", [1, 4, 10])
def test_a_positive_sync_offset_skips_frames_at_the_start_of_the_file(
    tmp_path: Path, random_counts: CountsFn, sync_offset: int
) -> None:
    stored = random_counts((FRAMES + sync_offset, *SIG_SHAPE), dtype="uint16", high=1000)
    path = write_raw(tmp_path / "data.raw", stored)
    ds = load("raw", **raw_args(path, sync_offset=sync_offset))
    assert ds.shape == (*NAV_SHAPE, *SIG_SHAPE)
    assert_array_equal(ds.read_frames(range(FRAMES)), stored[sync_offset:])
    positions = np.array([0, 2, 3, 34])
    assert_array_equal(ds.read_frames(positions), stored[sync_offset + positions])


@pytest.mark.parametrize("sync_offset", [-1, -4, -34])
def test_a_negative_sync_offset_puts_frames_of_zeros_first(
    tmp_path: Path, random_counts: CountsFn, sync_offset: int
) -> None:
    pad = -sync_offset
    stored = random_counts((FRAMES - pad, *SIG_SHAPE), dtype="uint16", high=1000) + 1  # no zeros of its own
    path = write_raw(tmp_path / "data.raw", stored)
    ds = load("raw", **raw_args(path, sync_offset=sync_offset))
    expected = np.concatenate([np.zeros((pad, *SIG_SHAPE), dtype=np.uint16), stored])
    assert_array_equal(ds.read_frames(range(FRAMES)), expected)
    # reads that start in the zeros and end in the file, as tiles and ROIs cut them
    assert_array_equal(ds.read_frames(range(pad - 1, pad + 1)), expected[pad - 1 : pad + 1])
    positions = np.array([0, pad - 1, pad, FRAMES - 1])
    assert_array_equal(ds.read_frames(positions), expected[positions])
    out = np.full((FRAMES, *SIG_SHAPE), 7, dtype=np.uint16)  # the zeros must overwrite what out held
    assert_array_equal(ds.read_frames(range(FRAMES), out), expected)


@pytest.mark.parametrize("sync_offset", [3, -3])
def test_sync_offset_runs_give_numpys_results_on_every_executor(
    ctx: gpuudf.Context, tmp_path: Path, random_counts: CountsFn, sync_offset: int
) -> None:
    stored = random_counts((FRAMES + 3, *SIG_SHAPE), dtype="float32")
    path = write_raw(tmp_path / "data.raw", stored)
    ds = ctx.load("raw", **raw_args(path, dtype="float32", sync_offset=sync_offset, num_partitions=3))
    if sync_offset > 0:
        expected = stored[sync_offset : sync_offset + FRAMES]
    else:
        expected = np.concatenate([np.zeros((-sync_offset, *SIG_SHAPE), dtype=np.float32), stored])[:FRAMES]
    data = expected.reshape(DATA_SHAPE)
    shift = {"sync_offset": sync_offset, "stored_frames": FRAMES + 3}
    assert_sum_udfs_match_numpy(ctx, ds, data, **shift)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI, **shift)


@pytest.mark.parametrize("sync_offset", [0, 2, -2])
def test_header_nbytes_skips_a_header_before_the_first_frame(
    tmp_path: Path, random_counts: CountsFn, sync_offset: int
) -> None:
    header = b"HEADER" * 20 + b"!"  # 121 bytes: frames start at an odd offset
    stored = random_counts((FRAMES + 2, *SIG_SHAPE), dtype="uint16", high=1000) + 1
    path = write_raw(tmp_path / "data.raw", stored, header=header)
    ds = load("raw", **raw_args(path, header_nbytes=len(header), sync_offset=sync_offset))
    padded = np.concatenate([np.zeros((2, *SIG_SHAPE), dtype=np.uint16), stored])
    expected = padded[2 + sync_offset : 2 + sync_offset + FRAMES]
    assert_array_equal(ds.read_frames(range(FRAMES)), expected)
    assert_array_equal(ds.read_frames(np.array([0, 1, 2, 17, 34])), expected[[0, 1, 2, 17, 34]])


# ---------------------------------------------------------------- dtypes and byte order


@pytest.mark.parametrize("stored", [">u2", ">f4", ">i8", ">f8", ">c8", "<u2", "<f4", "<i4", "|u1", "|b1", "|i1"])
def test_stored_dtypes_of_either_byte_order_give_native_frames_with_the_right_values(
    tmp_path: Path, random_counts: CountsFn, stored: str
) -> None:
    values = random_counts(DATA_SHAPE, dtype="int64", high=2 if stored == "|b1" else 100)
    if np.dtype(stored).kind == "c":
        values = values + 1j * values[::-1]
    data = values.astype(stored)
    path = write_raw(tmp_path / "data.raw", data)
    ds = load("raw", **raw_args(path, dtype=stored))
    native = np.dtype(stored).newbyteorder("=")
    assert ds.dtype == native
    assert ds.dtype.isnative
    flat = values.reshape(FRAMES, *SIG_SHAPE).astype(native)
    for positions in (range(FRAMES), range(4, 5), np.array([0, 3, 4, 33])):
        frames = ds.read_frames(positions)
        assert frames.dtype == native
        assert_array_equal(frames, flat[positions])
    out = np.empty((3, *SIG_SHAPE), dtype=native)
    assert_array_equal(ds.read_frames(range(2, 5), out), flat[2:5])


@pytest.mark.parametrize("stored", [">f4", ">u2"])
def test_big_endian_files_give_numpys_results_on_every_executor(
    ctx: gpuudf.Context, tmp_path: Path, random_counts: CountsFn, stored: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32", high=1000)
    path = write_raw(tmp_path / "data.raw", data.astype(stored))
    ds = ctx.load("raw", **raw_args(path, dtype=stored, num_partitions=3))
    assert ds.dtype == np.dtype(stored).newbyteorder("=")
    assert_sum_udfs_match_numpy(ctx, ds, data)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI)


@pytest.mark.parametrize("dtype", ["uint16", np.uint16, np.dtype("uint16"), "u2", "<u2", "=u2"])
def test_dtype_may_be_a_name_a_type_or_a_numpy_dtype(tmp_path: Path, random_counts: CountsFn, dtype: Any) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16")
    path = write_raw(tmp_path / "data.raw", data)
    ds = load("raw", **raw_args(path, dtype=dtype))
    assert ds.dtype == np.uint16
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("nav", "sig"),
    [
        pytest.param((35,), (99,), id="nav1-sig1"),
        pytest.param((35,), (9, 11), id="nav1-sig2"),
        pytest.param((5, 7), (9, 11), id="nav2-sig2"),
        pytest.param((5, 7), (99,), id="nav2-sig1"),
        pytest.param((5, 7, 1), (3, 3, 11), id="nav3-sig3"),
        pytest.param((1, 5, 7), (9, 11, 1), id="unit-axes"),
        pytest.param((5, 7, 9), (11,), id="nav3-sig1"),
        pytest.param((7, 5), (11, 9), id="transposed-shapes"),
    ],
)
def test_nav_and_sig_shapes_of_any_number_of_axes_read_the_files_values_in_c_order(
    tmp_path: Path, random_counts: CountsFn, nav: tuple[int, ...], sig: tuple[int, ...]
) -> None:
    values = random_counts((3465,), dtype="uint16", high=1000)
    path = write_raw(tmp_path / "data.raw", values)
    ds = load("raw", path=path, nav_shape=nav, sig_shape=sig, dtype="uint16")
    assert isinstance(ds.shape, Shape)
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    assert ds.shape.sig_dims == len(sig)
    frames = values.reshape(math.prod(nav), *sig)
    assert_array_equal(ds.read_frames(range(math.prod(nav))), frames)
    assert_array_equal(ds.read_frames(np.array([0, math.prod(nav) - 1])), frames[[0, -1]])


@pytest.mark.parametrize("sig", [(9, 11), (99,), (3, 33), (1, 99)])
def test_another_sig_shape_reinterprets_the_same_bytes_of_each_frame(
    ctx: gpuudf.Context, tmp_path: Path, random_counts: CountsFn, sig: tuple[int, ...]
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16")
    path = write_raw(tmp_path / "data.raw", data)
    ds = ctx.load("raw", path=path, nav_shape=NAV_SHAPE, sig_shape=sig, dtype="uint16", num_partitions=2)
    assert ds.shape.sig == sig
    assert_sum_udfs_match_numpy(ctx, ds, data.reshape(*NAV_SHAPE, *sig), roi=FILE_ROI)


def test_an_int_is_one_axis_and_numpy_ints_are_accepted(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16")
    path = write_raw(tmp_path / "data.raw", data)
    ds = load("raw", path=str(path), nav_shape=35, sig_shape=(np.int64(9), np.uint8(11)), dtype="uint16")
    assert (ds.shape.nav, ds.shape.sig) == ((35,), (9, 11))
    ds = load("raw", path=path, nav_shape=np.array([5, 7]), sig_shape=[9, 11], dtype="uint16", sync_offset=np.int32(0))
    assert (ds.shape.nav, ds.shape.sig) == (NAV_SHAPE, SIG_SHAPE)


def test_raw_dataset_class_and_load_agree(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = write_raw(tmp_path / "data.raw", data)
    direct = RawFileDataSet(path, NAV_SHAPE, SIG_SHAPE, "float32")
    loaded = load("raw", **raw_args(path, dtype="float32"))
    assert isinstance(loaded, RawFileDataSet)
    assert direct.shape == loaded.shape == DATA_SHAPE
    assert direct.dtype == loaded.dtype == np.float32
    assert direct.nbytes == loaded.nbytes == data.nbytes
    assert direct.frame_nbytes == math.prod(SIG_SHAPE) * 4
    assert direct.path == loaded.path == path.absolute()
    assert repr(direct) == (
        f"<RawFileDataSet {str(path)!r} shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float32 kind='raw' partitions=1>"
    )


def test_a_relative_path_is_resolved_at_load(
    tmp_path: Path, random_counts: CountsFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16")
    write_raw(tmp_path / "data.raw", data)
    monkeypatch.chdir(tmp_path)
    ds = load("raw", **raw_args(Path("data.raw")))
    monkeypatch.chdir(tmp_path.parent)
    assert ds.path == tmp_path / "data.raw"
    assert_array_equal(ds.read_frames(range(2)), data.reshape(FRAMES, *SIG_SHAPE)[:2])


# ---------------------------------------------------------------- errors at load


@pytest.mark.parametrize(
    ("stored_frames", "header", "kwargs", "message"),
    [
        pytest.param(
            34, 0, {}, r"holds 6732 bytes, too few for 35 frames of \(9, 11\) uint16 .*needs 6930", id="frame"
        ),
        pytest.param(35, 0, {"dtype": "uint32"}, r"holds 6930 bytes, too few .*uint32 \(396 bytes each\)", id="dtype"),
        pytest.param(
            35,
            100,
            {"header_nbytes": 101},
            r"holds 7030 bytes, .* after a 101-byte header: it needs 7031 bytes",
            id="header-nbytes",
        ),
        pytest.param(
            35,
            0,
            {"sync_offset": 1},
            r"holds 6930 .* after skipping 1 frames \(sync_offset\): it needs 7128",
            id="sync",
        ),
        pytest.param(
            32, 0, {"sync_offset": -2}, r"holds 6336 bytes.* less 2 frames of zeros \(sync_offset\).* 6534", id="neg"
        ),
        pytest.param(0, 0, {}, r"holds 0 bytes, too few", id="empty-file"),
    ],
)
def test_a_file_shorter_than_its_frames_is_a_dataset_error_saying_what_it_needs(
    tmp_path: Path, stored_frames: int, header: int, kwargs: dict[str, Any], message: str
) -> None:
    path = write_raw(tmp_path / "short.raw", np.ones((stored_frames, *SIG_SHAPE), dtype=np.uint16), b"h" * header)
    with pytest.raises(DataSetError, match=r"raw dataset: .*short\.raw " + message):
        load("raw", **raw_args(path, **kwargs))


@pytest.mark.parametrize("dtype", ["foo", "uint13", "float128x", 3.5])
def test_an_unknown_dtype_is_a_dataset_error_naming_it(tmp_path: Path, dtype: Any) -> None:
    path = write_raw(tmp_path / "data.raw", np.zeros(DATA_SHAPE, dtype=np.uint16))
    with pytest.raises(DataSetError, match=rf"raw dataset: unknown dtype {dtype!r}"):
        load("raw", **raw_args(path, dtype=dtype))


@pytest.mark.parametrize(
    ("dtype", "shown"),
    [
        pytest.param("U4", "<U4", id="str"),
        pytest.param("S2", "|S2", id="bytes"),
        pytest.param(object, "object", id="object"),
        pytest.param("M8[s]", "datetime64", id="datetime"),
        pytest.param([("a", "u2"), ("b", "u2")], r"\[\('a'", id="record"),
        pytest.param("(2,)f4", r"\('<f4', \(2,\)\)", id="subarray"),
    ],
)
def test_a_non_numeric_dtype_is_a_dataset_error(tmp_path: Path, dtype: Any, shown: str) -> None:
    path = write_raw(tmp_path / "data.raw", np.zeros(DATA_SHAPE, dtype=np.uint64))
    with pytest.raises(DataSetError, match=rf"raw dataset: frames must hold numbers .*got dtype {shown}"):
        load("raw", **raw_args(path, dtype=dtype))


@pytest.mark.parametrize("name", ["nav_shape", "sig_shape"])
@pytest.mark.parametrize("value", [(5, 0), (5, -7), (5.0, 7), "57", (), None, (True, 7), [[5, 7]], -3, 0])
def test_nav_and_sig_shape_must_be_positive_ints(tmp_path: Path, name: str, value: Any) -> None:
    path = write_raw(tmp_path / "data.raw", np.zeros(DATA_SHAPE, dtype=np.uint16))
    shown = (value,) if isinstance(value, int) else value  # an int is one axis
    with pytest.raises(DataSetError, match=re.escape(f"{name} must be a tuple of positive ints, got {shown!r}")):
        load("raw", **raw_args(path, **{name: value}))


def test_a_missing_required_argument_is_a_dataset_error_naming_it(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "data.raw", np.zeros(DATA_SHAPE, dtype=np.uint16))
    with pytest.raises(DataSetError, match=r"load\('raw'\): missing a required argument: 'nav_shape'"):
        load("raw", path=path)
    with pytest.raises(DataSetError, match=r"load\('raw'\): missing a required argument: 'dtype'"):
        load("raw", path=path, nav_shape=NAV_SHAPE, sig_shape=SIG_SHAPE)
    with pytest.raises(DataSetError, match=r"load\('raw'\): missing a required argument: 'path'"):
        load("raw", nav_shape=NAV_SHAPE, sig_shape=SIG_SHAPE, dtype="uint16")


def test_an_unknown_argument_is_a_dataset_error_naming_it(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "data.raw", np.zeros(DATA_SHAPE, dtype=np.uint16))
    with pytest.raises(DataSetError, match=r"load\('raw'\): got an unexpected keyword argument 'sig_dims'"):
        load("raw", **raw_args(path), sig_dims=2)


def test_arguments_may_be_given_in_their_order_and_too_many_are_a_dataset_error(
    ctx: gpuudf.Context, tmp_path: Path, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    path = write_raw(tmp_path / "data.raw", data)
    ds = ctx.load("raw", path, NAV_SHAPE, SIG_SHAPE, "uint16")
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))
    with pytest.raises(DataSetError, match=r"load\('raw'\): too many positional arguments"):
        ctx.load("raw", path, NAV_SHAPE, SIG_SHAPE, "uint16", 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"sync_offset": -35}, r"sync_offset=-35 pads all 35 frames with zeros", id="pads-all"),
        pytest.param({"sync_offset": -100}, r"sync_offset=-100 pads all 35 frames", id="pads-more"),
        pytest.param({"sync_offset": 1.5}, r"sync_offset must be an int, got 1\.5", id="float-sync"),
        pytest.param({"sync_offset": True}, r"sync_offset must be an int, got True", id="bool-sync"),
        pytest.param({"header_nbytes": -1}, r"header_nbytes must be at least 0, got -1", id="negative-header"),
        pytest.param({"header_nbytes": "8"}, r"header_nbytes must be an int, got '8'", id="str-header"),
        pytest.param({"num_partitions": 0}, r"num_partitions=0 must be between 1 and .* \(35\)", id="np0"),
        pytest.param({"num_partitions": 36}, r"num_partitions=36 must be between", id="np36"),
        pytest.param({"path": 42}, r"raw dataset needs a file path \(str or pathlib.Path\), got int", id="int-path"),
    ],
)
def test_bad_raw_arguments_are_dataset_errors_at_load(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = write_raw(tmp_path / "data.raw", np.zeros(DATA_SHAPE, dtype=np.uint16))
    with pytest.raises(DataSetError, match=message):
        load("raw", **{**raw_args(path), **kwargs})


def test_a_file_replaced_between_runs_is_read_anew(ctx: gpuudf.Context, tmp_path: Path) -> None:
    path = tmp_path / "data.raw"
    np.ones((4, 3, 5), dtype=np.float32).tofile(path)
    ds = ctx.load("raw", path=path, nav_shape=(4,), sig_shape=(3, 5), dtype="float32")
    assert ctx.run_udf(ds, SumUDF())["intensity"].data.sum() == 60
    replacement = tmp_path / "new.raw"
    np.full((4, 3, 5), 2, dtype=np.float32).tofile(replacement)
    replacement.replace(path)  # a new file under the old name, as writers that rename do
    assert ctx.run_udf(ds, SumUDF())["intensity"].data.sum() == 120


def test_partitions_follow_bytes_and_few_huge_frames_still_spread_over_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.raw"
    np.zeros((12, 16, 16), dtype=np.float32).tofile(path)  # 1 KiB frames
    ds = load("raw", path=path, nav_shape=(12,), sig_shape=(16, 16), dtype="float32")
    monkeypatch.setattr(RawFileDataSet, "TARGET_PARTITION_NBYTES", 4 * 1024)
    assert [p.num_frames for p in ds.get_partitions(min_partitions=1)] == [4, 4, 4]  # 4 KiB each
    assert len(ds.get_partitions(min_partitions=6)) == 6  # two per worker of three wins over size
    # frames larger than the target: one frame per partition, never fewer partitions than frames allow
    monkeypatch.setattr(RawFileDataSet, "TARGET_PARTITION_NBYTES", 100)
    assert [p.num_frames for p in ds.get_partitions(min_partitions=2)] == [1] * 12


# ---------------------------------------------------------------- repr and diagnostics


def test_the_raw_repr_and_diagnostics_count_the_files_frames_as_libertem_does(tmp_path: Path) -> None:
    # 40 frames in the file: 2 skipped at the start, 35 read, 3 left at the end
    path = write_raw(tmp_path / "data.raw", np.zeros((40, *SIG_SHAPE), dtype=np.uint16), b"h" * 64)
    ds = load("raw", **raw_args(path, sync_offset=2, header_nbytes=64, num_partitions=3))
    assert repr(ds) == (
        f"<RawFileDataSet {str(path)!r} shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=uint16 kind='raw' "
        "partitions=3 sync_offset=2>"
    )
    assert ds.sync_offset_info() == {
        "frames_skipped_start": 2,
        "frames_ignored_end": 3,
        "frames_inserted_start": 0,
        "frames_inserted_end": 0,
    }
    rows = dict(ds.get_diagnostics())
    assert (rows["Kind"], rows["File"], rows["Partition shape"]) == ("raw", str(path), "(12, 9, 11)")
    assert rows["Number of frames ignored at the end"] == "3"
