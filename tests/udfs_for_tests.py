"""UDFs and reference computations shared by several test modules.

Every UDF here computes with ``self.xp`` inside ``process_*`` and only touches
NumPy in ``merge``/``get_results``, so the same classes run unchanged on any
executor or backend added to ``EXECUTOR_PARAMS`` in ``conftest.py``.

Test data are small non-negative integers stored as floats, so sums are exact
in any order: results can be compared with ``assert_array_equal`` and must not
depend on the partition count or tile depth.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gpuudf import UDF, Context, UDFMeta
from gpuudf.backends.simulated import SimulatedOutOfMemoryError
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.executors import Executor

__all__ = [
    "DATA_SHAPE",
    "NAV_SHAPE",
    "SIG_SHAPE",
    "AnyBackendUDF",
    "CallLog",
    "DerivedUDF",
    "ExecutorCase",
    "FileEvent",
    "HookError",
    "MaxUDF",
    "PauseAt",
    "ProbeUDF",
    "ProcessCalledError",
    "RaiseAt",
    "RaisingUDF",
    "RecordingSumUDF",
    "SumFrameUDF",
    "SumPartitionUDF",
    "SumTileUDF",
    "flat_bounds",
    "nav_axes",
    "process_calls",
    "selected_partitions",
    "sig_axes",
]


@dataclass(frozen=True)
class ExecutorCase:
    """An executor under test and what a UDF running on it sees in ``self.meta``."""

    make: Callable[[], Executor]
    device_class: str
    device_id: int | None
    array_backend: str
    #: Worker processes: made once per test session and reused (starting them per test is too slow).
    in_processes: bool = False


#: The standard asymmetric test shape: nav != sig, odd sizes.
NAV_SHAPE = (5, 7)
SIG_SHAPE = (9, 11)
DATA_SHAPE = (*NAV_SHAPE, *SIG_SHAPE)


def flat_bounds(meta: UDFMeta) -> tuple[int, int]:
    """``(first, last + 1)`` of the flat nav positions the current hook sees."""
    positions = meta.flat_positions
    return (int(positions[0]), int(positions[-1]) + 1) if len(positions) else (0, 0)


def nav_axes(data: np.ndarray[Any, Any], sig_dims: int) -> tuple[int, ...]:
    """The navigation axes of ``data``."""
    return tuple(range(data.ndim - sig_dims))


def sig_axes(data: np.ndarray[Any, Any], sig_dims: int) -> tuple[int, ...]:
    """The signal axes of ``data``."""
    return tuple(range(data.ndim - sig_dims, data.ndim))


def selected_partitions(dataset: DataSet, roi: np.ndarray[Any, Any] | None) -> list[np.ndarray[Any, Any]]:
    """Flat positions of the selected frames of each partition that has any."""
    flat_roi = np.ones(dataset.shape.nav_size, dtype=bool) if roi is None else np.asarray(roi).reshape(-1)
    groups = []
    for partition in dataset.get_partitions():
        positions = np.flatnonzero(flat_roi[partition.start : partition.stop]) + partition.start
        if len(positions):
            groups.append(positions)
    return groups


class ProcessCalledError(Exception):
    """Raised by test UDFs whose process method must never run."""


class AnyBackendUDF(UDF):
    """Base of test UDFs written with ``self.xp``: they run on NumPy and CuPy workers alike."""

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


class MaxUDF(AnyBackendUDF):
    """The example of API.md §2: the elementwise maximum over all frames."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {"maxbuf": self.buffer(kind="sig", dtype=self.meta.input_dtype)}

    def preprocess(self) -> None:
        self.results.maxbuf[:] = -np.inf

    def process_frame(self, frame: Any) -> None:
        self.results.maxbuf[:] = self.xp.maximum(frame, self.results.maxbuf)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.maxbuf[:] = np.maximum(dest.maxbuf, src.maxbuf)


class _SumBase(AnyBackendUDF):
    """Per-frame sums (nav), the sum of all frames (sig) and a frame count (single).

    Subclasses differ only in the process method, so they must agree.
    """

    def __init__(self, depth: int | None = None) -> None:
        super().__init__(depth=depth)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
            "count": self.buffer(kind="single", dtype="int64"),
        }

    def get_tiling_preferences(self) -> Mapping[str, int]:
        return {} if self.params.depth is None else {"depth": self.params.depth}

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.per_frame[:] = src.per_frame
        dest.total += src.total
        dest.count += src.count

    def _add_stack(self, stack: Any) -> None:
        sig = tuple(range(1, stack.ndim))
        self.results.per_frame[:] = self.xp.sum(stack, axis=sig)
        self.results.total += self.xp.sum(stack, axis=0)
        self.results.count += stack.shape[0]


class SumFrameUDF(_SumBase):
    """:class:`_SumBase` with ``process_frame``."""

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.total += frame
        self.results.count += 1


class SumTileUDF(_SumBase):
    """:class:`_SumBase` with ``process_tile``."""

    def process_tile(self, tile: Any) -> None:
        self._add_stack(tile)


class SumPartitionUDF(_SumBase):
    """:class:`_SumBase` with ``process_partition``."""

    def process_partition(self, partition: Any) -> None:
        self._add_stack(partition)


class ProbeUDF(AnyBackendUDF):
    """Records what the engine shows a UDF: positions, slices and view shapes.

    Buffers (all nav unless noted), per frame:

    - ``coords``: ``meta.coordinates`` seen by the call that processed the frame;
    - ``slice_start``/``slice_stop``: the flat nav bounds of that call;
    - ``view_shapes``: shapes of the views and of the data in that call;
    - ``pre_start``/``pre_stop``: the flat nav bounds in ``preprocess``, assigned to
      the whole nav view there;
    - ``post_frames``: the length of the nav view in ``postprocess``;
    - ``plain``/``with_extra``: nav buffers without and with ``extra_shape``;
    - ``sig_calls`` (sig) and ``frames_seen`` (single): merged counts.
    """

    EXTRA = (2, 3)

    def __init__(self, method: str = "frame", depth: int | None = None) -> None:
        super().__init__(method=method, depth=depth)

    def get_method(self) -> str:
        return str(self.params.method)

    def get_tiling_preferences(self) -> Mapping[str, int]:
        return {} if self.params.depth is None else {"depth": self.params.depth}

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        nav_dims = len(self.meta.dataset_shape.nav)
        return {
            "coords": self.buffer(kind="nav", extra_shape=(nav_dims,), dtype="int64"),
            "slice_start": self.buffer(kind="nav", dtype="int64"),
            "slice_stop": self.buffer(kind="nav", dtype="int64"),
            "view_shapes": self.buffer(kind="nav", dtype=object),
            "pre_start": self.buffer(kind="nav", dtype="int64"),
            "pre_stop": self.buffer(kind="nav", dtype="int64"),
            "post_frames": self.buffer(kind="nav", dtype="int64"),
            "plain": self.buffer(kind="nav", dtype="float32"),
            "with_extra": self.buffer(kind="nav", extra_shape=self.EXTRA, dtype="float32"),
            "sig_calls": self.buffer(kind="sig", dtype="int64"),
            "frames_seen": self.buffer(kind="single", dtype="int64"),
        }

    def preprocess(self) -> None:
        self.results.pre_start, self.results.pre_stop = flat_bounds(self.meta)

    def postprocess(self) -> None:
        self.results.post_frames = len(self.results.plain)

    def _record(self, data: Any) -> None:
        results = self.results
        coordinates = self.meta.coordinates
        results.coords = self.xp.asarray(coordinates.reshape(results.coords.shape))
        results.slice_start, results.slice_stop = flat_bounds(self.meta)
        shapes = {
            "plain": tuple(results.plain.shape),
            "with_extra": tuple(results.with_extra.shape),
            "sig": tuple(results.sig_calls.shape),
            "single": tuple(results.frames_seen.shape),
            "data": tuple(data.shape),
            "frames": len(coordinates),
        }
        view = results.view_shapes
        for i in range(len(view)):
            view[i] = shapes
        results.sig_calls += 1
        results.frames_seen += len(coordinates)

    def process_frame(self, frame: Any) -> None:
        self._record(frame)

    def process_tile(self, tile: Any) -> None:
        self._record(tile)

    def process_partition(self, partition: Any) -> None:
        self._record(partition)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        for name in ("coords", "slice_start", "slice_stop", "view_shapes", "pre_start", "pre_stop", "post_frames"):
            setattr(dest, name, getattr(src, name))
        dest.sig_calls += src.sig_calls
        dest.frames_seen += src.frames_seen


# ---------------------------------------------------------------- run control (cancellation, errors, progress)
#
# A UDF travels to workers as its class and keyword arguments, pickled for
# worker processes.  The UDFs below report to the test and are steered by it
# through files (:class:`CallLog`, :class:`FileEvent`), which work the same in
# the main process, its threads and worker processes.


class CallLog:
    """An append-only log of ``(hook, start, stop)`` entries in a file, shared with worker processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def append(self, entry: tuple[str, int | None, int | None]) -> None:
        with Path(self.path).open("a", encoding="utf-8") as file:
            file.write(json.dumps(list(entry)) + "\n")  # one short write: atomic with O_APPEND

    def append_and_count(self, entry: tuple[str, int | None, int | None]) -> int:
        """Append ``entry`` and return how many entries of its hook the log then holds.

        The file lock makes append and count one step, so that two worker
        processes never see the same count and none is skipped.
        """
        with Path(self.path).open("a+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.write(json.dumps(list(entry)) + "\n")
            file.flush()
            file.seek(0)
            return sum(1 for line in file if json.loads(line)[0] == entry[0])

    def __iter__(self) -> Iterator[tuple[str, int | None, int | None]]:
        path = Path(self.path)
        if not path.exists():
            return iter([])
        lines = path.read_text(encoding="utf-8").splitlines()
        return iter([tuple(json.loads(line)) for line in lines])  # type: ignore[misc]

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def hooks(self, hook: str) -> list[tuple[str, int | None, int | None]]:
        """The entries of one hook, in the order they were logged."""
        return [entry for entry in self if entry[0] == hook]


class FileEvent:
    """A ``threading.Event`` that also works across processes: set once its file exists."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def set(self) -> None:
        Path(self.path).touch()

    def is_set(self) -> bool:
        return Path(self.path).exists()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True


@dataclass(frozen=True)
class RaiseAt:
    """``on_process`` steering: raise ``exception`` before the ``at``-th process call and any later one.

    "Any later one": worker processes count calls through a shared log, and
    two of them may each see a different count; neither may skip the raise.
    """

    at: int
    exception: type[BaseException]

    def __call__(self, calls: int) -> None:
        if calls >= self.at:
            raise self.exception


@dataclass(frozen=True)
class PauseAt:
    """``on_process`` steering: at the ``at``-th process call set ``reached``, then wait for ``resume``.

    Raises ``TimeoutError`` in the UDF when ``resume`` is not set within
    ``timeout`` seconds, so a test whose other side never comes fails
    instead of passing by accident.
    """

    at: int
    reached: FileEvent | None
    resume: FileEvent
    timeout: float = 5.0

    def __call__(self, calls: int) -> None:
        if calls != self.at:
            return
        if self.reached is not None:
            self.reached.set()
        if not self.resume.wait(self.timeout):
            msg = f"process call {calls} was not resumed within {self.timeout} s"
            raise TimeoutError(msg)


class HookError(Exception):
    """Raised by :class:`RaisingUDF` in the hook it was told to fail in."""


class RecordingSumUDF(_SumBase):
    """:class:`_SumBase` that logs every hook call and can be steered per process call.

    Parameters
    ----------
    method
        ``"frame"``, ``"tile"`` or ``"partition"``: the process method that runs.
    depth
        Tile depth preference, or ``None``.
    log
        A :class:`CallLog` the UDF appends ``(hook, start, stop)`` to on every
        call of ``preprocess``, ``process`` (any process method),
        ``postprocess``, ``merge`` and ``get_results``; ``start``/``stop`` are
        the flat nav bounds (``None`` for ``merge`` and ``get_results``,
        which run on the host).  Without it, each copy counts its own calls.
    on_process
        Called as ``on_process(n)`` before the ``n``-th process call (1-based,
        counted in ``log``) does its work: it may block or raise.  It must
        pickle (:class:`RaiseAt`, :class:`PauseAt`) to reach worker processes.
    """

    def __init__(
        self,
        method: str = "tile",
        depth: int | None = None,
        log: CallLog | None = None,
        on_process: Callable[[int], None] | None = None,
    ) -> None:
        AnyBackendUDF.__init__(self, method=method, depth=depth, log=log, on_process=on_process)

    def get_method(self) -> str:
        return str(self.params.method)

    def _get_log(self) -> CallLog | list[tuple[str, int | None, int | None]]:
        log: CallLog | None = self.params.log
        return log if log is not None else self.__dict__.setdefault("_own_log", [])

    def _log(self, hook: str, on_host: bool = False) -> None:
        if on_host:
            self._get_log().append((hook, None, None))
        else:
            self._get_log().append((hook, *flat_bounds(self.meta)))

    def _before_process(self) -> None:
        log = self._get_log()
        entry = ("process", *flat_bounds(self.meta))
        if isinstance(log, CallLog):
            calls = log.append_and_count(entry)
        else:
            log.append(entry)
            calls = process_calls(log)
        on_process = self.params.on_process
        if on_process is not None:
            on_process(calls)

    def preprocess(self) -> None:
        self._log("preprocess")

    def process_frame(self, frame: Any) -> None:
        self._before_process()
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.total += frame
        self.results.count += 1

    def process_tile(self, tile: Any) -> None:
        self._before_process()
        self._add_stack(tile)

    def process_partition(self, partition: Any) -> None:
        self._before_process()
        self._add_stack(partition)

    def postprocess(self) -> None:
        self._log("postprocess")

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        self._log("merge", on_host=True)
        super().merge(dest, src)

    def get_results(self) -> Mapping[str, Any]:
        self._log("get_results", on_host=True)
        return {}


def process_calls(log: CallLog | list[tuple[str, int | None, int | None]]) -> int:
    """How many process calls a :class:`RecordingSumUDF` logged."""
    return sum(1 for entry in log if entry[0] == "process")


class RaisingUDF(AnyBackendUDF):
    """Raises :class:`HookError` in ``hook`` once that hook has been called ``skip`` times.

    ``hook`` is one of :data:`HOOKS`; a ``process_*`` hook is also the process
    method, else ``process_tile`` runs (tiles of 2 frames).  ``seen`` (a
    :class:`CallLog`) counts the hook's calls across every copy of the UDF,
    so ``hook="preprocess", skip=1`` lets the host's call pass and fails on a
    worker; without it each copy counts its own calls.
    """

    HOOKS = ("preprocess", "process_frame", "process_tile", "process_partition", "postprocess", "merge", "get_results")

    def __init__(self, hook: str, skip: int = 0, seen: CallLog | None = None) -> None:
        super().__init__(hook=hook, skip=skip, seen=seen)

    def get_method(self) -> str:
        hook = str(self.params.hook)
        return hook.removeprefix("process_") if hook.startswith("process_") else "tile"

    def get_tiling_preferences(self) -> Mapping[str, int]:
        return {"depth": 2}

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
        }

    def _maybe_raise(self, hook: str) -> None:
        if hook != self.params.hook:
            return
        seen = self.params.seen if self.params.seen is not None else self.__dict__.setdefault("_own_calls", [])
        seen.append((hook, None, None))
        if len(seen) > self.params.skip:
            msg = f"{hook} failed on purpose"
            raise HookError(msg)

    def preprocess(self) -> None:
        self._maybe_raise("preprocess")

    def _add(self, stack: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(stack, axis=tuple(range(1, stack.ndim)))
        self.results.total += self.xp.sum(stack, axis=0)

    def process_frame(self, frame: Any) -> None:
        self._maybe_raise("process_frame")
        self.results.per_frame[:] = self.xp.sum(frame)
        self.results.total += frame

    def process_tile(self, tile: Any) -> None:
        self._maybe_raise("process_tile")
        self._add(tile)

    def process_partition(self, partition: Any) -> None:
        self._maybe_raise("process_partition")
        self._add(partition)

    def postprocess(self) -> None:
        self._maybe_raise("postprocess")

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        self._maybe_raise("merge")
        dest.per_frame[:] = src.per_frame
        dest.total += src.total

    def get_results(self) -> Mapping[str, Any]:
        self._maybe_raise("get_results")
        return {}


class DerivedUDF(AnyBackendUDF):
    """Sums per frame and over frames, plus ``result_only`` buffers derived in ``get_results``.

    Every derived value depends only on the merged buffers, so partial
    results can be compared with a fresh run over the merged frames.
    """

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        return {
            "per_frame": self.buffer(kind="nav", dtype="float64"),
            "total": self.buffer(kind="sig", dtype="float64"),
            "count": self.buffer(kind="single", dtype="int64"),
            "doubled": self.buffer(kind="nav", dtype="float64", use="result_only"),
            "shifted_total": self.buffer(kind="sig", dtype="float64", use="result_only"),
            "count_squared": self.buffer(kind="single", dtype="int64", use="result_only"),
        }

    def get_tiling_preferences(self) -> Mapping[str, int]:
        return {"depth": 3}

    def process_tile(self, tile: Any) -> None:
        self.results.per_frame[:] = self.xp.sum(tile, axis=tuple(range(1, tile.ndim)))
        self.results.total += self.xp.sum(tile, axis=0)
        self.results.count += tile.shape[0]

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.per_frame[:] = src.per_frame
        dest.total += src.total
        dest.count += src.count

    def get_results(self) -> Mapping[str, Any]:
        return {
            "doubled": 2 * self.results.per_frame,
            "shifted_total": self.results.total + self.results.count[0],
            "count_squared": self.results.count**2,
        }


# ---------------------------------------------------------------- file datasets

__all__ += [
    "FILE_KINDS",
    "FILE_ROI",
    "SIG_DIMS_CASES",
    "TruncatingSumUDF",
    "assert_reads_match",
    "assert_sum_udfs_match_numpy",
    "save_data_file",
]

#: File formats :func:`save_data_file` writes: ``hdf5`` is contiguous and
#: uncompressed, ``hdf5-chunked`` chunked and gzip-compressed (read through
#: h5py), ``hdf5-unfiltered`` chunked, uncompressed, whole frames per chunk
#: (read from the file's bytes through the chunk table).
FILE_KINDS = ("raw", "npy", "hdf5", "hdf5-chunked", "hdf5-unfiltered")

#: An irregular ROI over :data:`NAV_SHAPE`: frames in every row, none in one column, both corners.
FILE_ROI = np.random.default_rng(11).random(NAV_SHAPE) < 0.4
FILE_ROI[:, 2] = False
FILE_ROI[0, 0] = FILE_ROI[-1, -1] = True


def hdf5_test_chunks(shape: tuple[int, ...], sig_dims: int) -> tuple[int, ...]:
    """Chunks :func:`save_data_file` uses: one row of the last nav axis split in two, whole frames."""
    nav = shape[: len(shape) - sig_dims]
    return (*(1 for _ in nav[:-1]), -(-nav[-1] // 2), *shape[len(shape) - sig_dims :])


def save_data_file(
    directory: Path, kind: str, data: np.ndarray[Any, Any], sig_dims: int = 2, name: str = "data"
) -> tuple[Path, dict[str, Any]]:
    """Write ``data`` as a ``kind`` file (one of :data:`FILE_KINDS`) in ``directory``.

    Returns the file and the arguments of ``load(kind)`` (``"hdf5"`` for every
    HDF5 kind) that read ``data`` back with ``sig_dims`` signal axes.
    """
    nav = tuple(data.shape[: data.ndim - sig_dims])
    sig = tuple(data.shape[data.ndim - sig_dims :])
    if kind == "raw":
        path = directory / f"{name}.raw"
        data.tofile(path)
        return path, {"path": path, "nav_shape": nav, "sig_shape": sig, "dtype": data.dtype.str}
    if kind == "npy":
        path = directory / f"{name}.npy"
        np.save(path, data)
        return path, {"path": path, "sig_dims": sig_dims}
    if kind not in {"hdf5", "hdf5-chunked", "hdf5-unfiltered"}:
        msg = f"no such file kind: {kind!r}"
        raise ValueError(msg)
    import h5py  # only HDF5 tests pay for it (workers import this module too)

    path = directory / f"{name}.h5"
    with h5py.File(path, "w") as file:
        chunks = hdf5_test_chunks(data.shape, sig_dims)
        if kind == "hdf5":
            file.create_dataset("entry/data", data=data)
        elif kind == "hdf5-chunked":
            file.create_dataset("entry/data", data=data, chunks=chunks, compression="gzip")
        else:
            file.create_dataset("entry/data", data=data, chunks=chunks)
    return path, {"path": path, "ds_path": "/entry/data", "sig_dims": sig_dims}


def assert_sum_udfs_match_numpy(
    ctx: Context,
    dataset: DataSet,
    data: np.ndarray[Any, Any],
    roi: np.ndarray[Any, Any] | None = None,
    sync_offset: int = 0,
    stored_frames: int | None = None,
) -> None:
    """Run the frame, tile and partition sum UDFs in one pass; each must agree with NumPy on ``data``.

    ``data`` has the dataset's shape (``nav + sig``); ``roi`` is a boolean mask over nav.
    With a ``sync_offset`` (over ``stored_frames``, by default as many as the
    dataset's), frames left without data (zeros in ``data``) are not processed,
    as in LiberTEM: they add nothing and are not counted.
    """
    nav, sig = dataset.shape.nav, dataset.shape.sig
    frames = np.asarray(data).reshape(math.prod(nav), *sig)
    mask = np.ones(math.prod(nav), dtype=bool) if roi is None else np.asarray(roi).reshape(-1)
    sums = frames.sum(axis=tuple(range(1, frames.ndim)), dtype=np.float64)
    with_data = np.zeros(len(frames), dtype=bool)
    stored = len(frames) if stored_frames is None else stored_frames
    with_data[max(0, -sync_offset) : max(0, stored - sync_offset)] = True
    udfs: list[UDF] = [SumFrameUDF(), SumTileUDF(depth=3), SumPartitionUDF()]
    for udf, res in zip(udfs, ctx.run_udf(dataset=dataset, udf=udfs, roi=roi), strict=True):
        name = type(udf).__name__
        assert_array_equal(res["per_frame"].data, np.where(mask, sums, np.nan).reshape(nav), err_msg=name)
        assert_array_equal(res["total"].data, frames[mask].sum(axis=0, dtype=np.float64), err_msg=name)
        assert_array_equal(res["count"].data, [(mask & with_data).sum()], err_msg=name)


def assert_reads_match(dataset: DataSet, expected: np.ndarray[Any, Any], cases: list[Any]) -> None:
    """``dataset.read_frames`` gives ``expected[positions]`` for each case: into a new array and into ``out``.

    ``out`` starts filled with 7, so frames of zeros (a ``sync_offset``) must
    overwrite it; ``prefer_view`` may hand out a view instead.
    """
    for positions in cases:
        assert_array_equal(dataset.read_frames(positions), expected[positions])
        out = np.full((len(positions), *expected.shape[1:]), 7, dtype=expected.dtype)
        assert_array_equal(dataset.read_frames(positions, out, prefer_view=True), expected[positions])


class TruncatingSumUDF(SumFrameUDF):
    """:class:`SumFrameUDF` that truncates the file ``path`` to ``nbytes`` when it processes flat frame ``at``.

    The frames of the partition it runs in are already read then, so the
    truncation hits the partitions read after it.
    """

    def __init__(self, path: str, at: int, nbytes: int, depth: int | None = None) -> None:
        AnyBackendUDF.__init__(self, path=path, at=at, nbytes=nbytes, depth=depth)

    def process_frame(self, frame: Any) -> None:
        if flat_bounds(self.meta)[0] == self.params.at:
            os.truncate(self.params.path, self.params.nbytes)
        super().process_frame(frame)


#: ``(data_shape, sig_dims, nav, sig)``: how ``sig_dims`` splits stored data into nav and sig axes.
SIG_DIMS_CASES = [
    pytest.param((13, 17), 1, (13,), (17,), id="nav1-sig1"),
    pytest.param((13, 9, 11), None, (13,), (9, 11), id="nav1-sig2-default"),
    pytest.param(DATA_SHAPE, None, NAV_SHAPE, SIG_SHAPE, id="nav2-sig2-default"),
    pytest.param(DATA_SHAPE, 1, (5, 7, 9), (11,), id="nav3-sig1"),
    pytest.param(DATA_SHAPE, 3, (5,), (7, 9, 11), id="nav1-sig3"),
    pytest.param((3, 2, 5, 3, 4, 5), 3, (3, 2, 5), (3, 4, 5), id="nav3-sig3"),
]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


# ---------------------------------------------------------------- executors: UDFs that fail, block, run out of memory


class DeviceClassUDF(UDF):
    """Records, per frame, which kind of worker processed it."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"on_cuda": self.buffer(kind="nav", dtype="int8", where="host")}

    def process_tile(self, tile: Any) -> None:
        self.results.on_cuda[:] = 1 if self.meta.device_class == "cuda" else 0

    def get_backends(self) -> tuple[str, ...]:
        return self.params.backends  # type: ignore[no-any-return]

    def __init__(self, backends: tuple[str, ...] = ("numpy", "cupy")) -> None:
        super().__init__(backends=backends)


class DieUDF(UDF):
    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        os._exit(3)  # a worker that dies without a word


class RaiseUDF(UDF):
    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        msg = "raised in a worker"
        raise ArithmeticError(msg)


class DeviceOOMUDF(UDF):
    """Runs out of (simulated) device memory on a CUDA worker, works on a CPU."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"total": self.buffer(kind="nav", dtype="float64")}

    def process_tile(self, tile: Any) -> None:
        if self.meta.device_class == "cuda":
            msg = "simulated device memory exhausted"
            raise SimulatedOutOfMemoryError(msg)
        self.results.total[:] = self.xp.sum(tile, axis=(1, 2))

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


class SlowFrameUDF(UDF):
    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        time.sleep(0.002)
        self.results.x[:] = 1

    def get_tiling_preferences(self) -> dict[str, int]:
        return {"depth": 4}


class BlockingUDF(UDF):
    """Touches ``marker``, then blocks inside ``process_frame`` far longer than any test waits."""

    def __init__(self, marker: str) -> None:
        super().__init__(marker=marker)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        Path(self.params.marker).touch()
        time.sleep(600)  # a stuck C call, as far as the executor can tell


def wait_for(path: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def in_thread(call: Any) -> tuple[threading.Thread, list[BaseException | None]]:
    """Start ``call()`` in a thread; the list gets what it raised (or ``None``)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome
