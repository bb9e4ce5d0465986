"""The main-process side of one run: plan, merge, results.

Policy
------
- **Fail before work.**  Everything that can be checked without data is
  checked while planning, before the executor sees a task: UDF re-creation,
  buffer declarations, process method, merge, dtypes, backends, ROI.
- **One clean copy per UDF on the host.**  The user's UDF objects get only
  the run's ``meta`` (LiberTEM's UDFs keep it too); the host copy owns the
  full result buffers, runs ``preprocess``
  once on them (so merges start from the UDF's own initial values), merges
  partitions and computes ``get_results``.
- **Merge in completion order**, straight into host buffers; ``nav``
  buffers are stored compressed to the ROI, so a partition's slice is a
  contiguous range even when the ROI is sparse.
- Partitions with no selected frame never become tasks.
- **Parameter updates** during a run patch a copy of the plan and re-make
  the tasks from it; a partition sees the values current when its task is
  dispatched.  The host copies follow; the user's UDFs keep their parameters.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gpuudf.binding import HOST, PartitionBuffers, bind_host_params, give_task_data
from gpuudf.buffers import BufferDeclaration, BufferViews, declare_buffer, validate_declarations
from gpuudf.datasets import DataSet
from gpuudf.errors import (
    UDFDefinitionError,
    UDFRunCancelled,
    UndeclaredBufferError,
)
from gpuudf.executors import Executor
from gpuudf.planning import check_merge, check_udf_instance, give_host_meta, negotiate_backends
from gpuudf.results import ArrayWithMask, BufferWrapper
from gpuudf.roi import normalize_roi
from gpuudf.task import PartitionResult, PartitionTask, RunPlan, UDFSpec
from gpuudf.udf import UDF, UDFParams, process_method_of

__all__ = ["CancelHandle", "UDFRun"]

Results = dict[str, BufferWrapper]

_DAMAGE = declare_buffer("nav", dtype=bool)


@dataclass
class _HostUDF:
    """The host copy of one UDF and its full-size buffers."""

    udf: UDF
    declarations: Mapping[str, BufferDeclaration]
    raw: dict[str, np.ndarray[Any, Any]]
    dest: BufferViews
    src: BufferViews


class UDFRun:
    """One run of one or more UDFs over a dataset, planned and checked.

    Parameters
    ----------
    dataset
        The dataset to process.
    udfs
        The user's UDF objects: each gets the run's ``meta`` (as in LiberTEM), nothing else.
    executor
        Where partitions are processed.
    roi
        Any ROI form of :func:`gpuudf.roi.normalize_roi`.
    backends
        Restricts the array backends the run may use.
    """

    def __init__(
        self,
        dataset: DataSet,
        udfs: Sequence[UDF],
        executor: Executor,
        roi: Any = None,
        backends: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(dataset, DataSet):
            msg = f"dataset must come from Context.load, got {type(dataset).__name__}"
            raise TypeError(msg)
        if not udfs:
            msg = "run_udf needs at least one UDF"
            raise ValueError(msg)
        for udf in udfs:
            check_udf_instance(udf)
        self.dataset = dataset
        self.executor = executor
        shape = dataset.shape
        self.roi = normalize_roi(roi, shape.nav)
        host_copies = [udf.copy() for udf in udfs]
        array_backends = negotiate_backends(host_copies, backends, executor.array_backends())

        all_positions = range(shape.nav_size) if self.roi is None else np.flatnonzero(self.roi)
        self.num_selected = len(all_positions)
        self.hosts: list[_HostUDF] = []
        input_dtypes, methods, declarations_all = [], [], []
        for udf in host_copies:
            name = type(udf).__name__
            input_dtype = give_host_meta(udf, dataset, self.roi)
            declarations = validate_declarations(name, udf.get_result_buffers())
            methods.append(process_method_of(udf))
            check_merge(udf, declarations)
            input_dtypes.append(input_dtype)
            declarations_all.append(declarations)
            # the whole selection as one partition, bound as a worker binds its own
            raw = PartitionBuffers(udf, declarations, HOST, all_positions, on_worker=False).arrays
            give_task_data(udf)
            udf.preprocess()
            udf.meta._positions = None  # noqa: SLF001 - merge and get_results have no position
            self.hosts.append(
                _HostUDF(udf, declarations, raw, BufferViews(name, declarations), BufferViews(name, declarations))
            )
        for user, host in zip(udfs, self.hosts, strict=True):
            # as in LiberTEM, the user's UDF keeps the meta of its last run (input dtype, shapes, roi)
            user.meta = copy.copy(host.udf.meta)

        self.plan = RunPlan(
            # the user's own parameters: a constructor that changes them must not drift per copy
            udfs=tuple(UDFSpec(type(u), dict(u._kwargs)) for u in udfs),  # noqa: SLF001
            dataset=dataset,
            roi=self.roi,
            input_dtypes=tuple(input_dtypes),
            methods=tuple(methods),
            declarations=tuple(declarations_all),
            backends=array_backends,
        )
        partitions = dataset.get_partitions(min_partitions=executor.num_workers())
        if self.roi is None:
            counts = [p.num_frames for p in partitions]
        else:
            counts = [int(np.count_nonzero(self.roi[p.start : p.stop])) for p in partitions]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        self._nav_slices = {p.index: slice(int(offsets[i]), int(offsets[i + 1])) for i, p in enumerate(partitions)}
        self.tasks = [PartitionTask(self.plan, p) for p, n in zip(partitions, counts, strict=True) if n]
        self.frames_merged = 0
        self._merged_selected = np.zeros(self.num_selected, dtype=bool)  # the same, compressed to the ROI

    def merge(self, result: PartitionResult) -> None:
        """Merge one partition's result into the host buffers."""
        nav_slice = self._nav_slices[result.partition.index]
        for host, buffers in zip(self.hosts, result.buffers, strict=True):
            # live, as in LiberTEM: the frames merged before this partition
            host.udf.meta._valid_nav_mask = self._merged_selected  # noqa: SLF001
            dest_views = host.dest.__dict__
            for name, array in host.raw.items():
                dest_views[name] = array[nav_slice] if host.declarations[name].kind == "nav" else array
            host.src.__dict__.update(buffers)
            host.udf.merge(host.dest, host.src)
        self._merged_selected[nav_slice] = True
        self.frames_merged += result.num_frames

    @property
    def complete(self) -> bool:
        """Whether every selected frame has been merged."""
        return self.frames_merged == self.num_selected

    @property
    def damage(self) -> BufferWrapper:
        """The frames merged so far, as LiberTEM gives them: a ``nav`` bool result (a copy).

        ``.data`` is nav-shaped (``False`` outside the ROI), ``.raw_data``
        flat over the ROI's frames; ``np.asarray(damage)`` is ``.data``.
        """
        shape = self.dataset.shape
        return BufferWrapper.of_result(
            _DAMAGE, shape.nav, shape.sig, raw=self._merged_selected.copy(), selected=self.roi
        )

    def results(self) -> list[Results]:
        """The results of every UDF, through ``get_results``.

        Before the run is complete these are partial results: ``nav``
        buffers hold values only for merged frames (``valid_mask`` is the
        damage), ``sig`` and ``single`` buffers what has been merged so far.
        Partial results are computed from copies, so that ``get_results`` may
        work in place without touching the run's accumulators; the final
        results share memory with the run.
        """
        if self.complete:
            return [self._results_of(host, None) for host in self.hosts]
        merged_of_selected = self._merged_selected.copy()
        return [self._results_of(host, merged_of_selected) for host in self.hosts]

    def _results_of(self, host: _HostUDF, valid_nav: np.ndarray[Any, np.dtype[np.bool_]] | None) -> Results:
        """Wrap one UDF's buffers and what its ``get_results`` returns; ``valid_nav``: merged frames, if not all."""
        shape = self.dataset.shape
        udf = host.udf
        name = type(udf).__name__
        # LiberTEM's view in get_results: nav buffers flat, one entry per selected frame
        raw = host.raw if valid_nav is None else {n: array.copy() for n, array in host.raw.items()}
        udf.results.__dict__.update(raw)
        udf.meta._valid_nav_mask = np.ones(self.num_selected, dtype=bool) if valid_nav is None else valid_nav  # noqa: SLF001
        returned = udf.get_results()
        if not isinstance(returned, Mapping):
            msg = f"{name}.get_results() must return a dict, got {type(returned).__name__}"
            raise UDFDefinitionError(msg)
        arrays: dict[str, _Returned] = {n: (array, None, None) for n, array in raw.items()}
        for key, value in returned.items():
            decl = host.declarations.get(key)
            if decl is None:
                declared = sorted(host.declarations)
                msg = (
                    f"{name}.get_results() returned {key!r}, which is not a declared buffer ({declared}); "
                    "declare it with self.buffer(..., use='result_only')"
                )
                raise UndeclaredBufferError(msg)
            if not decl.returned:
                msg = f"{name}.get_results() returned the private buffer {key!r}; private buffers are never returned"
                raise UDFDefinitionError(msg)
            arrays[key] = self._returned_array(name, key, decl, value)
        missing = [n for n, d in host.declarations.items() if not d.allocated_on_workers and n not in returned]
        if missing:
            msg = (
                f"{name}.get_results() must return its result_only buffers, missing: {missing} "
                f"(don't know how to set use='result_only' buffer {missing[0]!r}; please implement `get_results`)"
            )
            raise UDFDefinitionError(msg)
        return {
            n: BufferWrapper.of_result(
                decl,
                shape.nav,
                shape.sig,
                raw=arrays[n][0],
                selected=self.roi,
                valid_nav=valid_nav,
                mask=arrays[n][1],
                full=arrays[n][2],
            )
            for n, decl in host.declarations.items()
            if decl.returned
        }

    def _returned_array(self, owner: str, key: str, decl: BufferDeclaration, value: Any) -> _Returned:
        """A value ``get_results`` returned: its raw array (nav: flat, selected frames), mask, and full array.

        As in LiberTEM, with a ROI a ``nav`` result returned for every frame
        of the dataset is kept whole: its values outside the ROI stay as
        given.
        """
        mask = None
        if isinstance(value, ArrayWithMask):
            value, mask = value.arr, value.mask
        on_host = value.get() if not isinstance(value, np.ndarray) and hasattr(value, "get") else value
        given = np.asarray(on_host)  # .get(): a device array left by the UDF
        numeric = given.dtype.kind in "biufc" and decl.dtype.kind in "biufc"
        if numeric and not np.can_cast(given.dtype, decl.dtype, casting="same_kind"):
            msg = (
                f"{owner}.get_results() returned {key!r} as {given.dtype}, which the buffer's {decl.dtype} "
                "cannot hold without losing values; declare the buffer with that dtype or convert explicitly"
            )
            raise UDFDefinitionError(msg)
        array = given.astype(decl.dtype, copy=False)
        shape = self.dataset.shape
        expected = decl.full_shape(shape.nav, shape.sig)
        if decl.kind == "nav":
            # accepted as LiberTEM does: nav-shaped, flat over all frames, or flat over the ROI's frames
            accepted = [expected, (shape.nav_size, *decl.extra_shape), (self.num_selected, *decl.extra_shape)]
            if array.shape not in accepted:
                msg = (
                    f"{owner}.get_results() returned {key!r} with shape {array.shape}; a nav buffer takes "
                    f"{' or '.join(map(str, dict.fromkeys(accepted)))}"
                )
                raise UDFDefinitionError(msg)
            frames = shape.nav_size if array.shape == expected else array.shape[0]
            flat_shape = (frames, *decl.extra_shape)
            if mask is not None:
                mask = mask.reshape(flat_shape)
            array = array.reshape(flat_shape)
            if len(array) == self.num_selected:
                return array, mask, None
            assert self.roi is not None  # every frame's entry: kept as given, as in LiberTEM
            return array[self.roi], None if mask is None else mask[self.roi], array
        if array.shape != expected:
            msg = f"{owner}.get_results() returned {key!r} with shape {array.shape}; the buffer's shape is {expected}"
            raise UDFDefinitionError(msg)
        return array, mask, None

    def run(
        self, cancel: CancelHandle | None = None, on_frames: Callable[[int], None] | None = None
    ) -> Generator[PartitionResult, None, None]:
        """Process every task, merging each result as it arrives.

        Parameters
        ----------
        cancel
            Checked after every tile and every merge.
        on_frames
            Called with the frames of every finished tile.

        Raises
        ------
        UDFRunCancelled
            When ``cancel`` is cancelled; closing the generator stops the run
            without it.
        """

        def on_tile(frames: int) -> None:
            if on_frames is not None:
                on_frames(frames)
            if cancel is not None:
                cancel.raise_if_cancelled()

        if cancel is not None:
            cancel.raise_if_cancelled()
        results = self.executor.run_tasks(self.tasks, on_tile, cancel)
        merged = 0
        try:
            for result in results:
                self.merge(result)
                merged += 1
                if cancel is not None:
                    cancel.raise_if_cancelled()
                yield result
                if cancel is not None:  # the consumer may have cancelled while we waited
                    cancel.raise_if_cancelled()
            if merged < len(self.tasks):
                msg = (
                    f"the run stopped after {merged} of {len(self.tasks)} partitions: another run "
                    "on the same Context took its workers over"
                )
                raise UDFRunCancelled(msg)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def update_parameters(self, changes: Sequence[Mapping[str, Any]]) -> None:
        """Give UDF parameters new values for the partitions that start from now on.

        ``changes`` holds one dict per UDF of the run, with only the
        parameters that change.  Every task is re-made from a patched copy of
        the plan: an executor reads a task when it dispatches it, so
        partitions already handed to a worker keep the old values and later
        ones see the new values (their UDF instances and task data are
        re-created on the worker).  The host copies get the new values too,
        for ``merge`` and ``get_results``; the user's UDF objects stay as they
        are.  Safe to call from another thread while the run goes on.

        Raises
        ------
        ValueError
            For a list of the wrong length, an entry that is not a dict, or a
            parameter a UDF was not constructed with; nothing changes then.
        """
        with _UPDATE_LOCK:
            plan = self.plan.with_parameters(changes)
            bound = []
            for host, spec, entry in zip(self.hosts, plan.udfs, changes, strict=True):
                # bound on a shallow twin first: aux data are checked before anything changes
                twin = copy.copy(host.udf)
                twin._kwargs = dict(spec.kwargs)  # noqa: SLF001 - the host copy is the run's own
                twin.params = UDFParams(**{**vars(host.udf.params), **entry})
                bind_host_params(twin, self.dataset.shape, self.roi)
                bound.append((host.udf, twin._kwargs, twin.params))  # noqa: SLF001
            self.plan = plan
            # in place, in one step: the executor holds this list and reads it at dispatch
            self.tasks[:] = [replace(task, plan=plan) for task in self.tasks]
            for udf, kwargs, params in bound:
                udf._kwargs, udf.params = kwargs, params  # noqa: SLF001


#: Serialises parameter updates (rare and quick) of all runs.
_UPDATE_LOCK = threading.Lock()


#: What ``get_results`` gave for one buffer: raw array, valid mask in its shape, full nav array.
_Returned = tuple[np.ndarray[Any, Any], np.ndarray[Any, np.dtype[np.bool_]] | None, np.ndarray[Any, Any] | None]


class CancelHandle:
    """Cancels runs from any thread.

    Pass it to ``Context.run_udf(..., cancel=handle)`` (``run_udf_iter``
    makes its own, reachable as ``.cancel()``); ``handle.cancel()`` stops the
    run within one tile of work and the caller gets :class:`UDFRunCancelled`.
    A handle stays cancelled: a run given a cancelled handle stops at once.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._wakers: dict[int, Callable[[], None]] = {}
        self._next_waker = 0

    def cancel(self) -> None:
        """Ask every run using this handle to stop."""
        with self._lock:
            self._event.set()
            wakers = list(self._wakers.values())
        for wake in wakers:
            wake()

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Have ``wake()`` called when the handle is cancelled (at once if it is); returns the unsubscribe call.

        Executors use it to notice a cancellation while every worker is busy.
        """
        with self._lock:
            key = self._next_waker
            self._next_waker += 1
            self._wakers[key] = wake
            cancelled = self._event.is_set()
        if cancelled:
            wake()

        def unsubscribe() -> None:
            with self._lock:
                self._wakers.pop(key, None)

        return unsubscribe

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`UDFRunCancelled` once :meth:`cancel` was called."""
        if self._event.is_set():
            msg = "the run was cancelled"
            raise UDFRunCancelled(msg)
