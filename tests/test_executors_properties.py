"""Properties every executor keeps: results depend on the data and the ROI, not on executor, workers or partitions.

Each example draws a scan (shapes, dtype, values), a ROI and a partition
count, runs the same UDFs on the executor under test (inline and local with
one and two CPU workers, and the simulated device), and compares the
results with NumPy computing the same thing on the whole array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import gpuudf
from gpuudf.udfs import StdDevUDF, SumSigUDF, SumUDF


@st.composite
def scans(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None, int]:
    """A small scan, a ROI (or none) over it, and a partition count."""
    nav = (draw(st.integers(1, 4)), draw(st.integers(1, 6)))
    sig = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dtype = draw(st.sampled_from([np.uint16, np.float32]))
    seed = draw(st.integers(0, 2**32 - 1))
    data = np.random.default_rng(seed).integers(0, 1000, size=(*nav, *sig)).astype(dtype)
    roi = None
    if draw(st.booleans()):
        roi = np.random.default_rng(seed + 1).random(nav) < draw(st.floats(0.2, 1.0))
        roi.flat[draw(st.integers(0, roi.size - 1))] = True  # at least one frame
    partitions = draw(st.integers(1, nav[0] * nav[1]))
    return data, roi, partitions


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scan=scans())
def test_results_are_those_of_numpy_whatever_the_executor_workers_and_partitions(
    ctx: gpuudf.Context, scan: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None, int]
) -> None:
    data, roi, partitions = scan
    ds = ctx.load("memory", data=data, num_partitions=partitions)
    sums, frame_sums, spread = ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF(), StdDevUDF()], roi=roi)
    frames = data.reshape(-1, *data.shape[2:]).astype(np.float64)
    selected = frames if roi is None else frames[roi.reshape(-1)]
    assert_allclose(sums["intensity"].data, selected.sum(axis=0), rtol=1e-6)
    assert_allclose(frame_sums["intensity"].raw_data, selected.sum(axis=(1, 2)), rtol=1e-6)
    assert_allclose(spread["mean"].data, selected.mean(axis=0), rtol=1e-6)
    assert_allclose(spread["var"].data, selected.var(axis=0), rtol=1e-5, atol=1e-6)
    expected_valid = np.ones(data.shape[:2], dtype=bool) if roi is None else roi
    assert_array_equal(frame_sums["intensity"].valid_mask, expected_valid)


@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_the_same_run_on_one_and_two_workers_gives_bit_identical_sums(partitions: int) -> None:
    data = np.random.default_rng(3).random((5, 6, 7, 8)).astype(np.float32)
    results = []
    for cpus in (1, 2):
        with gpuudf.Context.make_with("local", cpus=cpus) as ctx:
            ds = ctx.load("memory", data=data, num_partitions=partitions)
            results.append(ctx.run_udf(dataset=ds, udf=SumSigUDF())["intensity"].data)
    assert_array_equal(results[0], results[1])
