"""Built-in ``PickUDF`` against NumPy indexing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs.pick import DEFAULT_MAX_FRAMES, PickUDF
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE, HookError, RaisingUDF

LoadFn = Callable[..., DataSet]
CountsFn = Callable[..., np.ndarray[Any, Any]]


def sparse_roi() -> np.ndarray[Any, np.dtype[np.bool_]]:
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[0, 3] = roi[2, 0] = roi[2, 6] = roi[4, 4] = True
    return roi


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_pick_returns_the_roi_frames_in_flat_nav_order_in_the_native_dtype(
    ctx: gpuudf.Context, load_partitioned: LoadFn, random_counts: CountsFn, data_dtype: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype=data_dtype, high=60000)
    roi = sparse_roi()
    result = ctx.run_udf(dataset=load_partitioned(data), udf=PickUDF(), roi=roi)
    assert set(result) == {"intensity"}
    intensity = result["intensity"]
    assert intensity.kind == "single"
    assert intensity.dtype == np.dtype(data_dtype)
    assert intensity.data.shape == (4, *SIG_SHAPE)
    assert_array_equal(intensity.data, data[roi])
    assert_array_equal(intensity.raw_data, data[roi])
    assert intensity.valid_mask.all()


def test_pick_of_a_single_frame_gives_that_frame_as_raw_data_zero(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[3, 5] = True
    dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
    result = ctx.run_udf(dataset=dataset, udf=PickUDF(), roi=roi)
    assert_array_equal(result["intensity"].raw_data[0], data[3, 5])


def test_pick_without_a_roi_returns_every_frame_flat(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts((2, 3, 4, 5), dtype="float32")
    dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=2)
    result = ctx.run_udf(dataset=dataset, udf=PickUDF())
    assert_array_equal(result["intensity"].data, data.reshape(6, 4, 5))


def test_pick_works_for_frames_of_any_rank(ctx: gpuudf.Context, random_counts: CountsFn) -> None:
    data = random_counts((6, 3, 4, 2))
    roi = np.array([False, True, False, False, True, True])
    result = ctx.run_udf(dataset=ctx.load("memory", data=data, sig_dims=3), udf=PickUDF(), roi=roi)
    assert_array_equal(result["intensity"].data, data[roi])


def test_pick_of_an_empty_roi_is_an_empty_stack() -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=np.ones(DATA_SHAPE, dtype=np.uint16), sig_dims=2)
        result = ctx.run_udf(dataset=dataset, udf=PickUDF(), roi=np.zeros(NAV_SHAPE, dtype=bool))
    assert result["intensity"].data.shape == (0, *SIG_SHAPE)
    assert result["intensity"].data.dtype == np.uint16


def test_pick_partial_results_mark_the_frames_not_merged_yet_invalid(random_counts: CountsFn) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[:, 1::2] = True
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
        for step in ctx.run_udf_iter(dataset=dataset, udf=PickUDF(), roi=roi):
            merged = step.damage.raw_data
            intensity = step.buffers[0]["intensity"]
            assert_array_equal(intensity.valid_mask, np.broadcast_to(merged[:, None, None], intensity.data.shape))
            assert_array_equal(intensity.data[merged], data[roi][merged])
            assert not intensity.data[~merged].any()


def test_pick_gives_the_same_frames_on_every_backend(random_counts: CountsFn) -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=random_counts(DATA_SHAPE, dtype="uint16"), sig_dims=2, num_partitions=3)
    assert_backends_agree(PickUDF(), dataset, roi=sparse_roi())
    assert_backends_agree(PickUDF(), dataset)


def test_pick_of_more_roi_frames_than_max_frames_fails_before_reading_a_frame(ctx: gpuudf.Context) -> None:
    dataset = ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=np.float32), sig_dims=2, num_partitions=3)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[:2] = True
    # the raising UDF would fail on its first tile: the run must stop before any
    with pytest.raises(gpuudf.UDFDefinitionError, match=r"PickUDF\(max_frames=13\).*its ROI selects 14 frames"):
        ctx.run_udf(dataset=dataset, udf=[PickUDF(max_frames=13), RaisingUDF("process_tile")], roi=roi)
    with pytest.raises(HookError):  # the same run within the limit does reach the tiles
        ctx.run_udf(dataset=dataset, udf=[PickUDF(max_frames=14), RaisingUDF("process_tile")], roi=roi)


def test_pick_without_a_roi_over_more_frames_than_max_frames_fails() -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=np.zeros(DATA_SHAPE, dtype=np.float32), sig_dims=2)
        with pytest.raises(ValueError, match=r"max_frames=34.*without a ROI it picks every frame of the dataset, 35"):
            ctx.run_udf(dataset=dataset, udf=PickUDF(max_frames=34))
        assert ctx.run_udf(dataset=dataset, udf=PickUDF(max_frames=35))["intensity"].data.shape == (35, *SIG_SHAPE)
        assert ctx.run_udf(dataset=dataset, udf=PickUDF(max_frames=None))["intensity"].data.shape == (35, *SIG_SHAPE)


def test_pick_limits_a_run_to_1024_frames_by_default() -> None:
    assert DEFAULT_MAX_FRAMES == 1024
    assert PickUDF().params.max_frames == DEFAULT_MAX_FRAMES
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=np.zeros((1025, 1, 1), dtype=np.uint8), sig_dims=2)
        with pytest.raises(gpuudf.UDFDefinitionError, match=r"max_frames=1024"):
            ctx.run_udf(dataset=dataset, udf=PickUDF())


@pytest.mark.parametrize(
    ("max_frames", "error", "message"),
    [
        pytest.param(0, ValueError, "max_frames must be at least 1", id="zero"),
        pytest.param(-3, ValueError, "max_frames must be at least 1", id="negative"),
        pytest.param(2.5, TypeError, "max_frames must be an integer or None, got 2.5", id="float"),
        pytest.param("10", TypeError, "max_frames must be an integer or None, got '10'", id="string"),
        pytest.param(True, TypeError, "max_frames must be an integer or None, got True", id="bool"),
    ],
)
def test_pick_rejects_a_max_frames_that_is_not_a_positive_integer(
    max_frames: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        PickUDF(max_frames=max_frames)


def test_pick_runs_on_numpy_and_cupy_and_copies_cleanly() -> None:
    udf = PickUDF(max_frames=7)
    assert udf.get_backends() == ("numpy", "cupy")
    assert udf.get_preferred_input_dtype() is PickUDF.USE_NATIVE_DTYPE
    assert udf.copy().params.max_frames == 7
