"""``ctx.load("memory", ...)``: shapes, reshaping, partitions, frames and load-time errors."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import UDF, DataSetError, Shape
from gpuudf.buffers import BufferViews
from gpuudf.datasets import DataSet, MemoryDataSet, load, split_evenly
from gpuudf.udfs import SumSigUDF
from tests.conftest import PER_FRAME
from tests.udfs_for_tests import (
    DATA_SHAPE,
    FILE_ROI,
    NAV_SHAPE,
    SIG_DIMS_CASES,
    SIG_SHAPE,
    ProbeUDF,
    SumFrameUDF,
    SumTileUDF,
    assert_reads_match,
    assert_sum_udfs_match_numpy,
)

FRAMES = math.prod(NAV_SHAPE)

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


@pytest.mark.parametrize(
    ("data_shape", "sig_dims", "nav", "sig"),
    SIG_DIMS_CASES,
)
def test_memory_dataset_shape_splits_nav_and_sig(
    ctx: gpuudf.Context,
    data_shape: tuple[int, ...],
    sig_dims: int | None,
    nav: tuple[int, ...],
    sig: tuple[int, ...],
) -> None:
    data = np.zeros(data_shape, dtype=np.uint16)
    kwargs = {} if sig_dims is None else {"sig_dims": sig_dims}
    ds = ctx.load("memory", data=data, **kwargs)
    assert isinstance(ds, DataSet)
    assert isinstance(ds.shape, Shape)
    assert ds.shape == data_shape
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    assert ds.dtype == np.uint16


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int64", "float16", "float32", "float64", "complex128"])
def test_memory_dataset_keeps_the_datas_dtype(ctx: gpuudf.Context, dtype: str) -> None:
    assert ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=dtype)).dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    ("data_shape", "kwargs", "nav", "sig"),
    [
        pytest.param((35, 9, 11), {"nav_shape": NAV_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="nav-shape"),
        pytest.param(DATA_SHAPE, {"nav_shape": (35,)}, (35,), SIG_SHAPE, id="flatten-nav"),
        pytest.param((5, 7, 99), {"sig_shape": SIG_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="sig-shape"),
        pytest.param(DATA_SHAPE, {"sig_shape": SIG_SHAPE}, NAV_SHAPE, SIG_SHAPE, id="same-sig-shape-keeps-nav"),
        pytest.param(DATA_SHAPE, {"sig_shape": (99,)}, NAV_SHAPE, (99,), id="flatten-sig"),
        pytest.param((35, 99), {"sig_shape": SIG_SHAPE}, (35,), SIG_SHAPE, id="flat-nav-sig-shape"),
        pytest.param((5, 693), {"sig_shape": SIG_SHAPE}, (35,), SIG_SHAPE, id="no-frame-axes-flattens"),
        pytest.param(DATA_SHAPE, {"nav_shape": (7, 5), "sig_shape": (99,)}, (7, 5), (99,), id="both"),
        pytest.param(DATA_SHAPE, {"sig_shape": (99,), "sig_dims": 1}, NAV_SHAPE, (99,), id="sig-dims-agrees"),
    ],
)
def test_nav_shape_and_sig_shape_reinterpret_the_data(
    ctx: gpuudf.Context,
    random_counts: CountsFn,
    data_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    nav: tuple[int, ...],
    sig: tuple[int, ...],
) -> None:
    data = random_counts(data_shape)
    ds = ctx.load("memory", data=data, **kwargs)
    assert (ds.shape.nav, ds.shape.sig) == (nav, sig)
    res = ctx.run_udf(dataset=ds, udf=SumFrameUDF())
    frames = data.reshape(math.prod(nav), math.prod(sig))
    assert_array_equal(res["per_frame"].data, frames.sum(axis=1, dtype=np.float64).reshape(nav))
    assert_array_equal(res["total"].data, frames.sum(axis=0, dtype=np.float64).reshape(sig))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(np.asfortranarray, id="fortran-order"),
        pytest.param(lambda a: np.concatenate([a, a], axis=-1)[..., ::2], id="strided-view"),
        pytest.param(lambda a: np.flip(a, axis=0), id="negative-stride"),
    ],
)
def test_non_contiguous_data_gives_the_same_results(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    make: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]],
) -> None:
    data = make(random_counts(DATA_SHAPE))
    res = ctx.run_udf(dataset=load_partitioned(data), udf=SumTileUDF(depth=4))
    assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3), dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=(0, 1), dtype=np.float64))


# ---------------------------------------------------------------- partitions


@pytest.mark.parametrize("count", [1, 2, 3, 7, 34, 35])
def test_explicit_num_partitions_cover_every_frame_in_even_contiguous_runs(ctx: gpuudf.Context, count: int) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=np.float32), num_partitions=count)
    for min_partitions in (1, 4, 100):
        parts = ds.get_partitions(min_partitions=min_partitions)
        assert len(parts) == count
        assert [p.index for p in parts] == list(range(count))
        assert parts[0].start == 0
        assert parts[-1].stop == FRAMES
        assert all(a.stop == b.start for a, b in itertools.pairwise(parts))
        sizes = [p.num_frames for p in parts]
        assert max(sizes) - min(sizes) <= 1
        assert sum(sizes) == FRAMES


def test_default_partitions_follow_the_executors_wish_up_to_one_per_frame(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=np.float32))
    assert len(ds.get_partitions()) == 1
    assert len(ds.get_partitions(min_partitions=4)) == 4
    assert len(ds.get_partitions(min_partitions=1000)) == FRAMES


@pytest.mark.parametrize(("frames", "count"), [(10, 4), (35, 3), (35, 7), (35, 35), (13, 1), (13, 5)])
def test_split_evenly_makes_contiguous_runs_whose_sizes_differ_by_at_most_one(frames: int, count: int) -> None:
    parts = split_evenly(frames, count)
    assert len(parts) == count
    assert [p.start for p in parts] == [0] + [p.stop for p in parts[:-1]]
    assert parts[-1].stop == frames
    sizes = [p.num_frames for p in parts]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1


# ---------------------------------------------------------------- frames


def test_read_frames_returns_the_frames_at_flat_positions(random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load("memory", data=data)
    flat = data.reshape(FRAMES, *SIG_SHAPE)
    assert_array_equal(ds.read_frames(range(3, 9)), flat[3:9])
    positions = np.array([0, 4, 34])
    assert_array_equal(ds.read_frames(positions), flat[positions])
    out = np.empty((3, *SIG_SHAPE), dtype=data.dtype)
    assert ds.read_frames(positions, out=out) is out
    assert_array_equal(out, flat[positions])
    out_range = np.empty((2, *SIG_SHAPE), dtype=data.dtype)
    ds.read_frames(range(10, 12), out=out_range)
    assert_array_equal(out_range, flat[10:12])


def test_memory_dataset_shares_the_array_but_hands_out_read_only_views(random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load("memory", data=data)
    view = ds.read_frames(range(5))
    assert np.shares_memory(view, data)
    assert not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[...] = 0
    assert data.flags.writeable


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"data": [[1, 2], [3, 4]]}, r"memory dataset needs a NumPy array as data, got list", id="list"),
        pytest.param({"data": None}, r"memory dataset needs data \(a NumPy array\), or datashape", id="none"),
        pytest.param({"data": np.zeros(5)}, r"needs at least 2 axes \(nav and sig\), got shape \(5,\)", id="1d"),
        pytest.param({"data": np.zeros((3, 4), dtype=object)}, r"needs numeric data, got dtype object", id="object"),
        pytest.param({"data": np.zeros((3, 4), dtype="U2")}, r"needs numeric data, got dtype <U2", id="str"),
        pytest.param({"data": np.zeros(DATA_SHAPE), "sig_dims": 0}, r"sig_dims=0 does not fit data of shape", id="sd0"),
        pytest.param({"data": np.zeros(DATA_SHAPE), "sig_dims": 4}, r"sig_dims=4 does not fit .* 1 to 3", id="sd4"),
        pytest.param({"data": np.zeros(DATA_SHAPE), "sig_dims": -1}, r"sig_dims=-1 does not fit", id="sd-neg"),
        pytest.param({"data": np.zeros(DATA_SHAPE), "sig_dims": 2.0}, r"sig_dims=2\.0 does not fit", id="sd-float"),
        pytest.param({"data": np.zeros(DATA_SHAPE), "sig_dims": True}, r"sig_dims=True does not fit", id="sd-bool"),
        pytest.param({"data": np.zeros(DATA_SHAPE), "sig_dims": "2"}, r"sig_dims='2' does not fit", id="sd-str"),
        pytest.param({"data": np.zeros((0, 7, 9, 11))}, r"dataset shape \(0, 7, 9, 11\) is empty", id="empty-nav"),
        pytest.param({"data": np.zeros((5, 7, 0, 11))}, r"dataset shape \(5, 7, 0, 11\) is empty", id="empty-sig"),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "nav_shape": (6, 7)},
            r"nav_shape=\(6, 7\) and sig_shape=\(9, 11\) hold 4158 values, the data 3465",
            id="nav-shape-mismatch",
        ),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "sig_shape": (10, 10)},
            r"sig_shape=\(10, 10\) does not divide data of shape",
            id="sig-shape-mismatch",
        ),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "sig_shape": (99,), "sig_dims": 2},
            r"sig_dims=2 contradicts sig_shape=\(99,\)",
            id="sig-dims-contradicts",
        ),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "num_partitions": 0},
            r"num_partitions=0 must be between 1 and .* \(35\)",
            id="np0",
        ),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "num_partitions": 36}, r"num_partitions=36 must be between", id="np36"
        ),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "num_partitions": 2.5}, r"num_partitions must be an int", id="np-f"
        ),
        pytest.param(
            {"data": np.zeros(DATA_SHAPE), "num_partitions": True}, r"num_partitions must be an int", id="np-b"
        ),
        pytest.param({"data": np.zeros(DATA_SHAPE), "path": "x.npy"}, r"load\('memory'\): .*'path'", id="unknown-arg"),
        pytest.param({}, r"memory dataset needs data \(a NumPy array\), or datashape", id="no-data"),
    ],
)
def test_bad_memory_load_is_a_dataset_error_at_load(ctx: gpuudf.Context, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataSetError, match=message):
        ctx.load("memory", **kwargs)


@pytest.mark.parametrize("kind", ["zarr", "Memory", "", 3])
def test_an_unknown_dataset_kind_is_a_dataset_error_listing_the_kinds(ctx: gpuudf.Context, kind: Any) -> None:
    with pytest.raises(DataSetError, match=rf"unknown dataset kind {kind!r}; available: .*memory"):
        ctx.load(kind, data=np.zeros(DATA_SHAPE))


def test_dataset_error_is_a_value_error() -> None:
    assert issubclass(DataSetError, ValueError)
    with pytest.raises(ValueError, match="unknown dataset kind"):
        load("no-such-kind")


def test_memory_dataset_class_and_load_agree(random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE)
    direct = MemoryDataSet(data, sig_dims=2)
    loaded = load("memory", data=data, sig_dims=2)
    assert direct.shape == loaded.shape
    assert direct.dtype == loaded.dtype
    assert direct.nbytes == loaded.nbytes == data.nbytes
    assert direct.frame_nbytes == math.prod(SIG_SHAPE) * data.itemsize
    assert repr(direct) == (
        "<MemoryDataSet shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float32 kind='memory' partitions=1>"
    )


# ---------------------------------------------------------------- LiberTEM's keywords: tileshape


ShiftFn = Callable[[np.ndarray[Any, Any], int], np.ndarray[Any, Any]]


def tile_depths_seen(ctx: gpuudf.Context, ds: DataSet, method: str = "tile", depth: int | None = None) -> list[int]:
    """Per frame, the depth of the tile (or partition) a :class:`ProbeUDF` got it in."""
    res = ctx.run_udf(dataset=ds, udf=ProbeUDF(method=method, depth=depth))
    shapes = [entry["data"] for entry in res["view_shapes"].data.reshape(-1)]
    assert all(shape[1:] == tuple(ds.shape.sig) for shape in shapes)  # whole frames, always
    return [shape[0] for shape in shapes]


def tiles_of(ds: DataSet, depth: int) -> list[int]:
    """Per frame, the depth of its tile when each partition is cut into tiles of ``depth`` frames."""
    depths = []
    for part in ds.get_partitions():
        for start in range(part.start, part.stop, depth):
            tile = min(depth, part.stop - start)
            depths.extend([tile] * tile)
    return depths


@pytest.mark.parametrize("depth", [1, 4, 7, 18])
def test_tileshape_sets_the_depth_of_the_tiles_a_process_tile_udf_gets(
    ctx: gpuudf.Context, random_counts: CountsFn, depth: int
) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), num_partitions=2, tileshape=(depth, *SIG_SHAPE))
    assert ds.preferred_tile_depth == depth
    assert tile_depths_seen(ctx, ds) == tiles_of(ds, depth)


def test_the_sig_part_of_tileshape_is_accepted_and_tiles_stay_whole_frames(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load("memory", data=data, num_partitions=3, tileshape=(3, 4, 4))
    assert tile_depths_seen(ctx, ds) == tiles_of(ds, 3)
    assert_sum_udfs_match_numpy(ctx, ds, data)


def test_a_udfs_smaller_depth_preference_wins_over_tileshape(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE), num_partitions=1, tileshape=(6, *SIG_SHAPE))
    assert tile_depths_seen(ctx, ds, depth=2) == tiles_of(ds, 2)
    assert tile_depths_seen(ctx, ds, depth=20) == tiles_of(ds, 6)


def test_a_partition_udf_gets_the_whole_partition_despite_tileshape(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.zeros(DATA_SHAPE), num_partitions=2, tileshape=(2, *SIG_SHAPE))
    assert tile_depths_seen(ctx, ds, method="partition") == [18] * 18 + [17] * 17


def test_without_tileshape_a_dataset_has_no_tile_depth_preference() -> None:
    assert load("memory", data=np.zeros(DATA_SHAPE)).preferred_tile_depth is None


@pytest.mark.parametrize(
    ("tileshape", "message"),
    [
        pytest.param((4, 99), r"tileshape=\(4, 99\) must have 3 axes, \(depth, \*sig\)", id="rank-short"),
        pytest.param((4, 1, 9, 11), r"tileshape=\(4, 1, 9, 11\) must have 3 axes", id="rank-long"),
        pytest.param(4, r"tileshape=\(4,\) must have 3 axes", id="int"),
        pytest.param((0, 9, 11), r"tileshape must be a tuple of positive ints, got \(0, 9, 11\)", id="zero-depth"),
        pytest.param((-2, 9, 11), r"tileshape must be a tuple of positive ints, got \(-2, 9, 11\)", id="neg-depth"),
        pytest.param((2, 0, 11), r"tileshape must be a tuple of positive ints", id="zero-sig"),
        pytest.param((2.0, 9, 11), r"tileshape must be a tuple of positive ints", id="float"),
        pytest.param((True, 9, 11), r"tileshape must be a tuple of positive ints", id="bool"),
        pytest.param((), r"tileshape must be a tuple of positive ints, got \(\)", id="empty"),
        pytest.param("abc", r"tileshape must be a tuple of positive ints, got 'abc'", id="str"),
    ],
)
def test_a_bad_tileshape_is_a_dataset_error_at_load(tileshape: Any, message: str) -> None:
    with pytest.raises(DataSetError, match=message):
        load("memory", data=np.zeros(DATA_SHAPE), tileshape=tileshape)


# ---------------------------------------------------------------- LiberTEM's keywords: sync_offset


#: What LiberTEM 0.16.0 gives (inline, SumSigUDF) for ``(arange(180) % 97 + 1)`` as (4, 5, 3, 3) float32.
LIBERTEM_SUM_SIG = {
    0: [45, 126, 207, 288, 369, 450, 531, 612, 693, 774, 661, 63, 144, 225, 306, 387, 468, 549, 630, 711],
    2: [207, 288, 369, 450, 531, 612, 693, 774, 661, 63, 144, 225, 306, 387, 468, 549, 630, 711, 0, 0],
    -3: [0, 0, 0, 45, 126, 207, 288, 369, 450, 531, 612, 693, 774, 661, 63, 144, 225, 306, 387, 468],
    19: [711] + [0] * 19,
    -19: [0] * 19 + [45],
}


@pytest.mark.parametrize("sync_offset", sorted(LIBERTEM_SUM_SIG))
def test_sync_offset_gives_libertems_results(ctx: gpuudf.Context, sync_offset: int) -> None:
    data = (np.arange(180).reshape(4, 5, 3, 3) % 97 + 1).astype(np.float32)
    ds = ctx.load("memory", data=data, sig_dims=2, sync_offset=sync_offset, num_partitions=3)
    res = ctx.run_udf(dataset=ds, udf=SumSigUDF())
    assert_array_equal(res["intensity"].data.reshape(-1), LIBERTEM_SUM_SIG[sync_offset])


@pytest.mark.parametrize("sync_offset", [1, 3, 34, -1, -3, -34])
def test_sync_offset_runs_equal_numpy_on_the_shifted_frames_with_and_without_roi(
    ctx: gpuudf.Context, random_counts: CountsFn, sync_shifted: ShiftFn, num_partitions: int | str, sync_offset: int
) -> None:
    data = random_counts(DATA_SHAPE) + 1
    count = FRAMES if num_partitions == PER_FRAME else int(num_partitions)
    ds = ctx.load("memory", data=data, num_partitions=count, sync_offset=sync_offset)
    expected = sync_shifted(data.reshape(FRAMES, *SIG_SHAPE), sync_offset).reshape(DATA_SHAPE)
    assert_sum_udfs_match_numpy(ctx, ds, expected, sync_offset=sync_offset)
    assert_sum_udfs_match_numpy(ctx, ds, expected, roi=FILE_ROI, sync_offset=sync_offset)


@pytest.mark.parametrize("sync_offset", [2, -2, 30, -30])
def test_sync_offset_read_frames_puts_zeros_where_no_stored_frame_is(
    random_counts: CountsFn, sync_shifted: ShiftFn, sync_offset: int
) -> None:
    data = random_counts(DATA_SHAPE) + 1
    expected = sync_shifted(data.reshape(FRAMES, *SIG_SHAPE), sync_offset)
    ds = load("memory", data=data, sync_offset=sync_offset)
    assert ds.sync_offset == sync_offset
    assert_reads_match(
        ds, expected, [range(FRAMES), range(3), range(32, 35), range(10, 12), np.array([0, 1, 5, 33, 34])]
    )
    assert_array_equal(ds.read_frames(np.array([34, 0, 17])), expected[[34, 0, 17]])  # any order


@pytest.mark.parametrize(
    ("sync_offset", "message"),
    [
        pytest.param(35, r"sync_offset=35 skips all 35 frames the data holds", id="skips-all"),
        pytest.param(100, r"sync_offset=100 skips all 35 frames", id="skips-more"),
        pytest.param(-35, r"sync_offset=-35 pads all 35 frames with zeros", id="pads-all"),
        pytest.param(-100, r"sync_offset=-100 pads all 35 frames", id="pads-more"),
        pytest.param(1.5, r"sync_offset must be an int, got 1\.5", id="float"),
        pytest.param(True, r"sync_offset must be an int, got True", id="bool"),
        pytest.param("2", r"sync_offset must be an int, got '2'", id="str"),
        pytest.param(None, r"sync_offset must be an int, got None", id="none"),
    ],
)
def test_a_bad_sync_offset_is_a_dataset_error_at_load(sync_offset: Any, message: str) -> None:
    with pytest.raises(DataSetError, match=message):
        load("memory", data=np.zeros(DATA_SHAPE), sync_offset=sync_offset)


@pytest.mark.parametrize(
    ("sync_offset", "counts"),
    [
        pytest.param(0, (0, 0, 0, 0), id="none"),
        pytest.param(3, (3, 0, 0, 3), id="positive"),
        pytest.param(-4, (0, 4, 4, 0), id="negative"),
    ],
)
def test_sync_offset_info_counts_frames_as_libertem_does(sync_offset: int, counts: tuple[int, ...]) -> None:
    ds = load("memory", data=np.zeros(DATA_SHAPE), sync_offset=sync_offset)
    names = ("frames_skipped_start", "frames_ignored_end", "frames_inserted_start", "frames_inserted_end")
    assert ds.sync_offset_info() == dict(zip(names, counts, strict=True))


# ---------------------------------------------------------------- LiberTEM's other MemoryDataSet keywords


def test_libertems_harmless_memory_keywords_are_accepted_and_change_nothing(
    ctx: gpuudf.Context, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = ctx.load(
        "memory",
        data=data,
        check_cast=False,
        force_need_decode=True,
        base_shape=(1, 3, 3),
        io_backend=None,
        array_backends=("numpy", "cupy"),
        datashape=DATA_SHAPE,
        tiledelay=None,
    )
    assert ds.shape == DATA_SHAPE
    assert_sum_udfs_match_numpy(ctx, ds, data)


def test_datashape_without_data_makes_float32_zeros(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", datashape=DATA_SHAPE, num_partitions=2)
    assert (ds.shape, ds.dtype) == (DATA_SHAPE, np.float32)
    assert_sum_udfs_match_numpy(ctx, ds, np.zeros(DATA_SHAPE, dtype=np.float32))


def test_tiledelay_sleeps_at_each_tile(ctx: gpuudf.Context) -> None:
    ds = ctx.load("memory", data=np.ones(DATA_SHAPE), num_partitions=1, tileshape=(7, *SIG_SHAPE), tiledelay=0.05)
    started = time.perf_counter()
    res = ctx.run_udf(dataset=ds, udf=SumTileUDF())
    assert time.perf_counter() - started >= 5 * 0.05  # five tiles of 7 frames
    assert_array_equal(res["count"].data, [FRAMES])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"io_backend": "mmap"}, r"memory dataset: io_backend='mmap' is not supported", id="io-backend"),
        pytest.param(
            {"array_backends": ("sparse.COO",)},
            r"memory dataset: array_backends=\('sparse.COO',\) is not supported",
            id="ab",
        ),
        pytest.param({"check_cast": "yes"}, r"memory dataset: check_cast must be True or False, got 'yes'", id="cc"),
        pytest.param({"force_need_decode": 1}, r"memory dataset: force_need_decode must be True or False", id="fnd"),
        pytest.param({"tiledelay": -1}, r"memory dataset: tiledelay must be at least 0 seconds, got -1", id="td-neg"),
        pytest.param({"tiledelay": "1"}, r"memory dataset: tiledelay must be a number of seconds", id="td-str"),
        pytest.param({"base_shape": (1, 9)}, r"base_shape=\(1, 9\) must have 3 axes", id="base-shape"),
        pytest.param({"datashape": (5, 7, 9, 12)}, r"datashape=\(5, 7, 9, 12\) contradicts the data's shape", id="ds"),
    ],
)
def test_refused_or_bad_libertem_memory_keywords_are_a_dataset_error_naming_them(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(DataSetError, match=message):
        load("memory", data=np.zeros(DATA_SHAPE), **kwargs)


def test_a_datashape_without_data_must_be_positive_ints() -> None:
    with pytest.raises(DataSetError, match=r"datashape must be a tuple of positive ints, got \(5, 0\)"):
        load("memory", datashape=(5, 0))


# ---------------------------------------------------------------- repr and diagnostics


def test_the_repr_shows_shape_dtype_kind_partitions_and_a_sync_offset() -> None:
    ds = load("memory", data=np.zeros(DATA_SHAPE, dtype=np.uint16), num_partitions=4, sync_offset=-2)
    assert repr(ds) == (
        "<MemoryDataSet shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=uint16 kind='memory' partitions=4 sync_offset=-2>"
    )


def test_diagnostics_list_libertems_fields_for_the_executors_partitions() -> None:
    ds = load("memory", data=np.zeros(DATA_SHAPE, dtype=np.uint16), sync_offset=3, tileshape=(4, *SIG_SHAPE))
    rows = dict(ds.get_diagnostics(min_partitions=5))
    assert rows["Kind"] == "memory"
    assert (rows["Shape"], rows["Navigation shape"], rows["Signal shape"]) == ("(5, 7, 9, 11)", "(5, 7)", "(9, 11)")
    assert rows["dtype"] == "uint16"
    assert (rows["Number of partitions"], rows["Partition shape"]) == ("5", "(7, 9, 11)")
    assert rows["Tile depth (tileshape)"] == "at most 4"
    assert rows["Number of frames skipped at the beginning"] == "3"
    assert rows["Number of blank frames inserted at the end"] == "3"
    assert rows["Number of blank frames inserted at the beginning"] == "0"
    assert ds.diagnostics[0] == {"name": "Kind", "value": "memory"}
    assert {d["name"]: d["value"] for d in ds.diagnostics}["Number of partitions"] == "1"


class CountingUDF(UDF):
    """Marks the frames it processes (their sum plus one) and counts them."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"seen": self.buffer(kind="nav"), "frames": self.buffer(kind="single", dtype="int64")}

    def process_frame(self, frame: Any) -> None:
        self.results.seen[:] = self.xp.sum(frame) + 1
        self.results.frames[:] += 1

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.seen[:] = src.seen
        dest.frames[:] += src.frames

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


@pytest.mark.parametrize(
    ("sync_offset", "seen", "frames"),
    [  # what LiberTEM 0.16 returns for this UDF on ones((2, 4, 3, 3)) in two partitions
        pytest.param(2, [10, 10, 10, 10, 10, 10, 0, 0], 6, id="positive"),
        pytest.param(-3, [0, 0, 0, 10, 10, 10, 10, 10], 5, id="negative"),
    ],
)
def test_frames_that_sync_offset_leaves_without_data_are_not_processed_as_in_libertem(
    ctx: gpuudf.Context, sync_offset: int, seen: list[int], frames: int
) -> None:
    ds = ctx.load("memory", data=np.ones((2, 4, 3, 3), dtype=np.float32), num_partitions=2, sync_offset=sync_offset)
    res = ctx.run_udf(dataset=ds, udf=CountingUDF())
    assert_array_equal(res["seen"].data.reshape(-1), seen)
    assert_array_equal(res["frames"].data, [frames])
