"""Binding a UDF to a run: the host copy and the workers' instances are given their meta, buffers and aux data alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gpuudf import UDF
from gpuudf.backends import Backend, NumpyBackend
from gpuudf.backends.simulated import SimulatedArray, make_simulated_backend
from gpuudf.binding import HOST, PartitionBuffers, aux_data_of, bind_host_params, give_task_data, meta_on
from gpuudf.buffers import BufferDeclaration, validate_declarations
from gpuudf.datasets import MemoryDataSet

NAV = (3, 4)
SIG = (5, 6)
FRAMES = 12


class BoundUDF(UDF):
    """Buffers of every kind, a result_only one, and nav and sig aux data."""

    def __init__(self, weights: Any, frame_mask: Any) -> None:
        super().__init__(weights=weights, frame_mask=frame_mask)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", extra_shape=(2,), dtype="int64"),
            "labels": self.buffer(kind="nav", dtype=object),
            "total": self.buffer(kind="sig", dtype="float64"),
            "count": self.buffer(kind="single", dtype="int32", where="host"),
            "derived": self.buffer(kind="single", dtype="float64", use="result_only"),
        }

    def get_task_data(self) -> dict[str, Any]:
        return {"frames_when_asked": self.meta.partition_shape[0]}


@pytest.fixture
def dataset() -> MemoryDataSet:
    return MemoryDataSet(data=np.zeros((*NAV, *SIG), dtype=np.uint16))


def bound_udf(backend: Backend, dataset: MemoryDataSet) -> tuple[BoundUDF, dict[str, BufferDeclaration]]:
    udf = BoundUDF(
        weights=UDF.aux_data(np.arange(FRAMES), kind="nav"),
        frame_mask=UDF.aux_data(np.ones(SIG), kind="sig"),
    )
    udf.meta = meta_on(backend, dataset, np.dtype("float32"), None)
    return udf, validate_declarations("BoundUDF", udf.get_result_buffers())


@pytest.mark.parametrize(
    ("backend", "described"),
    [
        pytest.param(NumpyBackend(), ("cpu", None, "numpy"), id="cpu"),
        pytest.param(make_simulated_backend(2), ("cuda", 2, "cupy"), id="sim"),
    ],
)
def test_meta_describes_the_backend_the_udf_computes_on(
    dataset: MemoryDataSet, backend: Backend, described: tuple[Any, ...]
) -> None:
    meta = meta_on(backend, dataset, np.dtype("float64"), None)
    assert (meta.device_class, meta.device_id, meta.array_backend) == described
    assert (meta.dataset_shape, meta.dataset_dtype, meta.input_dtype) == (dataset.shape, dataset.dtype, np.float64)
    assert meta.slice is None


def test_a_worker_binding_gives_fresh_zeroed_buffers_where_they_belong_and_the_partitions_position(
    dataset: MemoryDataSet,
) -> None:
    udf, declarations = bound_udf(make_simulated_backend(0), dataset)
    positions = range(4, 9)
    bound = PartitionBuffers(udf, declarations, make_simulated_backend(0), positions)
    assert set(bound.arrays) == {"per_frame", "labels", "total", "count"}
    assert bound.arrays["per_frame"].shape == (5, 2)
    assert isinstance(bound.arrays["per_frame"], SimulatedArray)
    assert isinstance(bound.arrays["labels"], np.ndarray)  # object: always on the host
    assert isinstance(bound.arrays["count"], np.ndarray)  # where="host"
    assert udf.results.total is bound.arrays["total"]
    assert udf.meta.partition_shape == (5, *SIG)
    assert udf.meta.slice is not None
    assert udf.meta.slice.origin[0] == 4


def test_result_only_buffers_read_as_none_on_a_worker_and_are_not_bound_on_the_host(dataset: MemoryDataSet) -> None:
    worker_udf, declarations = bound_udf(NumpyBackend(), dataset)
    PartitionBuffers(worker_udf, declarations, NumpyBackend(), range(FRAMES))
    assert worker_udf.results.derived is None
    host_udf, declarations = bound_udf(HOST, dataset)
    PartitionBuffers(host_udf, declarations, HOST, range(FRAMES), on_worker=False)
    assert "derived" not in host_udf.results
    with pytest.raises(AttributeError, match="'derived' is result_only"):
        _ = host_udf.results.derived


def test_a_worker_binds_the_partitions_aux_rows_and_rebinds_nav_ones_per_tile(dataset: MemoryDataSet) -> None:
    udf, declarations = bound_udf(NumpyBackend(), dataset)
    bound = PartitionBuffers(udf, declarations, NumpyBackend(), np.array([1, 3, 7, 10]))
    assert_array_equal(udf.params.weights, [1, 3, 7, 10])
    assert udf.params.frame_mask.shape == SIG
    bound.bind_tile(1, 2)
    assert_array_equal(udf.params.weights, [3, 7])
    assert udf.results.per_frame.shape == (2, 2)
    assert udf.results.total.shape == SIG  # sig buffers stay whole
    bound.bind_partition()
    assert_array_equal(udf.params.weights, [1, 3, 7, 10])
    assert udf.results.per_frame.shape == (4, 2)


def test_the_host_binds_every_selected_frames_aux_rows_once_and_not_again_per_partition(
    dataset: MemoryDataSet,
) -> None:
    udf, declarations = bound_udf(HOST, dataset)
    roi = np.zeros(FRAMES, dtype=bool)
    roi[[0, 5, 6]] = True
    bind_host_params(udf, dataset.shape, roi)
    host_rows = udf.params.weights
    assert_array_equal(host_rows, [0, 5, 6])
    bound = PartitionBuffers(udf, declarations, HOST, np.flatnonzero(roi), on_worker=False)
    assert udf.params.weights is host_rows
    assert [name for _, name, _, _ in bound.rows] == ["per_frame", "labels"]


def test_task_data_are_computed_with_the_meta_and_position_the_udf_has_then(dataset: MemoryDataSet) -> None:
    udf, declarations = bound_udf(HOST, dataset)
    PartitionBuffers(udf, declarations, HOST, range(FRAMES), on_worker=False)
    give_task_data(udf)
    assert udf.task_data == {"frames_when_asked": FRAMES}
    assert udf.task_data.frames_when_asked == FRAMES


def test_aux_data_of_names_only_the_parameters_that_are_aux_data_in_their_order(dataset: MemoryDataSet) -> None:
    udf, _ = bound_udf(HOST, dataset)
    udf._kwargs["scale"] = 2.0
    assert [name for name, _ in aux_data_of(udf)] == ["weights", "frame_mask"]
