"""The worker side of a run: one partition, all of the run's UDFs, one backend.

Policy
------
- One pass over the data: each tile is read (and moved to the device) once
  and handed to every UDF of the run, cast once per distinct input dtype.
- Per worker and run, each UDF is re-created once from its class and
  keyword arguments and keeps its ``task_data``; per partition it gets fresh
  buffers.  Both are bound by :mod:`gpuudf.binding`, as the host copy is.
- The per-frame path does as little as possible: views of ``nav`` buffers
  are rebound with dict writes, the position is stored as a ``range`` and
  ``meta.slice``/``meta.coordinates`` are derived only when asked for.
- Results leave the worker as NumPy arrays, once per partition.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from gpuudf.backends import Backend
from gpuudf.binding import PartitionBuffers, give_task_data, meta_on
from gpuudf.buffers import BufferDeclaration
from gpuudf.datasets import DataSet, Partition
from gpuudf.errors import DataSetError, DeviceOutOfMemoryError, UnpicklableParameterError
from gpuudf.shape import Positions
from gpuudf.udf import UDF

__all__ = ["PartitionResult", "PartitionTask", "RunPlan", "UDFSpec", "split_positions", "tile_depth"]


@dataclass(frozen=True)
class UDFSpec:
    """How a UDF travels: its class and the keyword arguments to re-create it."""

    udf_class: type[UDF]
    kwargs: Mapping[str, Any]

    def instantiate(self) -> UDF:
        """A fresh instance, as on a worker."""
        return self.udf_class(**self.kwargs)

    def updated(self, changes: Mapping[str, Any]) -> UDFSpec:
        """A copy with some keyword arguments given new values.

        Raises
        ------
        ValueError
            For a name the UDF was not constructed with.
        """
        unknown = [name for name in changes if name not in self.kwargs]
        if unknown:
            name = self.udf_class.__qualname__
            msg = f"{name} has no parameter {unknown[0]!r} to update; it was constructed with {sorted(self.kwargs)}"
            raise ValueError(msg)
        return UDFSpec(self.udf_class, {**self.kwargs, **changes})


@dataclass(eq=False)
class RunPlan:
    """What workers need to know about a run; shipped once per worker.

    Attributes
    ----------
    roi
        Flat boolean mask of selected frames, or ``None`` for all frames.
    backends
        Array backends every UDF of the run accepts, in preference order.
    """

    udfs: tuple[UDFSpec, ...]
    dataset: DataSet
    roi: np.ndarray[Any, np.dtype[np.bool_]] | None
    input_dtypes: tuple[np.dtype[Any], ...]
    methods: tuple[str, ...]
    declarations: tuple[Mapping[str, BufferDeclaration], ...]
    backends: tuple[str, ...]
    _workers: dict[int, list[UDF]] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_workers"] = {}
        return state

    def with_parameters(self, changes: Sequence[Mapping[str, Any]]) -> RunPlan:
        """A copy of the plan whose UDFs get new values for some parameters.

        ``changes`` holds one dict per UDF, in order, with only the
        parameters that change.  The copy is made the way the plan is
        pickled, so the worker side re-creates its UDF instances (and their
        task data) from the new values.

        Raises
        ------
        ValueError
            For a list of the wrong length, an entry that is not a dict, or a
            parameter a UDF was not constructed with; nothing changes then.
        """
        names = [spec.udf_class.__qualname__ for spec in self.udfs]
        is_list = isinstance(changes, Sequence) and not isinstance(changes, str | bytes)
        if not is_list or len(changes) != len(names):
            got = f"{len(changes)} entries" if is_list else f"a {type(changes).__name__}"
            msg = f"parameters must be a list with one dict per UDF of the run ({', '.join(names)}), got {got}"
            raise ValueError(msg)
        for index, (name, entry) in enumerate(zip(names, changes, strict=True)):
            if not isinstance(entry, Mapping):
                msg = f"parameters[{index}] for {name} must be a dict of new values, got {type(entry).__name__}"
                raise ValueError(msg)  # noqa: TRY004 - one error type for every malformed update
        udfs = tuple(spec.updated(entry) for spec, entry in zip(self.udfs, changes, strict=True))
        patched = copy.copy(self)  # through __getstate__: the per-worker caches start empty
        patched.udfs = udfs
        return patched

    def positions_of(self, partition: Partition) -> Positions:
        """Flat nav indices of the partition's selected frames."""
        if self.roi is None:
            return range(partition.start, partition.stop)
        return np.flatnonzero(self.roi[partition.start : partition.stop]) + partition.start

    def udfs_for(self, backend: Backend) -> list[UDF]:
        """The calling worker's UDF instances, created and given task data once per run."""
        key = id(backend)
        udfs = self._workers.get(key)
        if udfs is None:
            udfs = []
            for spec, input_dtype in zip(self.udfs, self.input_dtypes, strict=True):
                udf = spec.instantiate()
                udf.xp = backend.xp
                udf.meta = meta_on(backend, self.dataset, input_dtype, self.roi)
                give_task_data(udf)
                udfs.append(udf)
            self._workers[key] = udfs
        return udfs


@dataclass(frozen=True)
class PartitionResult:
    """One partition's buffers, per UDF, as NumPy arrays."""

    partition: Partition
    num_frames: int
    buffers: tuple[dict[str, np.ndarray[Any, Any]], ...]


def tile_depth(plan: RunPlan, backend: Backend, num_frames: int) -> int:
    """Frames per tile for this run on this backend.

    The byte budget is the smallest ``total_size`` the UDFs prefer on this
    backend (asked on the worker, so a UDF may prefer differently on a CPU
    and a GPU), else the backend's default; the backend caps it by what its
    memory allows.  Any UDF's ``depth`` preference, the dataset's
    ``preferred_tile_depth`` (a ``tileshape`` given at load) and the
    partition cap the depth further.  A UDF that processes whole partitions
    gets the partition in one tile.
    """
    if "partition" in plan.methods:
        return max(num_frames, 1)
    preferences = [udf.get_tiling_preferences() for udf in plan.udfs_for(backend)]
    itemsize = max(dt.itemsize for dt in (*plan.input_dtypes, plan.dataset.dtype))
    frame_nbytes = plan.dataset.shape.sig_size * itemsize
    # LiberTEM's "no preference" values (TILE_SIZE_MAX, TILE_DEPTH_DEFAULT, ...) are None or inf
    preferred = [int(size) for p in preferences if _finite(size := p.get("total_size"))]
    total = backend.tile_budget_nbytes(min(preferred) if preferred else None)
    depth = max(1, total // frame_nbytes)
    for prefs in preferences:
        if _finite(wanted := prefs.get("depth")):
            depth = min(depth, max(1, int(wanted)))
    if (dataset_depth := plan.dataset.preferred_tile_depth) is not None:
        depth = min(depth, dataset_depth)
    return max(1, min(depth, num_frames))


def _finite(value: object) -> TypeGuard[float]:
    """Whether a tiling preference is a number that prefers something."""
    return isinstance(value, int | float | np.number) and bool(np.isfinite(value))


def _with_data(positions: Positions, with_data: range) -> tuple[int, Positions]:
    """The positions that hold data, and how many come before them.

    Frames that ``sync_offset`` leaves without data are not processed (as in
    LiberTEM); they are a head or a tail of the ascending positions.
    """
    if isinstance(positions, range):
        start = max(positions.start, with_data.start)
        stop = max(start, min(positions.stop, with_data.stop))
        return start - positions.start, range(start, stop)
    head = int(np.searchsorted(positions, with_data.start))
    stop = max(head, int(np.searchsorted(positions, with_data.stop)))
    return head, positions[head:stop]


def split_positions(positions: Positions, depth: int) -> list[Positions]:
    """Consecutive chunks of at most ``depth`` positions."""
    return [positions[i : i + depth] for i in range(0, len(positions), depth)]


def _process_frames(udf: UDF, buffers: PartitionBuffers, tile: Any, positions: Positions, offset: int) -> None:
    """Call ``process_frame`` per frame; the innermost loop of the engine.

    Per frame it only rebinds each nav view (a row made in C by iterating a
    2-D view of the tile's slots) and stores the flat position as an int.
    """
    process = udf.process_frame  # type: ignore[attr-defined]
    meta = udf.meta
    depth = len(positions)
    entries = buffers.rows
    rows = [
        array[offset : offset + depth] if has_extra else array[offset : offset + depth].reshape(depth, 1)
        for _, _, array, has_extra in entries
    ]
    flat: Iterable[int] = positions if isinstance(positions, range) else positions.tolist()
    if not entries:
        for p, frame in zip(flat, tile, strict=True):
            meta._positions = p  # noqa: SLF001 - the engine owns meta
            process(frame)
    elif len(entries) == 1:
        views, name = entries[0][0], entries[0][1]
        for p, frame, row in zip(flat, tile, rows[0], strict=True):
            views[name] = row
            meta._positions = p  # noqa: SLF001
            process(frame)
    elif all(views is buffers.views for views, _, _, _ in entries):
        names = [name for _, name, _, _ in entries]
        views = buffers.views
        for p, frame, *row_views in zip(flat, tile, *rows, strict=True):
            views.update(zip(names, row_views, strict=True))
            meta._positions = p  # noqa: SLF001
            process(frame)
    else:  # nav aux data besides nav buffers: two namespaces to rebind
        targets = [(views, name) for views, name, _, _ in entries]
        for p, frame, *row_views in zip(flat, tile, *rows, strict=True):
            for (views, name), row in zip(targets, row_views, strict=True):
                views[name] = row
            meta._positions = p  # noqa: SLF001
            process(frame)


@dataclass(frozen=True)
class PartitionTask:
    """Process one partition of a run: what an executor hands to a worker."""

    plan: RunPlan
    partition: Partition

    @property
    def backends(self) -> tuple[str, ...]:
        """Array backends this task may run on."""
        return self.plan.backends

    @property
    def shared(self) -> RunPlan:
        """The run's plan, shipped to each worker process once per run."""
        return self.plan

    @property
    def own(self) -> Partition:
        """The partition: all a task adds to its plan."""
        return self.partition

    @classmethod
    def rebuild(cls, shared: RunPlan, own: Partition) -> PartitionTask:
        """The task from its plan and partition (on a worker)."""
        return cls(shared, own)

    @classmethod
    def enter_worker(cls, shared: RunPlan) -> None:
        """The dataset's set-up of a worker process (:meth:`DataSet.enter_worker_process`)."""
        shared.dataset.enter_worker_process()

    @classmethod
    def clean_up_after(cls, parent_pid: int) -> None:
        """What a dead main process left for datasets (:meth:`DataSet.clean_up_after`)."""
        DataSet.clean_up_after(parent_pid)

    def run(self, backend: Backend, on_tile: Callable[[int], None] | None = None) -> PartitionResult:
        """Process the partition on ``backend`` and return its buffers as NumPy.

        ``on_tile(frames)`` is called after each tile; whatever it raises
        (a cancellation) stops the partition at that tile boundary.  On device
        out-of-memory the backend's pools are freed and the partition starts
        over with tiles of half the depth, down to one frame; ``on_tile`` then
        gets the frames already reported back as a negative count.

        Raises
        ------
        DeviceOutOfMemoryError
            If the partition does not fit even so.
        """
        positions = self.plan.positions_of(self.partition)
        reported = [0]

        def report(frames: int) -> None:
            reported[0] += frames
            if on_tile is not None:
                on_tile(frames)

        with backend.activate():  # task data and tiling preferences too are computed on the device
            depth = tile_depth(self.plan, backend, len(positions))
            while True:
                try:
                    return self._run(backend, positions, depth, report)
                except Exception as exc:
                    if not backend.is_out_of_memory(exc):
                        raise
                    backend.release_memory()
                    if reported[0]:
                        report(-reported[0])
                    if depth <= 1 or "partition" in self.plan.methods:
                        msg = (
                            f"partition {self.partition.index} (frames {self.partition.start}-{self.partition.stop}) "
                            f"does not fit {backend.describe()}'s memory even with {depth}-frame tiles"
                        )
                        raise DeviceOutOfMemoryError(msg) from exc
                    depth //= 2

    def _read_frames(
        self, positions: Positions, out: np.ndarray[Any, Any] | None, /, *, prefer_view: bool = False
    ) -> np.ndarray[Any, Any]:
        """The dataset's read, with failures (a file truncated during the run) naming this partition."""
        try:
            return self.plan.dataset.read_frames(positions, out, prefer_view=prefer_view)
        except Exception as exc:  # any failure to read (h5py raises KeyError, RuntimeError, ...) is the data's
            raise self._partition_error(exc) from exc

    def _partition_error(self, exc: BaseException) -> DataSetError:
        partition = self.partition
        frames = f"frames {partition.start}-{partition.stop - 1}"
        return DataSetError(f"partition {partition.index} ({frames}) of {self.plan.dataset!r}: {exc}")

    def pickling_failure(self, exc: Exception) -> Exception:
        """The UDF parameter that does not pickle, by UDF class and name; else ``exc`` itself."""
        import cloudpickle  # noqa: PLC0415 - only runs with worker processes pay for it

        for spec in self.plan.udfs:
            for name, value in spec.kwargs.items():
                try:
                    cloudpickle.dumps(value)
                except Exception as cause:  # noqa: BLE001 - any failure to pickle is the answer
                    msg = (
                        f"{spec.udf_class.__qualname__} parameter {name!r} ({type(value).__qualname__}) cannot be "
                        f"sent to worker processes: {cause}. UDF parameters must pickle; create such objects "
                        "in get_task_data() instead, or run on InlineExecutor"
                    )
                    return UnpicklableParameterError(msg)
        return exc

    def failure_cause(self) -> Exception | None:
        """Why this task may have killed its worker, found from here: a file that shrank during the run."""
        try:
            self.plan.dataset.check_unchanged()
        except (DataSetError, OSError) as exc:
            return self._partition_error(exc)
        return None

    def _run(
        self, backend: Backend, positions: Positions, depth: int, report: Callable[[int], None]
    ) -> PartitionResult:
        plan = self.plan
        udfs = plan.udfs_for(backend)
        num_frames = len(positions)
        buffers = []
        for udf, declarations in zip(udfs, plan.declarations, strict=True):
            partition_buffers = PartitionBuffers(udf, declarations, backend, positions)
            udf.preprocess()
            buffers.append(partition_buffers)

        dataset = plan.dataset
        skipped_head, processed = _with_data(positions, dataset.positions_with_data)
        tiles = split_positions(processed, depth)
        tile_iter = backend.iter_tiles(
            self._read_frames, tiles, dataset.shape.sig, dataset.dtype, source=dataset.host_frames()
        )
        offset = skipped_head
        if len(processed) < num_frames:
            report(num_frames - len(processed))
        try:
            for tile_positions, native_tile in zip(tiles, tile_iter, strict=True):
                cast_tiles: dict[np.dtype[Any], Any] = {}
                for udf, method, input_dtype, partition_buffers in zip(
                    udfs, plan.methods, plan.input_dtypes, buffers, strict=True
                ):
                    tile = cast_tiles.get(input_dtype)
                    if tile is None:
                        tile = cast_tiles[input_dtype] = backend.cast(native_tile, input_dtype)
                    if method == "frame":
                        _process_frames(udf, partition_buffers, tile, tile_positions, offset)
                        continue
                    partition_buffers.bind_tile(offset, len(tile_positions))
                    udf.meta._positions = tile_positions  # noqa: SLF001
                    if method == "tile":
                        udf.process_tile(tile)  # type: ignore[attr-defined]
                    else:
                        udf.process_partition(tile)  # type: ignore[attr-defined]
                offset += len(tile_positions)
                report(len(tile_positions))
        finally:
            tile_iter.close()  # stops the feeder thread of a device backend early on error
            dataset.release()  # no file stays open between partitions (nor runs)

        results = []
        for udf, partition_buffers in zip(udfs, buffers, strict=True):
            partition_buffers.bind_partition()
            udf.meta._positions = positions  # noqa: SLF001
            udf.postprocess()
            udf.cleanup()
            results.append({name: backend.to_host(array) for name, array in partition_buffers.arrays.items()})
        backend.synchronize()
        return PartitionResult(self.partition, num_frames, tuple(results))
