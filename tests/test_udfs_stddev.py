"""Built-in ``StdDevUDF`` (and its pure moment functions) against NumPy in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs.stddev import StdDevUDF, combine_moments, consolidate_result, run_stddev, tile_moments
from tests.udfs_for_tests import DATA_SHAPE, NAV_SHAPE, SIG_SHAPE

LoadFn = Callable[..., DataSet]

#: A large mean with a small spread: where a sum-of-squares formula loses every digit.
OFFSET = 10_000


def offset_data(rng: np.random.Generator, dtype: str, shape: tuple[int, ...] = DATA_SHAPE) -> np.ndarray[Any, Any]:
    """``OFFSET`` plus a small spread: small integers for uint16, a normal sample for float32."""
    if dtype == "uint16":
        return (OFFSET + rng.integers(0, 8, size=shape)).astype(np.uint16)
    return (OFFSET + rng.standard_normal(shape)).astype(np.float32)


def numpy_moments(frames: np.ndarray[Any, Any]) -> dict[str, Any]:
    """The reference: every statistic in float64 from ``(frames, *sig)``."""
    exact = frames.astype(np.complex128 if frames.dtype.kind == "c" else np.float64)
    count = len(exact)
    return {
        "num_frames": count,
        "sum": exact.sum(axis=0),
        "mean": exact.mean(axis=0),
        "var": exact.var(axis=0),
        "std": exact.std(axis=0),
        "varsum": exact.var(axis=0) * count,
    }


def assert_matches(result: dict[str, gpuudf.BufferWrapper], expected: dict[str, Any], rtol: float = 1e-10) -> None:
    assert_array_equal(result["num_frames"].data, [expected["num_frames"]])
    for name in ("sum", "mean", "var", "std", "varsum"):
        assert_allclose(result[name].data, expected[name], rtol=rtol, err_msg=name)


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_stddev_matches_numpy_for_data_with_a_large_mean_and_a_small_variance(
    ctx: gpuudf.Context, load_partitioned: LoadFn, rng: np.random.Generator, data_dtype: str
) -> None:
    data = offset_data(rng, data_dtype)
    result = ctx.run_udf(dataset=load_partitioned(data), udf=StdDevUDF())
    assert_matches(result, numpy_moments(data.reshape(-1, *SIG_SHAPE)))


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_stddev_with_a_roi_covers_only_the_selected_frames(
    ctx: gpuudf.Context, rng: np.random.Generator, data_dtype: str
) -> None:
    data = offset_data(rng, data_dtype)
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[1:4, ::2] = True
    roi[4, 6] = True
    dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
    result = ctx.run_udf(dataset=dataset, udf=StdDevUDF(), roi=roi)
    assert_matches(result, numpy_moments(data[roi]))


def test_stddev_of_complex_data_is_the_real_variance_numpy_gives(ctx: gpuudf.Context, rng: np.random.Generator) -> None:
    data = (rng.standard_normal(DATA_SHAPE) + 1j * rng.standard_normal(DATA_SHAPE) + (3 - 2j)).astype(np.complex64)
    result = ctx.run_udf(dataset=ctx.load("memory", data=data, sig_dims=2, num_partitions=3), udf=StdDevUDF())
    assert result["var"].dtype == np.float64
    assert result["mean"].dtype == np.complex128
    assert_matches(result, numpy_moments(data.reshape(-1, *SIG_SHAPE)))


@pytest.mark.parametrize(
    ("data_dtype", "udf_dtype", "accumulation", "base", "derived"),
    [
        pytest.param("uint16", None, "float64", "float64", "float64", id="uint16-default-float64"),
        pytest.param("float32", None, "float64", "float64", "float64", id="float32-default-float64"),
        # as in LiberTEM with NumPy 2: var/std/mean divide by an int64 count, so they are float64
        pytest.param("uint16", "float32", "float32", "float32", "float64", id="uint16-float32"),
        pytest.param("float64", "float32", "float64", "float32", "float64", id="float64-data-float32"),
    ],
)
def test_stddev_buffers_have_libertems_names_kinds_shapes_and_dtypes(
    data_dtype: str, udf_dtype: str | None, accumulation: str, base: str, derived: str
) -> None:
    data = np.ones(DATA_SHAPE, dtype=data_dtype)
    with gpuudf.Context.make_with("inline") as ctx:
        result = ctx.run_udf(dataset=ctx.load("memory", data=data, sig_dims=2), udf=StdDevUDF(dtype=udf_dtype))
    expected = {
        "varsum": ("sig", SIG_SHAPE, base),
        "num_frames": ("single", (1,), "int64"),
        "sum": ("sig", SIG_SHAPE, accumulation),
        "var": ("sig", SIG_SHAPE, derived),
        "std": ("sig", SIG_SHAPE, derived),
        "mean": ("sig", SIG_SHAPE, derived),
    }
    assert {name: (b.kind, b.data.shape, str(b.data.dtype)) for name, b in result.items()} == expected
    assert {name for name, b in result.items() if b.use == "result_only"} == {"var", "std", "mean"}


def test_stddev_of_an_empty_roi_is_nan_without_a_warning() -> None:
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=np.ones(DATA_SHAPE, dtype=np.float32), sig_dims=2)
        result = ctx.run_udf(dataset=dataset, udf=StdDevUDF(), roi=np.zeros(NAV_SHAPE, dtype=bool))
    assert result["num_frames"].data[0] == 0
    assert np.isnan(result["var"].data).all()
    assert np.isnan(result["mean"].data).all()


def test_stddev_partial_results_are_the_statistics_of_the_frames_merged_so_far(rng: np.random.Generator) -> None:
    data = offset_data(rng, "float32")
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
        for step in ctx.run_udf_iter(dataset=dataset, udf=StdDevUDF()):
            merged = step.damage.data
            assert_matches(step.buffers[0], numpy_moments(data[merged]))


def test_stddev_gives_the_same_results_on_every_backend(rng: np.random.Generator) -> None:
    data = offset_data(rng, "uint16")
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[::2, 1:] = True
    with gpuudf.Context.make_with("inline") as ctx:
        dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
    assert_backends_agree(StdDevUDF(), dataset)
    assert_backends_agree(StdDevUDF(dtype="float32"), dataset, roi=roi)


def test_run_stddev_returns_plain_arrays_as_libertems_consolidate_result(
    ctx: gpuudf.Context, rng: np.random.Generator
) -> None:
    data = offset_data(rng, "uint16")
    roi = np.zeros(NAV_SHAPE, dtype=bool)
    roi[2:, 3:] = True
    dataset = ctx.load("memory", data=data, sig_dims=2, num_partitions=3)
    consolidated = run_stddev(ctx, dataset, roi=roi, use_numba=False)
    assert set(consolidated) == {"num_frames", "varsum", "sum", "var", "std", "mean"}
    assert isinstance(consolidated["num_frames"], np.int64)
    expected = numpy_moments(data[roi])
    assert consolidated["num_frames"] == expected["num_frames"]
    for name in ("varsum", "sum", "var", "std", "mean"):
        assert isinstance(consolidated[name], np.ndarray)
        assert_allclose(consolidated[name], expected[name], rtol=1e-10, err_msg=name)
    again = consolidate_result(ctx.run_udf(dataset=dataset, udf=StdDevUDF(), roi=roi))
    for name, value in again.items():
        assert_array_equal(value, consolidated[name], err_msg=name)


def simulated_chunks(
    rng: np.random.Generator, dtype: str, frames: int, chunk: int, pixels: int = 4
) -> list[np.ndarray[Any, Any]]:
    """``frames`` frames of ``pixels`` pixels around ``OFFSET``, in chunks of ``chunk`` frames."""
    return [offset_data(rng, dtype, (chunk, pixels)) for _ in range(frames // chunk)]


def accumulate(chunks: list[np.ndarray[Any, Any]], dtype: Any) -> tuple[int, Any, Any]:
    """What ``process_tile`` does on a worker: chunk moments, combined one after another."""
    pixels = chunks[0].shape[1]
    running: tuple[int, Any, Any] = (0, np.zeros(pixels, dtype), np.zeros(pixels, dtype))
    for chunk in chunks:
        running = combine_moments(running, tile_moments(np, chunk.astype(dtype)))
    return running


@pytest.mark.parametrize("data_dtype", ["uint16", "float32"])
def test_combining_the_moments_of_a_million_frames_keeps_the_variance_of_a_large_mean(
    rng: np.random.Generator, data_dtype: str
) -> None:
    chunks = simulated_chunks(rng, data_dtype, frames=1_000_000, chunk=1000)
    frames = np.concatenate(chunks).astype(np.float64)
    expected_var = frames.var(axis=0)

    count, total, varsum = accumulate(chunks, np.float64)
    assert count == 1_000_000
    assert_allclose(total, frames.sum(axis=0), rtol=1e-12)
    assert_allclose(varsum / count, expected_var, rtol=1e-9)

    # in float32 Chan's formula stays close, where E[x**2] - E[x]**2 loses every digit
    count32, _, varsum32 = accumulate(chunks, np.float32)
    assert_allclose(varsum32 / count32, expected_var, rtol=1e-2)
    squares = sum((c.astype(np.float32) ** 2).sum(axis=0) for c in chunks) / count32
    means = sum(c.astype(np.float32).sum(axis=0) for c in chunks) / count32
    assert np.max(np.abs((squares - means**2) / expected_var - 1)) > 1


def test_combining_moments_in_a_tree_equals_combining_them_in_order(rng: np.random.Generator) -> None:
    chunks = simulated_chunks(rng, "float32", frames=64 * 37, chunk=37)
    parts = [tile_moments(np, chunk.astype(np.float64)) for chunk in chunks]
    while len(parts) > 1:  # as partitions merge: pairs of partial results, in any grouping
        parts = [combine_moments(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]
    tree_count, tree_sum, tree_varsum = parts[0]
    count, total, varsum = accumulate(chunks, np.float64)
    assert tree_count == count
    assert_allclose(tree_sum, total, rtol=1e-13)
    assert_allclose(tree_varsum, varsum, rtol=1e-10)


def test_combining_with_an_empty_set_of_frames_returns_the_other_set() -> None:
    some = (3, np.array([3.0, 6.0]), np.array([2.0, 8.0]))
    empty = (0, np.zeros(2), np.zeros(2))
    assert combine_moments(empty, some) == some
    assert combine_moments(some, empty) == some


def test_the_moments_of_one_tile_are_its_count_sum_and_squared_deviations() -> None:
    tile = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
    count, total, varsum = tile_moments(np, tile)
    assert count == 3
    assert_array_equal(total, [9.0, 36.0])
    assert_array_equal(varsum, [8.0, 24.0])


@pytest.mark.parametrize(
    ("dtype", "error", "message"),
    [
        pytest.param("int64", ValueError, "dtype='int64' must be a floating", id="integer"),
        pytest.param(bool, ValueError, "dtype=<class 'bool'> must be a floating", id="bool"),
        pytest.param("no-such-dtype", TypeError, "dtype='no-such-dtype' is not a NumPy dtype", id="not-a-dtype"),
    ],
)
def test_stddev_rejects_a_dtype_that_cannot_accumulate_a_variance(
    dtype: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        StdDevUDF(dtype=dtype)


def test_stddev_takes_libertems_parameters_and_copies_cleanly() -> None:
    udf = StdDevUDF(dtype="float32", use_numba=False)
    assert udf.get_backends() == ("numpy", "cupy")
    twin = udf.copy()
    assert twin.params.dtype == "float32"
    assert twin.params.use_numba is False
