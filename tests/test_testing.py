"""``assert_backends_agree`` compares every buffer across devices, and catches differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import UDF
from gpuudf.testing import assert_backends_agree, usable_devices
from gpuudf.udfs import SumSigUDF, SumUDF


class DeviceDependentUDF(UDF):
    """Gives a different answer on a CUDA-class device: must be caught."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"value": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        self.results.value[:] = 1.0 if self.meta.device_class == "cuda" else 0.0

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


@pytest.fixture
def dataset() -> Any:
    data = np.random.default_rng(3).random((5, 6, 7, 8)).astype(np.float32)
    return gpuudf.Context().load("memory", data=data, num_partitions=3)


def test_builtin_udfs_agree_on_cpu_and_the_simulated_device(dataset: Any) -> None:
    results = assert_backends_agree([SumUDF(), SumSigUDF()], dataset)
    assert {"cpu", "sim:0"} <= set(results)


def test_a_udf_whose_result_depends_on_the_device_is_reported(dataset: Any) -> None:
    with pytest.raises(AssertionError, match="buffer 'value' on sim:0"):
        assert_backends_agree(DeviceDependentUDF(), dataset)


def test_a_roi_is_applied_on_every_device(dataset: Any) -> None:
    roi = np.zeros((5, 6), dtype=bool)
    roi[1:3, 2:5] = True
    results = assert_backends_agree(SumSigUDF(), dataset, roi=roi)
    assert np.isnan(results["sim:0"]["intensity"].data[0, 0])


def test_numpy_only_udfs_run_on_the_cpu_alone() -> None:
    assert usable_devices(("numpy",)) == ["cpu"]
