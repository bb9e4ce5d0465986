"""Binding a UDF to a run: its ``meta``, task data, result buffers and views, and aux data.

Policy
------
- This is the one place where the engine gives a UDF what its hooks read.
  The run's host copy (:class:`gpuudf.runner.UDFRun`: the whole selection as
  one partition, in host memory) and each worker's instances
  (:mod:`gpuudf.task`: each partition on the worker's backend) are bound by
  the same code, so a hook sees the same on both sides.
- ``meta`` describes the backend the UDF computes on (:func:`meta_on`); the
  host is a :class:`~gpuudf.backends.NumpyBackend` (:data:`HOST`).
- Buffers are fresh zeros for each partition (:class:`PartitionBuffers`), on
  the backend unless a declaration keeps them on the host.  Views are bound
  with plain dict writes, since rebinding them sits on the per-frame path.
- A ``result_only`` buffer reads as ``None`` inside ``process_*`` on a
  worker, as in LiberTEM; on the host it is not bound at all, since there it
  exists only as what ``get_results`` returns.
- Aux data are bound as the rows of the frames a hook sees: on a worker the
  partition's rows, moved to the backend once per partition; on the host
  every selected frame's rows (:func:`bind_host_params`), checked against the
  dataset first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gpuudf.aux_data import AuxData
from gpuudf.backends import Backend, NumpyBackend
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.shape import Positions, Shape
from gpuudf.udf import UDF, UDFMeta, UDFTaskData

__all__ = ["HOST", "PartitionBuffers", "aux_data_of", "bind_host_params", "give_task_data", "meta_on"]

#: The backend of the host side: the host copy's buffers, and ``where="host"`` buffers on any worker.
HOST = NumpyBackend()


def meta_on(
    backend: Backend, dataset: DataSet, input_dtype: np.dtype[Any], roi: np.ndarray[Any, np.dtype[np.bool_]] | None
) -> UDFMeta:
    """The ``meta`` of a UDF that computes on ``backend`` in a run over ``dataset``."""
    return UDFMeta(
        dataset_shape=dataset.shape,
        dataset_dtype=dataset.dtype,
        input_dtype=input_dtype,
        roi=roi,
        device_class=backend.device_class,
        device_id=backend.device_id,
        array_backend=backend.array_backend,
        threads_per_worker=backend.threads_per_worker,
    )


def give_task_data(udf: UDF) -> None:
    """Compute the UDF's ``task_data`` (once per worker and run, and once for the host copy)."""
    udf.task_data = UDFTaskData(udf.get_task_data())


def aux_data_of(udf: UDF) -> list[tuple[str, AuxData]]:
    """The parameters of ``udf`` that are aux data, by name, in the order it was given them."""
    kwargs = udf._kwargs  # noqa: SLF001 - the engine owns the binding; the UDF's own AuxData stay there
    return [(name, value) for name, value in kwargs.items() if isinstance(value, AuxData)]


def bind_host_params(udf: UDF, shape: Shape, roi: np.ndarray[Any, np.dtype[np.bool_]] | None) -> None:
    """Check the host copy's aux data and bind them as on the host: every selected frame's entries."""
    positions = range(shape.nav_size) if roi is None else np.flatnonzero(roi)
    for name, value in aux_data_of(udf):
        value.check(type(udf).__name__, name, shape)
        udf.params.__dict__[name] = value.rows(positions, shape)


class PartitionBuffers:
    """One UDF bound to one partition: its position in ``meta``, fresh buffers, their views, its aux data.

    Parameters
    ----------
    udf
        A UDF with its ``meta`` (:func:`meta_on`).
    declarations
        What its ``get_result_buffers`` declared, validated.
    backend
        Where buffers that need not stay on the host are allocated.
    positions
        The flat nav indices of the partition's selected frames.
    on_worker
        ``False`` for the host copy, whose partition is the whole selection:
        ``result_only`` buffers are then left unbound, and the aux data as
        :func:`bind_host_params` bound them.

    Attributes
    ----------
    arrays
        The buffers, by name (``result_only`` ones have none).
    rows
        What is rebound per frame and per tile: each ``nav`` result buffer
        (in ``udf.results``) and each ``nav`` aux data parameter (in
        ``udf.params``), as ``(views, name, array, has_extra)``.
    """

    def __init__(
        self,
        udf: UDF,
        declarations: Mapping[str, BufferDeclaration],
        backend: Backend,
        positions: Positions,
        *,
        on_worker: bool = True,
    ) -> None:
        shape = udf.meta.dataset_shape
        udf.meta._positions = positions  # noqa: SLF001 - the engine owns meta
        udf.meta._partition_frames = len(positions)  # noqa: SLF001
        self.arrays: dict[str, Any] = {}
        udf.results = BufferViews(type(udf).__name__, declarations)
        self.views: dict[str, Any] = udf.results.__dict__
        self.rows: list[tuple[dict[str, Any], str, Any, bool]] = []
        for name, decl in declarations.items():
            if not decl.allocated_on_workers:
                if on_worker:
                    self.views[name] = None  # as in LiberTEM: result_only buffers read as None here
                continue
            array = (HOST.zeros if decl.on_host else backend.zeros)(
                decl.local_shape(len(positions), shape.sig), decl.dtype
            )
            self.arrays[name] = array
            if decl.kind == "nav":
                self.rows.append((self.views, name, array, bool(decl.extra_shape)))
        # aux data reach the device once per partition; the UDF's own AuxData stay in _kwargs
        self.params: dict[str, Any] = udf.params.__dict__
        self.aux: dict[str, Any] = {}
        for name, value in aux_data_of(udf) if on_worker else ():
            rows = value.rows(positions, shape)
            array = rows if value.on_host else backend.xp.asarray(rows)
            self.aux[name] = array
            if value.kind == "nav":
                self.rows.append((self.params, name, array, bool(value.extra_shape)))
        self.bind_partition()

    def bind_partition(self) -> None:
        """Bind views of the whole partition (``preprocess``, ``postprocess``)."""
        self.views.update(self.arrays)
        self.params.update(self.aux)

    def bind_tile(self, offset: int, depth: int) -> None:
        """Bind the ``nav`` views to ``depth`` frames from ``offset`` of the partition."""
        for views, name, array, _ in self.rows:
            views[name] = array[offset : offset + depth]
