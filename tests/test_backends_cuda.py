"""The CuPy backend on a real GPU: ``pytest -m gpu`` where one is usable."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import UDF
from gpuudf.backends.device import DeviceBackend
from gpuudf.executors import InlineExecutor
from gpuudf.testing import assert_backends_agree
from gpuudf.udfs import SumSigUDF, SumUDF

pytestmark = pytest.mark.gpu


class DeviceFactsUDF(UDF):
    """Records what it sees on the worker, in host and object buffers."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {
            "on_device": self.buffer(kind="nav", dtype=bool, where="host"),
            "module": self.buffer(kind="nav", dtype=object),
            "frame_sum": self.buffer(kind="nav", dtype="float64"),
        }

    def process_frame(self, frame: Any) -> None:
        self.results.on_device[:] = self.meta.device_class == "cuda" and self.meta.array_backend == "cupy"
        self.results.module[0] = type(frame).__module__.split(".")[0]
        self.results.frame_sum[:] = self.xp.sum(frame, dtype=np.float64)

    def get_backends(self) -> tuple[str, ...]:
        return ("cupy",)


@pytest.fixture
def cuda_ctx() -> gpuudf.Context:
    return gpuudf.Context(executor=InlineExecutor("cuda:0"))


@pytest.fixture
def uint16_dataset() -> Any:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 4000, size=(9, 13, 33, 31), dtype=np.uint16)
    return gpuudf.Context().load("memory", data=data, num_partitions=4)


def test_detect_lists_the_gpu_with_name_and_memory() -> None:
    inventory = gpuudf.detect()
    assert inventory.gpus
    assert inventory.gpus[0].name
    assert inventory.gpus[0].total_memory_nbytes > 2**30


def test_builtin_udfs_agree_between_cpu_and_gpu(uint16_dataset: Any) -> None:
    assert_backends_agree([SumUDF(), SumSigUDF()], uint16_dataset, devices=["cpu", "cuda:0"])


def test_builtin_udfs_agree_with_a_roi(uint16_dataset: Any) -> None:
    roi = np.random.default_rng(2).random(uint16_dataset.shape.nav) > 0.6
    assert_backends_agree([SumUDF(), SumSigUDF()], uint16_dataset, roi=roi, devices=["cpu", "cuda:0"])


def test_udf_computes_with_cupy_and_host_buffers_stay_numpy(cuda_ctx: gpuudf.Context, uint16_dataset: Any) -> None:
    result = cuda_ctx.run_udf(dataset=uint16_dataset, udf=DeviceFactsUDF())
    assert result["on_device"].data.all()
    assert set(result["module"].data.ravel()) == {"cupy"}
    expected = uint16_dataset.read_frames(range(117)).sum(axis=(1, 2), dtype=np.float64)
    np.testing.assert_allclose(result["frame_sum"].raw_data, expected)


def test_memory_dataset_is_copied_from_registered_memory_without_the_pinned_ring(
    cuda_ctx: gpuudf.Context, uint16_dataset: Any
) -> None:
    backend = cuda_ctx.executor.backend  # type: ignore[attr-defined]
    assert isinstance(backend, DeviceBackend)
    for _ in range(3):
        cuda_ctx.run_udf(dataset=uint16_dataset, udf=SumUDF())
    assert backend.pinned_ring_allocations == 0


def test_pinned_ring_is_allocated_once_for_many_partitions_and_runs(
    cuda_ctx: gpuudf.Context, uint16_dataset: Any
) -> None:
    backend = cuda_ctx.executor.backend  # type: ignore[attr-defined]
    assert isinstance(backend, DeviceBackend)
    roi = np.arange(117).reshape(9, 13) % 3 != 0  # ROI-selected frames go through the ring
    for _ in range(3):
        cuda_ctx.run_udf(dataset=uint16_dataset, udf=SumUDF(), roi=roi)
    assert backend.pinned_ring_allocations == 1


def test_device_out_of_memory_halves_the_tile_depth_and_still_succeeds(uint16_dataset: Any) -> None:
    import cupy

    pool = cupy.get_default_memory_pool()
    backend = InlineExecutor("cuda:0").backend
    assert isinstance(backend, DeviceBackend)
    backend.default_tile_nbytes = 64 * 2**20
    ctx = gpuudf.Context(executor=InlineExecutor(backend))
    frame_nbytes = 33 * 31 * 4
    pool.free_all_blocks()
    pool.set_limit(size=40 * frame_nbytes)
    try:
        result = ctx.run_udf(dataset=uint16_dataset, udf=SumUDF())
    finally:
        pool.set_limit(size=0)
    expected = uint16_dataset.read_frames(range(117)).sum(axis=0, dtype=np.float64)
    np.testing.assert_allclose(result["intensity"].data, expected, rtol=1e-5)


def test_partition_too_large_for_the_device_raises_a_clear_error(uint16_dataset: Any) -> None:
    import cupy

    class WholePartition(UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"total": self.buffer(kind="nav")}

        def process_partition(self, partition: Any) -> None:
            self.results.total[:] = partition.sum(axis=(1, 2))

        def get_backends(self) -> tuple[str, ...]:
            return ("cupy",)

    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    pool.set_limit(size=4 * 33 * 31)
    try:
        with pytest.raises(gpuudf.DeviceOutOfMemoryError, match="does not fit"):
            gpuudf.Context(executor=InlineExecutor("cuda:0")).run_udf(dataset=uint16_dataset, udf=WholePartition())
    finally:
        pool.set_limit(size=0)
