"""The CUDA data path, run on the simulated device: transfers, ring, out-of-memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import UDF
from gpuudf.backends.device import DeviceBackend
from gpuudf.backends.simulated import TRANSFERS, make_simulated_backend
from gpuudf.executors import InlineExecutor
from gpuudf.udfs import SumSigUDF, SumUDF


class TileCountUDF(UDF):
    """Counts tiles per partition in a single buffer, on the device."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"tiles": self.buffer(kind="single", dtype="int64"), "sums": self.buffer(kind="nav")}

    def process_tile(self, tile: Any) -> None:
        self.results.tiles[:] += 1
        self.results.sums[:] = self.xp.sum(tile, axis=(1, 2))

    def merge(self, dest: Any, src: Any) -> None:
        dest.tiles[:] += src.tiles
        dest.sums[:] = src.sums

    def get_backends(self) -> tuple[str, ...]:
        return ("cupy",)

    def get_tiling_preferences(self) -> dict[str, int]:
        return {"depth": 4}


class WholePartitionUDF(UDF):
    def get_result_buffers(self) -> dict[str, Any]:
        return {"sums": self.buffer(kind="nav")}

    def process_partition(self, partition: Any) -> None:
        self.results.sums[:] = partition.sum(axis=(1, 2))

    def get_backends(self) -> tuple[str, ...]:
        return ("cupy",)


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 1000, size=(6, 7, 10, 9), dtype=np.uint16)


def run_on(backend: DeviceBackend, data: np.ndarray, udf: Any, roi: Any = None, partitions: int = 3) -> Any:
    ctx = gpuudf.Context(executor=InlineExecutor(backend))
    ds = ctx.load("memory", data=data, num_partitions=partitions)
    TRANSFERS.reset()
    return ctx.run_udf(dataset=ds, udf=udf, roi=roi)


def test_one_host_to_device_copy_per_tile_and_one_copy_home_per_buffer_and_partition(data: np.ndarray) -> None:
    result = run_on(make_simulated_backend(), data, TileCountUDF())
    tiles = int(result["tiles"].data[0])
    assert tiles == 3 * 4  # 14 frames per partition in tiles of 4
    assert TRANSFERS.h2d_copies == tiles
    assert TRANSFERS.h2d_nbytes == data.nbytes  # native uint16 crosses the bus, once
    assert TRANSFERS.d2h_copies == 3 * 2
    np.testing.assert_allclose(result["sums"].data, data.sum(axis=(2, 3)))


def test_memory_datasets_are_registered_once_and_skip_the_pinned_ring(data: np.ndarray) -> None:
    backend = make_simulated_backend()
    ctx = gpuudf.Context(executor=InlineExecutor(backend))
    ds = ctx.load("memory", data=data, num_partitions=3)
    TRANSFERS.reset()
    for _ in range(2):
        ctx.run_udf(dataset=ds, udf=SumUDF())
    assert TRANSFERS.host_registrations == 1
    assert backend.pinned_ring_allocations == 0
    del ds  # the registration ends with the dataset
    import gc

    gc.collect()
    assert TRANSFERS.host_registrations == 0


def test_roi_frames_go_through_a_pinned_ring_allocated_once(data: np.ndarray) -> None:
    backend = make_simulated_backend()
    roi = np.arange(42).reshape(6, 7) % 4 != 1
    for _ in range(3):
        result = run_on(backend, data, [SumUDF(), SumSigUDF()], roi=roi)
    assert backend.pinned_ring_allocations == 1
    np.testing.assert_allclose(result[0]["intensity"].data, data[roi].sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(result[1]["intensity"].raw_data, data[roi].sum(axis=(1, 2)), rtol=1e-6)


def test_casts_to_the_input_dtype_happen_on_the_device_after_the_transfer(data: np.ndarray) -> None:
    run_on(make_simulated_backend(), data, SumUDF())
    assert TRANSFERS.h2d_nbytes == data.nbytes  # not data.nbytes * 2, as float32 would be


def test_out_of_memory_halves_the_tile_depth_until_the_partition_fits(data: np.ndarray) -> None:
    frame_nbytes = 10 * 9 * 2
    backend = make_simulated_backend(max_alloc_nbytes=3 * frame_nbytes)
    result = run_on(backend, data, [SumUDF(), SumSigUDF()], partitions=2)
    assert backend.api.released >= 1  # type: ignore[attr-defined]
    np.testing.assert_allclose(result[0]["intensity"].data, data.sum(axis=(0, 1)), rtol=1e-6)


def test_partition_that_never_fits_raises_device_out_of_memory(data: np.ndarray) -> None:
    backend = make_simulated_backend(max_alloc_nbytes=100)
    with pytest.raises(gpuudf.DeviceOutOfMemoryError, match="does not fit sim"):
        run_on(backend, data, SumUDF())


def test_whole_partition_udfs_give_up_after_one_retry(data: np.ndarray) -> None:
    backend = make_simulated_backend(max_alloc_nbytes=20 * 10 * 9 * 2)
    with pytest.raises(gpuudf.DeviceOutOfMemoryError, match="partition 0"):
        run_on(backend, data, WholePartitionUDF(), partitions=1)


def test_tile_depth_is_capped_by_free_device_memory(data: np.ndarray) -> None:
    backend = make_simulated_backend(free_nbytes=16 * 10 * 9 * 4 * 2)
    result = run_on(backend, data, TileCountUDF(), partitions=1)
    assert int(result["tiles"].data[0]) == 42 // 2


def test_an_error_in_the_udf_stops_the_feeder_thread(data: np.ndarray) -> None:
    import threading

    class Failing(UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"x": self.buffer(kind="nav")}

        def process_frame(self, frame: Any) -> None:
            msg = "boom"
            raise RuntimeError(msg)

        def get_backends(self) -> tuple[str, ...]:
            return ("cupy",)

    roi = np.ones((6, 7), dtype=bool)
    roi[0, 0] = False  # force the pinned-ring path and its feeder thread
    with pytest.raises(RuntimeError, match="boom"):
        run_on(make_simulated_backend(), data, Failing(), roi=roi)
    assert not any(t.name.startswith("gpuudf-feeder") for t in threading.enumerate())


def test_implicit_device_to_host_conversion_in_a_udf_fails_as_on_a_gpu(data: np.ndarray) -> None:
    class Leaky(UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"total": self.buffer(kind="nav", where="host")}

        def process_frame(self, frame: Any) -> None:
            self.results.total[:] = self.xp.sum(frame)  # a device value into a host buffer

        def get_backends(self) -> tuple[str, ...]:
            return ("numpy", "cupy")

    with pytest.raises(TypeError, match="Implicit conversion"):
        run_on(make_simulated_backend(), data, Leaky())
