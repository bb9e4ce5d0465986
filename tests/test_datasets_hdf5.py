"""``load("hdf5", ...)``: contiguous and chunked arrays against NumPy, ds_path, chunk-aligned partitions, errors."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import DataSetError
from gpuudf.datasets import DataSet, H5DataSet, load, split_evenly
from gpuudf.datasets.hdf5 import chunk_aligned_frames, has_hdf5_signature
from tests.conftest import PER_FRAME
from tests.udfs_for_tests import (
    DATA_SHAPE,
    FILE_ROI,
    NAV_SHAPE,
    SIG_SHAPE,
    assert_reads_match,
    assert_sum_udfs_match_numpy,
)

FRAMES = math.prod(NAV_SHAPE)

CountsFn = Callable[..., np.ndarray[Any, Any]]
FileFn = Callable[..., tuple[Path, dict[str, Any]]]


def write_h5(path: Path, arrays: dict[str, Any], userblock_size: int = 0, **create: Any) -> Path:
    """``arrays`` (``name: data``) written to a new HDF5 file; ``create`` goes to every ``create_dataset``."""
    with h5py.File(path, "w", userblock_size=userblock_size or None) as file:
        for name, data in arrays.items():
            file.create_dataset(name, data=data, **create)
    return path


# ---------------------------------------------------------------- against NumPy


HDF5_KINDS = [
    pytest.param("hdf5", id="contiguous"),
    pytest.param("hdf5-chunked", id="chunked-gzip"),
    pytest.param("hdf5-unfiltered", id="chunked-unfiltered"),
]


@pytest.mark.parametrize("kind", HDF5_KINDS)
def test_hdf5_udf_results_equal_numpys_with_and_without_roi(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, num_partitions: int | str, kind: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="int32", high=1000)
    _, kwargs = data_file(kind, data)
    count = FRAMES if num_partitions == PER_FRAME else int(num_partitions)
    ds = ctx.load("hdf5", **kwargs, num_partitions=count)
    assert isinstance(ds, H5DataSet)
    assert ds.contiguous is (kind == "hdf5")
    assert ds.reads_file_directly is (kind != "hdf5-chunked")
    assert len(ds.get_partitions()) == count
    assert_sum_udfs_match_numpy(ctx, ds, data)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI)


@pytest.mark.parametrize("kind", HDF5_KINDS)
def test_hdf5_runs_on_the_default_partitions_give_numpys_results(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, kind: str
) -> None:
    data = random_counts((6, 8, 9, 11), dtype="float32")
    _, kwargs = data_file(kind, data)
    ds = ctx.load("hdf5", **kwargs)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=np.arange(48).reshape(6, 8) % 3 != 1)


@pytest.mark.parametrize(
    ("create", "direct"),
    [
        pytest.param({}, True, id="contiguous"),
        pytest.param({"chunks": (1, 7, 9, 11)}, True, id="chunked-rows"),
        pytest.param({"chunks": (2, 3, 9, 11)}, True, id="chunked-edge-chunks"),
        pytest.param({"chunks": (1, 1, 9, 11)}, True, id="chunk-per-frame"),
        pytest.param({"chunks": (5, 7, 9, 11)}, True, id="one-chunk"),
        pytest.param({"chunks": (2, 3, 5, 4)}, False, id="chunks-cut-frames"),
        pytest.param({"chunks": (1, 7, 9, 6)}, False, id="chunks-cut-frame-rows"),
        pytest.param({"chunks": (5, 7, 9, 11), "compression": "gzip"}, False, id="one-chunk-gzip"),
        pytest.param({"chunks": (1, 2, 9, 11), "compression": "lzf", "shuffle": True}, False, id="lzf-shuffle"),
        pytest.param({"chunks": (3, 4, 9, 11), "fletcher32": True}, False, id="fletcher32-only"),
    ],
)
def test_read_frames_returns_the_arrays_frames_for_every_layout(
    tmp_path: Path, random_counts: CountsFn, create: dict[str, Any], direct: bool
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    path = write_h5(tmp_path / "data.h5", {"entry/data": data}, **create)
    ds = load("hdf5", path=path, ds_path="/entry/data")
    assert ds.contiguous is (not create)
    assert ds.reads_file_directly is direct
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    for positions in (range(FRAMES), range(5, 16), range(6, 8), np.array([0, 1, 2, 6, 7, 13, 14, 34])):
        assert_array_equal(ds.read_frames(positions), flat[positions])
    out = np.full((3, *SIG_SHAPE), 9, dtype=np.uint16)
    assert ds.read_frames(np.array([3, 20, 21]), out) is out
    assert_array_equal(out, flat[[3, 20, 21]])


@pytest.mark.parametrize(
    "create",
    [
        pytest.param({}, id="contiguous"),
        pytest.param({"chunks": (1, 4, 9, 11)}, id="chunked-unfiltered"),
        pytest.param({"chunks": (1, 4, 9, 11), "compression": "gzip"}, id="chunked-gzip"),
    ],
)
@pytest.mark.parametrize("stored", [">f4", ">u2", ">i8"])
def test_a_big_endian_stored_array_gives_native_frames_with_the_right_values(
    tmp_path: Path, random_counts: CountsFn, stored: str, create: dict[str, Any]
) -> None:
    data = random_counts(DATA_SHAPE, dtype=stored, high=1000)
    path = write_h5(tmp_path / "data.h5", {"data": data}, **create)
    with h5py.File(path) as file:
        assert file["data"].dtype == np.dtype(stored)
    ds = load("hdf5", path=path, ds_path="data")
    native = np.dtype(stored).newbyteorder("=")
    assert ds.dtype == native
    flat = data.reshape(FRAMES, *SIG_SHAPE).astype(native)
    for positions in (range(FRAMES), np.array([0, 3, 4, 34])):
        frames = ds.read_frames(positions)
        assert frames.dtype == native
        assert_array_equal(frames, flat[positions])


@pytest.mark.parametrize(
    ("data_shape", "kwargs", "nav", "sig"),
    [
        pytest.param(DATA_SHAPE, {"sig_dims": 1}, (5, 7, 9), (11,), id="sig-dims-1"),
        pytest.param(DATA_SHAPE, {"sig_dims": 3}, (5,), (7, 9, 11), id="sig-dims-3"),
        pytest.param((35, 9, 11), {"nav_shape": NAV_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="nav-shape"),
        pytest.param(DATA_SHAPE, {"nav_shape": (35,)}, (35,), SIG_SHAPE, id="flatten-nav"),
        pytest.param(DATA_SHAPE, {"sig_shape": (99,)}, NAV_SHAPE, (99,), id="flatten-sig"),
        pytest.param((5, 7, 99), {"sig_shape": SIG_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="sig-shape"),
        pytest.param(DATA_SHAPE, {"nav_shape": (7, 5), "sig_shape": (11, 9)}, (7, 5), (11, 9), id="both"),
    ],
)
@pytest.mark.parametrize("chunks", [None, True], ids=["contiguous", "chunked"])
def test_sig_dims_nav_shape_and_sig_shape_reinterpret_the_array(
    tmp_path: Path,
    random_counts: CountsFn,
    data_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    nav: tuple[int, ...],
    sig: tuple[int, ...],
    chunks: bool | None,
) -> None:
    data = random_counts(data_shape, dtype="float32")
    path = write_h5(tmp_path / "data.h5", {"data": data}, chunks=chunks)
    ds = load("hdf5", path=path, ds_path="data", **kwargs)
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    frames = data.reshape(math.prod(nav), *sig)
    assert_array_equal(ds.read_frames(range(len(frames))), frames)
    positions = np.array([0, 1, len(frames) // 2, len(frames) - 1])
    assert_array_equal(ds.read_frames(positions), frames[positions])


def test_chunks_stored_out_of_order_are_read_through_the_chunk_table(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        array = file.create_dataset("data", shape=DATA_SHAPE, dtype=np.float32, chunks=(1, 4, 9, 11))
        for row in reversed(range(5)):  # the last chunk lies first in the file
            array[row, 4:] = data[row, 4:]
            array[row, :4] = data[row, :4]
        offsets = [array.id.get_chunk_info(i).byte_offset for i in range(array.id.get_num_chunks())]
    assert offsets != sorted(offsets)
    ds = load("hdf5", path=path)
    assert ds.reads_file_directly
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    assert_array_equal(ds.read_frames(range(FRAMES)), flat)
    for positions in (range(2, 11), np.array([3, 4, 10, 11, 34]), range(34, 35)):
        assert_array_equal(ds.read_frames(positions), flat[positions])


def test_an_array_with_unwritten_chunks_is_read_through_h5py_with_its_fill_value(
    tmp_path: Path, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        array = file.create_dataset("data", shape=DATA_SHAPE, dtype=np.float32, chunks=(1, 7, 9, 11), fillvalue=-3)
        array[1] = data[1]
    ds = load("hdf5", path=path)
    assert not ds.reads_file_directly
    expected = np.full(DATA_SHAPE, -3, dtype=np.float32)
    expected[1] = data[1]
    assert_array_equal(ds.read_frames(range(FRAMES)), expected.reshape(FRAMES, *SIG_SHAPE))


# ---------------------------------------------------------------- finding the array


@pytest.mark.parametrize("ds_path", ["/entry/instrument/detector/data", "entry/instrument/detector/data"])
def test_ds_path_names_an_array_in_nested_groups(tmp_path: Path, random_counts: CountsFn, ds_path: str) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = write_h5(
        tmp_path / "data.h5",
        {"/entry/instrument/detector/data": data, "/entry/other": np.zeros(DATA_SHAPE, dtype=np.float32)},
    )
    ds = load("hdf5", path=path, ds_path=ds_path)
    assert ds.ds_path == "/entry/instrument/detector/data"
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


def test_ds_path_may_be_left_out_when_exactly_one_array_has_three_axes_or_more(
    tmp_path: Path, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = write_h5(
        tmp_path / "data.h5",
        {
            "/entry/deep/group/frames": data,
            "/entry/axis": np.arange(5),
            "/entry/mask": np.ones(SIG_SHAPE, dtype=bool),
            "/scalar": 3.0,
        },
    )
    ds = load("hdf5", path=path)
    assert ds.ds_path == "/entry/deep/group/frames"
    assert ds.shape == DATA_SHAPE
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


def test_several_arrays_of_three_axes_or_more_without_ds_path_is_a_dataset_error_listing_them(tmp_path: Path) -> None:
    path = write_h5(
        tmp_path / "data.h5",
        {"/a/frames": np.zeros(DATA_SHAPE), "/b/frames": np.zeros((2, 3, 4)), "/axis": np.zeros(5)},
    )
    with pytest.raises(
        DataSetError,
        match=r"hdf5 dataset: .*data\.h5 holds several arrays of 3 or more axes, so give ds_path; "
        r"arrays there: /a/frames \(5, 7, 9, 11\), /axis \(5,\), /b/frames \(2, 3, 4\)",
    ):
        load("hdf5", path=path)


def test_no_array_of_three_axes_or_more_without_ds_path_is_a_dataset_error_listing_the_arrays(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"/image": np.zeros((9, 11)), "/axis": np.zeros(5)})
    with pytest.raises(
        DataSetError, match=r"holds no array of 3 or more axes, so give ds_path; arrays there: /axis \(5,\), /image"
    ):
        load("hdf5", path=path)
    empty = write_h5(tmp_path / "empty.h5", {})
    with pytest.raises(DataSetError, match=r"empty\.h5 holds no array of 3 or more axes.*arrays there: none"):
        load("hdf5", path=empty)


def test_a_2d_array_named_by_ds_path_is_one_nav_and_one_sig_axis(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts((13, 17), dtype="float32")
    path = write_h5(tmp_path / "data.h5", {"/image": data})
    ds = load("hdf5", path=path, ds_path="/image", sig_dims=1)
    assert (ds.shape.nav, ds.shape.sig) == ((13,), (17,))
    assert_array_equal(ds.read_frames(range(13)), data)


def test_hdf5_dataset_class_and_load_agree(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = write_h5(tmp_path / "data.h5", {"/entry/data": data})
    direct = H5DataSet(path, "/entry/data")
    loaded = load("hdf5", path=str(path), ds_path="/entry/data")
    assert isinstance(loaded, H5DataSet)
    assert direct.shape == loaded.shape == DATA_SHAPE
    assert direct.dtype == loaded.dtype == np.float32
    assert direct.path == loaded.path == path
    assert direct.chunks is None
    assert direct.compression is None
    assert repr(direct) == (
        f"<H5DataSet {str(path)!r}:/entry/data shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float32 "
        "kind='hdf5' partitions=1>"
    )
    chunked = write_h5(tmp_path / "chunked.h5", {"d": data}, chunks=(1, 4, 9, 11), compression="gzip")
    ds = load("hdf5", path=chunked)
    assert (ds.chunks, ds.compression, ds.contiguous) == ((1, 4, 9, 11), "gzip", False)


# ---------------------------------------------------------------- user blocks


@pytest.mark.parametrize("userblock_size", [512, 1024, 4096])
def test_a_file_with_a_user_block_is_recognised_as_hdf5_and_read(
    tmp_path: Path, random_counts: CountsFn, userblock_size: int
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = write_h5(tmp_path / "data.h5", {"data": data}, userblock_size=userblock_size)
    assert not path.read_bytes().startswith(b"\x89HDF")
    assert has_hdf5_signature(path)
    ds = load("hdf5", path=path)
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x89HDF", id="short"),
        pytest.param(b"x" * 600, id="text"),
        pytest.param(b"x" * 256 + b"\x89HDF\r\n\x1a\n" + b"x" * 600, id="signature-off-the-grid"),
        pytest.param(b"\x93NUMPY" + b"x" * 600, id="npy-magic"),
    ],
)
def test_has_hdf5_signature_is_false_for_other_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file"
    path.write_bytes(content)
    assert not has_hdf5_signature(path)


# ---------------------------------------------------------------- chunk-aligned partitions


@pytest.mark.parametrize(
    ("nav", "chunk_nav", "unit"),
    [
        pytest.param((6, 8), (1, 1), 1, id="one-frame-chunks"),
        pytest.param((6, 8), (2, 8), 16, id="two-rows"),
        pytest.param((6, 8), (2, 3), 16, id="first-axis-sets-it"),
        pytest.param((6, 8), (1, 4), 4, id="half-rows"),
        pytest.param((6, 8), (1, 8), 8, id="whole-rows"),
        pytest.param((6, 8), (1, 3), 8, id="chunks-do-not-tile-a-row"),
        pytest.param((35,), (4,), 4, id="nav1"),
        pytest.param((35,), (1,), 1, id="nav1-one-frame"),
        # 2-row chunks do not tile 5 rows: only whole rows of the first axis start on boundaries
        pytest.param((4, 5, 6), (1, 2, 6), 30, id="nav3-middle-axis-not-tiling"),
        pytest.param((4, 6, 6), (1, 2, 6), 12, id="nav3-middle-axis-tiling"),
        pytest.param((5, 8), (2, 8), 16, id="first-axis-not-tiling"),
        pytest.param((4, 5, 6), (3, 1, 1), 90, id="nav3-first-axis"),
        pytest.param((4, 5, 6), (1, 1, 4), 6, id="nav3-last-axis-not-tiling"),
        pytest.param((4, 5, 6), (1, 1, 3), 3, id="nav3-last-axis-tiling"),
    ],
)
def test_chunk_aligned_frames_is_the_smallest_run_of_frames_starting_on_chunk_boundaries(
    nav: tuple[int, ...], chunk_nav: tuple[int, ...], unit: int
) -> None:
    assert chunk_aligned_frames(nav, chunk_nav) == unit
    # every multiple of unit starts a chunk along every nav axis whose chunks tile it
    for start in range(0, math.prod(nav), unit):
        index = np.unravel_index(start, nav)
        for i, (extent, chunk) in enumerate(zip(nav, chunk_nav, strict=True)):
            if chunk > 1 and (i < len(nav) - 1 or extent % chunk == 0):
                assert index[i] % chunk == 0


def assert_partitions_cover(ds: DataSet, partitions: list[Any]) -> None:
    assert [p.index for p in partitions] == list(range(len(partitions)))
    assert partitions[0].start == 0
    assert partitions[-1].stop == ds.shape.nav_size
    assert all(a.stop == b.start for a, b in itertools.pairwise(partitions))
    assert all(p.num_frames > 0 for p in partitions)


@pytest.mark.parametrize(
    ("chunks", "min_partitions"),
    [
        pytest.param((2, 8, 9, 11), 2, id="two-rows-2"),
        pytest.param((2, 8, 9, 11), 3, id="two-rows-3"),
        pytest.param((1, 4, 9, 11), 3, id="half-rows-3"),
        pytest.param((1, 4, 9, 11), 5, id="half-rows-5"),
        pytest.param((1, 4, 9, 11), 12, id="half-rows-12"),
        pytest.param((1, 3, 9, 11), 4, id="rows-4"),
        pytest.param((1, 3, 3, 3), 6, id="sig-chunked-too"),
    ],
)
def test_default_partitions_of_a_chunked_array_start_and_end_on_chunk_boundaries(
    tmp_path: Path, chunks: tuple[int, ...], min_partitions: int
) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros((6, 8, 9, 11), dtype=np.float32)}, chunks=chunks)
    ds = load("hdf5", path=path)
    unit = chunk_aligned_frames((6, 8), chunks[:2])
    assert unit > 1
    partitions = ds.get_partitions(min_partitions=min_partitions)
    assert len(partitions) == min_partitions
    assert_partitions_cover(ds, partitions)
    assert all(p.start % unit == 0 for p in partitions)
    assert all(p.stop % unit == 0 or p.stop == 48 for p in partitions)
    sizes = [math.ceil(p.num_frames / unit) for p in partitions]
    assert max(sizes) - min(sizes) <= 1  # as even as whole units allow


@pytest.mark.parametrize(
    ("chunks", "min_partitions"),
    [
        pytest.param((2, 8, 9, 11), 4, id="3-units-for-4"),
        pytest.param((3, 8, 9, 11), 3, id="2-units-for-3"),
        pytest.param((6, 8, 9, 11), 2, id="one-chunk"),
        pytest.param((1, 4, 9, 11), 48, id="one-per-frame"),
        pytest.param((1, 1, 9, 11), 7, id="one-frame-chunks"),
    ],
)
def test_too_few_chunk_rows_fall_back_to_plain_even_partitions(
    tmp_path: Path, chunks: tuple[int, ...], min_partitions: int
) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros((6, 8, 9, 11), dtype=np.float32)}, chunks=chunks)
    ds = load("hdf5", path=path)
    assert ds.get_partitions(min_partitions=min_partitions) == split_evenly(48, min_partitions)


def test_an_explicit_partition_count_splits_a_chunked_array_evenly(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros((6, 8, 9, 11))}, chunks=(2, 8, 9, 11))
    ds = load("hdf5", path=path, num_partitions=3)
    assert ds.get_partitions(min_partitions=7) == split_evenly(48, 3)
    contiguous = load("hdf5", path=write_h5(tmp_path / "c.h5", {"data": np.zeros((6, 8, 9, 11))}))
    assert contiguous.get_partitions(min_partitions=5) == split_evenly(48, 5)


# ---------------------------------------------------------------- a file changed after load


def test_a_gzip_chunked_file_truncated_after_its_first_read_is_a_dataset_error(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    data = rng.random(DATA_SHAPE, dtype=np.float32)  # does not compress to nothing
    path = write_h5(tmp_path / "data.h5", {"data": data}, chunks=(1, 7, 9, 11), compression="gzip")
    ds = load("hdf5", path=path)
    assert_array_equal(ds.read_frames(range(7)), data.reshape(FRAMES, *SIG_SHAPE)[:7])
    os.truncate(path, path.stat().st_size // 3)
    with pytest.raises(DataSetError, match=r"data\.h5 is now \d+ bytes, shorter than the \d+ it held at load"):
        ds.read_frames(range(28, 35))


@pytest.mark.parametrize(
    "chunks",
    [pytest.param((1, 7, 9, 11), id="whole-frame-chunks"), pytest.param((1, 7, 3, 11), id="chunks-cut-frames")],
)
def test_an_uncompressed_chunked_file_truncated_after_its_first_read_is_a_dataset_error_not_zeros(
    tmp_path: Path, rng: np.random.Generator, chunks: tuple[int, ...]
) -> None:
    data = rng.random(DATA_SHAPE, dtype=np.float32) + 1
    path = write_h5(tmp_path / "data.h5", {"data": data}, chunks=chunks)
    ds = load("hdf5", path=path)
    assert_array_equal(ds.read_frames(range(7)), data.reshape(FRAMES, *SIG_SHAPE)[:7])
    os.truncate(path, path.stat().st_size // 3)
    with pytest.raises(DataSetError, match=r"data\.h5"):
        ds.read_frames(range(28, 35))


def test_a_contiguous_file_truncated_after_load_is_a_dataset_error_naming_the_frames(
    tmp_path: Path, random_counts: CountsFn
) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": random_counts(DATA_SHAPE)})
    ds = load("hdf5", path=path)
    assert ds.contiguous
    os.truncate(path, path.stat().st_size - 2 * 99 * 4)
    with pytest.raises(DataSetError, match=r"data\.h5 ends at byte \d+, but frames 30-34 need bytes up to \d+"):
        ds.read_frames(range(30, 35))


# ---------------------------------------------------------------- errors at load


def test_a_ds_path_that_does_not_exist_is_a_dataset_error_listing_the_arrays(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"/entry/data": np.zeros(DATA_SHAPE), "/entry/axis": np.zeros(5)})
    with pytest.raises(
        DataSetError,
        match=r"hdf5 dataset: .*data\.h5 has nothing at '/entry/frames'; "
        r"arrays there: /entry/axis \(5,\), /entry/data \(5, 7, 9, 11\)",
    ):
        load("hdf5", path=path, ds_path="/entry/frames")


def test_a_ds_path_naming_a_group_is_a_dataset_error_listing_the_arrays_below_it(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"/entry/detector/data": np.zeros(DATA_SHAPE), "/other": np.zeros(3)})
    with pytest.raises(
        DataSetError,
        match=r"hdf5 dataset: .*data\.h5:/entry is a group, not an array; "
        r"arrays below it: /entry/detector/data \(5, 7, 9, 11\)$",
    ):
        load("hdf5", path=path, ds_path="/entry")


@pytest.mark.parametrize("ds_path", [3, b"/data", ["/data"]])
def test_a_ds_path_that_is_not_a_str_is_a_dataset_error(tmp_path: Path, ds_path: Any) -> None:
    path = write_h5(tmp_path / "data.h5", {"/data": np.zeros(DATA_SHAPE)})
    with pytest.raises(DataSetError, match=r"hdf5 dataset: ds_path must be a str, got"):
        load("hdf5", path=path, ds_path=ds_path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(np.zeros(DATA_SHAPE, dtype=np.float32).tobytes(), id="raw-file"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x93NUMPY\x01\x00", id="npy-magic"),
    ],
)
def test_a_file_that_is_not_hdf5_is_a_dataset_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.h5"
    path.write_bytes(content)
    with pytest.raises(DataSetError, match=r"hdf5 dataset: .*data\.h5 is not an HDF5 file \(no HDF5 signature\)"):
        load("hdf5", path=path)


def test_a_file_with_a_signature_but_broken_contents_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\xff" * 2000)
    with pytest.raises(DataSetError, match=r"hdf5 dataset: .*data\.h5 cannot be opened as HDF5"):
        load("hdf5", path=path)


def test_a_truncated_hdf5_file_is_a_dataset_error_at_load(tmp_path: Path, random_counts: CountsFn) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": random_counts(DATA_SHAPE)})
    os.truncate(path, path.stat().st_size - 100)
    with pytest.raises(DataSetError, match=r"hdf5 dataset: .*data\.h5 .*truncated"):
        load("hdf5", path=path)


@pytest.mark.parametrize(
    ("sig_dims", "message"),
    [
        pytest.param(4, r"sig_dims=4 does not fit data of shape \(5, 7, 9, 11\): need an int from 1 to 3", id="4"),
        pytest.param(9, r"sig_dims=9 does not fit data of shape \(5, 7, 9, 11\)", id="9"),
    ],
)
def test_sig_dims_larger_than_the_arrays_rank_is_a_dataset_error(tmp_path: Path, sig_dims: int, message: str) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros(DATA_SHAPE)})
    with pytest.raises(DataSetError, match=message):
        load("hdf5", path=path, sig_dims=sig_dims)


def test_an_array_of_fewer_than_two_axes_is_a_dataset_error(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"axis": np.zeros(5), "scalar": 1.0})
    with pytest.raises(DataSetError, match=r"data\.h5:/axis has shape \(5,\); frames need at least 2 axes"):
        load("hdf5", path=path, ds_path="axis")
    with pytest.raises(DataSetError, match=r"data\.h5:/scalar has shape \(\); frames need at least 2 axes"):
        load("hdf5", path=path, ds_path="scalar")


def test_a_non_numeric_array_is_a_dataset_error(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"text": np.zeros(DATA_SHAPE, dtype="S4")})
    with pytest.raises(DataSetError, match=r"hdf5 dataset .*data\.h5:/text: frames must hold numbers.*got dtype \|S4"):
        load("hdf5", path=path, ds_path="text")


def test_a_frame_that_is_not_whole_trailing_axes_is_a_dataset_error(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros(DATA_SHAPE)})
    with pytest.raises(DataSetError, match=r"frames of shape \(7, 9, 11, 5\) are not whole trailing axes"):
        load("hdf5", path=path, sig_shape=(7, 9, 11, 5), nav_shape=(1,))
    with pytest.raises(DataSetError, match=r"frames of shape \(33,\) are not whole trailing axes"):
        load("hdf5", path=path, sig_shape=(33,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"nav_shape": (6, 7)}, r"nav_shape=\(6, 7\) and sig_shape=\(9, 11\) hold 4158 values", id="nav"),
        pytest.param({"dtype": "float32"}, r"load\('hdf5'\): got an unexpected keyword argument 'dtype'", id="arg"),
        pytest.param({"num_partitions": 0}, r"num_partitions=0 must be between 1 and", id="partitions"),
    ],
)
def test_bad_hdf5_arguments_are_dataset_errors_at_load(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros(DATA_SHAPE)})
    with pytest.raises(DataSetError, match=message):
        load("hdf5", path=path, **kwargs)


def test_a_missing_path_argument_is_a_dataset_error_naming_it() -> None:
    with pytest.raises(DataSetError, match=r"load\('hdf5'\): missing a required argument: 'path'"):
        load("hdf5", ds_path="/data")


# ---------------------------------------------------------------- links, stored types, open files


@pytest.mark.parametrize("chunks", [pytest.param(None, id="contiguous"), pytest.param((1, 7, 9, 11), id="chunked")])
def test_an_array_behind_an_external_link_is_read_from_its_own_file(
    tmp_path: Path, random_counts: CountsFn, chunks: tuple[int, ...] | None
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32", high=1000)
    write_h5(tmp_path / "target.h5", {"frames": data}, chunks=chunks)
    with h5py.File(tmp_path / "main.h5", "w") as file:
        file["padding"] = np.zeros(1000)  # so that offsets in the two files differ
        file["linked"] = h5py.ExternalLink("target.h5", "/frames")
    ds = load("hdf5", path=tmp_path / "main.h5", ds_path="linked")
    assert isinstance(ds, H5DataSet)
    assert not ds.reads_file_directly
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


def test_a_soft_link_reads_its_target_from_the_files_bytes(tmp_path: Path, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    path = write_h5(tmp_path / "data.h5", {"frames": data})
    with h5py.File(path, "a") as file:
        file["soft"] = h5py.SoftLink("/frames")
    ds = load("hdf5", path=path, ds_path="soft")
    assert isinstance(ds, H5DataSet)
    assert ds.reads_file_directly
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


@pytest.mark.parametrize("chunks", [pytest.param(None, id="contiguous"), pytest.param((1, 7, 9, 11), id="chunked")])
def test_a_padded_compound_complex_type_is_read_through_h5py_not_as_bytes(
    tmp_path: Path, rng: np.random.Generator, chunks: tuple[int, ...] | None
) -> None:
    # {r, i} float32 padded to 12 bytes: h5py shows it as complex64 (8 bytes), the file strides 12
    padded = np.dtype({"names": ["r", "i"], "formats": ["<f4", "<f4"], "offsets": [0, 4], "itemsize": 12})
    values = (rng.integers(0, 100, DATA_SHAPE) + 1j * rng.integers(0, 100, DATA_SHAPE)).astype(np.complex64)
    stored = np.empty(DATA_SHAPE, dtype=padded)
    stored["r"], stored["i"] = values.real, values.imag
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("data", data=stored, chunks=chunks)
    ds = load("hdf5", path=path)
    assert isinstance(ds, H5DataSet)
    assert not ds.reads_file_directly
    assert_array_equal(ds.read_frames(range(FRAMES)), values.reshape(FRAMES, *SIG_SHAPE))


def test_an_array_needing_an_unavailable_filter_is_a_dataset_error_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.ones(DATA_SHAPE, dtype=np.float32)}, compression="gzip")
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: code != h5py.h5z.FILTER_DEFLATE)
    with pytest.raises(DataSetError, match=r"HDF5 filters this installation lacks: deflate \(filter id 1\)"):
        load("hdf5", path=path)


@pytest.mark.parametrize("kind", HDF5_KINDS)
def test_after_a_run_the_file_is_closed_so_others_may_write_it(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, kind: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32", high=1000)
    path, kwargs = data_file(kind, data)
    ds = ctx.load("hdf5", **kwargs, num_partitions=3)
    assert_sum_udfs_match_numpy(ctx, ds, data)
    with h5py.File(path, "a") as file:  # refused while any process holds the file open for reading
        file["results"] = np.arange(3)


def test_a_resizable_array_grown_after_load_reads_the_frames_it_had_at_load(
    tmp_path: Path, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32", high=1000)
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("data", data=data, chunks=(1, 7, 9, 11), maxshape=(None, *DATA_SHAPE[1:]))
    ds = load("hdf5", path=path)
    assert isinstance(ds, H5DataSet)
    assert ds.reads_file_directly
    with h5py.File(path, "a") as file:  # an acquisition still writing
        file["data"].resize(DATA_SHAPE[0] + 2, axis=0)
        file["data"][DATA_SHAPE[0] :] = 7
    assert_array_equal(ds.read_frames(range(FRAMES)), data.reshape(FRAMES, *SIG_SHAPE))


# ---------------------------------------------------------------- sync_offset (LiberTEM's meaning)


ShiftFn = Callable[[np.ndarray[Any, Any], int], np.ndarray[Any, Any]]


@pytest.mark.parametrize("kind", HDF5_KINDS)
@pytest.mark.parametrize("sync_offset", [2, 34, -2, -34])
def test_hdf5_sync_offset_runs_equal_numpy_on_the_shifted_frames_with_and_without_roi(
    ctx: gpuudf.Context,
    data_file: FileFn,
    random_counts: CountsFn,
    sync_shifted: ShiftFn,
    kind: str,
    sync_offset: int,
) -> None:
    data = random_counts(DATA_SHAPE, dtype="int32", high=1000) + 1
    _, kwargs = data_file(kind, data)
    ds = ctx.load("hdf5", **kwargs, sync_offset=sync_offset)
    expected = sync_shifted(data.reshape(FRAMES, *SIG_SHAPE), sync_offset).reshape(DATA_SHAPE)
    assert_sum_udfs_match_numpy(ctx, ds, expected, sync_offset=sync_offset)
    assert_sum_udfs_match_numpy(ctx, ds, expected, roi=FILE_ROI, sync_offset=sync_offset)


@pytest.mark.parametrize("kind", HDF5_KINDS)
@pytest.mark.parametrize("sync_offset", [5, -5])
def test_hdf5_sync_offset_read_frames_skips_or_inserts_frames_for_every_layout(
    data_file: FileFn, random_counts: CountsFn, sync_shifted: ShiftFn, kind: str, sync_offset: int
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000) + 1
    _, kwargs = data_file(kind, data)
    ds = load("hdf5", **kwargs, sync_offset=sync_offset)
    expected = sync_shifted(data.reshape(FRAMES, *SIG_SHAPE), sync_offset)
    assert_reads_match(ds, expected, [range(FRAMES), range(3), range(31, 35), np.array([0, 4, 5, 6, 29, 30, 34])])


@pytest.mark.parametrize(
    ("sync_offset", "message"),
    [
        pytest.param(35, r"sync_offset=35 skips all 35 frames the data holds", id="skips-all"),
        pytest.param(-40, r"sync_offset=-40 pads all 35 frames with zeros", id="pads-all"),
        pytest.param("1", r"sync_offset must be an int, got '1'", id="str"),
    ],
)
def test_a_bad_hdf5_sync_offset_is_a_dataset_error_at_load(tmp_path: Path, sync_offset: Any, message: str) -> None:
    path = write_h5(tmp_path / "data.h5", {"data": np.zeros(DATA_SHAPE)})
    with pytest.raises(DataSetError, match=message):
        load("hdf5", path=path, sync_offset=sync_offset)


def test_the_hdf5_repr_and_diagnostics_name_the_file_the_array_and_the_sync_offset(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "data.h5", {"entry/data": np.zeros(DATA_SHAPE, dtype=np.float32)}, chunks=(1, 7, 9, 11))
    ds = load("hdf5", path=path, sync_offset=4)
    assert repr(ds) == (
        f"<H5DataSet {str(path)!r}:/entry/data shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float32 kind='hdf5' "
        "partitions=1 sync_offset=4>"
    )
    rows = dict(ds.get_diagnostics())
    assert (rows["File"], rows["Array (ds_path)"], rows["chunks"]) == (str(path), "/entry/data", "(1, 7, 9, 11)")
    assert (rows["compression"], rows["Read from the file's bytes"]) == ("None", "yes")
    assert rows["Number of frames skipped at the beginning"] == "4"
    assert rows["Number of blank frames inserted at the end"] == "4"
