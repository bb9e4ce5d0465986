"""The Context (API.md §4): construction, load, sync and async runs, progress."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.executors import InlineExecutor
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, MaxUDF, SumFrameUDF, SumTileUDF

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


def _check_sums(res: dict[str, gpuudf.BufferWrapper], data: np.ndarray[Any, Any]) -> None:
    assert_array_equal(res["per_frame"].data, data.sum(axis=(2, 3), dtype=np.float64))
    assert_array_equal(res["total"].data, data.sum(axis=(0, 1), dtype=np.float64))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: gpuudf.Context(executor=InlineExecutor()), id="explicit-inline-executor"),
        pytest.param(lambda: gpuudf.Context.make_with("inline"), id="make-with-inline"),
        pytest.param(lambda: gpuudf.Context.make_with("inline", device="cpu"), id="make-with-inline-cpu"),
        pytest.param(gpuudf.Context, id="default"),
    ],
)
def test_contexts_made_every_documented_way_run_udfs(
    make: Callable[[], gpuudf.Context], random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    with make() as ctx:
        assert isinstance(ctx, gpuudf.Context)
        res = ctx.run_udf(dataset=ctx.load("memory", data=data, num_partitions=3), udf=SumFrameUDF())
    _check_sums(res, data)


def test_make_with_inline_uses_the_inline_executor() -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        assert isinstance(ctx.executor, InlineExecutor)
        assert repr(ctx) == "Context(executor=InlineExecutor(device='cpu'))"


def test_make_with_an_unknown_executor_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown executor 'threads'; available: 'inline'"):
        gpuudf.Context.make_with("threads")


def test_context_load_returns_a_dataset(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    ds = ctx.load("memory", data=random_counts(DATA_SHAPE), sig_dims=2)
    assert isinstance(ds, DataSet)
    assert ds.shape.nav == NAV_SHAPE


def test_sync_false_returns_an_awaitable_with_the_same_results(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)
    ds = load_partitioned(data)
    expected = ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=3))

    async def run() -> Any:
        pending = ctx.run_udf(dataset=ds, udf=SumTileUDF(depth=3), sync=False)
        assert inspect.isawaitable(pending)
        return await pending

    res = asyncio.run(run())
    assert set(res) == set(expected)
    for name in expected:
        assert_array_equal(res[name].data, expected[name].data)
    _check_sums(res, data)


def test_sync_false_with_a_list_of_udfs_gives_a_list(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn
) -> None:
    data = random_counts(DATA_SHAPE)

    async def run() -> Any:
        return await ctx.run_udf(dataset=load_partitioned(data), udf=[MaxUDF(), SumFrameUDF()], sync=False)

    maximum, sums = asyncio.run(run())
    assert_array_equal(maximum["maxbuf"].data, data.max(axis=(0, 1)))
    _check_sums(sums, data)


@pytest.mark.parametrize(
    ("roi", "frames"),
    [
        pytest.param(None, 35, id="all-frames"),
        pytest.param(np.arange(35).reshape(NAV_SHAPE) % 3 == 0, 12, id="roi"),
        pytest.param(np.zeros(NAV_SHAPE, dtype=bool), 0, id="empty-roi"),
    ],
)
def test_progress_true_shows_a_bar_counted_in_frames(
    ctx: gpuudf.Context,
    load_partitioned: LoadFn,
    random_counts: CountsFn,
    capsys: pytest.CaptureFixture[str],
    roi: np.ndarray[Any, Any] | None,
    frames: int,
) -> None:
    data = random_counts(DATA_SHAPE)
    res = ctx.run_udf(dataset=load_partitioned(data), udf=SumFrameUDF(), progress=True, roi=roi)
    err = capsys.readouterr().err
    assert (f"{frames}/{frames}" if frames else "0frame") in err
    assert "frame" in err
    assert_array_equal(res["count"].data, [frames])


def test_progress_false_prints_nothing(
    ctx: gpuudf.Context, random_counts: CountsFn, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx.run_udf(dataset=ctx.load("memory", data=random_counts(DATA_SHAPE)), udf=SumFrameUDF())
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_a_context_is_reusable_for_many_runs(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    for _ in range(3):
        data = random_counts(DATA_SHAPE)
        _check_sums(ctx.run_udf(dataset=ctx.load("memory", data=data, num_partitions=7), udf=SumFrameUDF()), data)
