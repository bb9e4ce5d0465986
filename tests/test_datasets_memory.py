"""``ctx.load("memory", ...)``: shapes, reshaping, partitions, frames and load-time errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import DataSetError, Shape
from gpuudf.datasets import DataSet, MemoryDataSet, load, split_evenly
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_DIMS_CASES, SIG_SHAPE, SumFrameUDF, SumTileUDF

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
        pytest.param({"data": None}, r"needs a NumPy array as data, got NoneType", id="none"),
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
        pytest.param({}, r"load\('memory'\): missing a required argument: 'data'", id="no-data"),
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
    assert repr(direct) == "<MemoryDataSet shape=Shape(nav=(5, 7), sig=(9, 11)) dtype=float32>"
