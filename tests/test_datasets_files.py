"""What every file dataset shares: path checks, BinaryFrames reads, truncated files, workers reading, pickling."""

from __future__ import annotations

import math
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import DataSetError
from gpuudf.datasets import DataSet, H5DataSet, load
from gpuudf.datasets import files as files_module
from gpuudf.datasets.files import BinaryFrames, checked_path, consecutive_runs, int_argument, numeric_dtype
from tests.udfs_for_tests import (
    DATA_SHAPE,
    FILE_KINDS,
    FILE_ROI,
    NAV_SHAPE,
    SIG_SHAPE,
    ExecutorCase,
    ProbeUDF,
    SumFrameUDF,
    TruncatingSumUDF,
    assert_sum_udfs_match_numpy,
)

FRAMES = math.prod(NAV_SHAPE)
REPO = Path(__file__).resolve().parent.parent

CountsFn = Callable[..., np.ndarray[Any, Any]]
FileFn = Callable[..., tuple[Path, dict[str, Any]]]

#: ``load`` arguments of every loader for a file at ``path`` (the raw ones describe DATA_SHAPE uint16).
LOADERS = {
    "raw": lambda path: {"path": path, "nav_shape": NAV_SHAPE, "sig_shape": SIG_SHAPE, "dtype": "uint16"},
    "npy": lambda path: {"path": path},
    "hdf5": lambda path: {"path": path},
    "auto": lambda path: {"path": path},
}

#: How each loader names itself in messages.
WHAT = {"raw": "raw dataset", "npy": "npy dataset", "hdf5": "hdf5 dataset", "auto": "auto dataset"}


def frames_of(data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return data.reshape(FRAMES, *SIG_SHAPE)


def binary_frames(path: Path, **kwargs: Any) -> BinaryFrames:
    args: dict[str, Any] = {
        "offset_nbytes": 0,
        "frame_shape": SIG_SHAPE,
        "dtype": np.dtype("uint16"),
        "num_frames": FRAMES,
    }
    return BinaryFrames(path, **{**args, **kwargs})


@pytest.fixture(params=[False, True], ids=["preadv", "memory-maps"])
def memory_maps(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Reads in this process as the user's process does them (preadv), or as workers do (memory maps)."""
    allowed: bool = request.param
    monkeypatch.setattr(files_module, "_MEMORY_MAPS", [allowed])
    return allowed


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("positions", "runs"),
    [
        pytest.param(range(3, 9), [(3, 9)], id="range"),
        pytest.param(range(0), [], id="empty-range"),
        pytest.param(range(5, 6), [(5, 6)], id="one-frame-range"),
        pytest.param(np.array([0, 1, 2, 5, 6, 9]), [(0, 3), (5, 7), (9, 10)], id="gaps"),
        pytest.param(np.array([4]), [(4, 5)], id="one"),
        pytest.param(np.array([], dtype=np.int64), [], id="empty-array"),
        pytest.param(np.array([7, 8, 3, 4]), [(7, 9), (3, 5)], id="unsorted-keeps-order"),
        pytest.param([1, 3, 5], [(1, 2), (3, 4), (5, 6)], id="list"),
    ],
)
def test_consecutive_runs_splits_positions_into_start_stop_runs_in_order(
    positions: Any, runs: list[tuple[int, int]]
) -> None:
    found = consecutive_runs(positions)
    assert found == runs
    assert all(type(a) is int and type(b) is int for a, b in found)


@pytest.mark.parametrize("dtype", ["bool", "int8", "<u2", ">u2", ">f4", "float16", "complex64", ">c16", np.int64])
def test_numeric_dtype_accepts_numbers_of_either_byte_order(dtype: Any) -> None:
    assert numeric_dtype(dtype, "x") == np.dtype(dtype)


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        pytest.param("foo", r"where: unknown dtype 'foo'", id="unknown"),
        pytest.param("int33", r"where: unknown dtype 'int33'", id="no-such-size"),
        pytest.param("U4", r"where: frames must hold numbers \(bool, int, float or complex\), got dtype <U4", id="U4"),
        pytest.param(object, r"got dtype object", id="object"),
        pytest.param("m8[s]", r"got dtype timedelta64\[s\]", id="timedelta"),
        pytest.param("V8", r"got dtype \|V8", id="void"),
    ],
)
def test_numeric_dtype_refuses_anything_but_numbers_naming_the_dataset(dtype: Any, message: str) -> None:
    with pytest.raises(DataSetError, match=message):
        numeric_dtype(dtype, "where")


def test_int_argument_takes_ints_and_numpy_ints_but_not_bools_floats_or_too_small_values() -> None:
    assert int_argument("n", 3) == 3
    assert type(int_argument("n", np.int16(-2))) is int
    for bad in (True, 2.0, "2", None):
        with pytest.raises(DataSetError, match=rf"n must be an int, got {bad!r}"):
            int_argument("n", bad)
    with pytest.raises(DataSetError, match=r"n must be at least 0, got -1"):
        int_argument("n", -1, minimum=0)


def test_checked_path_makes_paths_absolute_and_expands_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data.raw").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert checked_path("data.raw", "w") == tmp_path / "data.raw"
    assert checked_path(Path("data.raw"), "w").is_absolute()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert checked_path("~/data.raw", "w") == tmp_path / "data.raw"
    with pytest.raises(DataSetError, match=r"w needs a file path \(str or pathlib.Path\), got bytes"):
        checked_path(b"data.raw", "w")


# ---------------------------------------------------------------- BinaryFrames


def test_binary_frames_read_straight_into_the_callers_buffer(
    tmp_path: Path, random_counts: CountsFn, memory_maps: bool
) -> None:
    data = random_counts(DATA_SHAPE, dtype="uint16", high=1000)
    path = tmp_path / "data.raw"
    data.tofile(path)
    frames = binary_frames(path)
    flat = frames_of(data)
    for positions in (range(FRAMES), range(3, 4), np.array([0, 5, 6, 7, 30])):
        out = np.full((len(positions), *SIG_SHAPE), 1234, dtype=np.uint16)
        assert frames.read(positions, out) is out
        assert_array_equal(out, flat[positions])


def test_binary_frames_read_into_part_of_a_larger_buffer_leaves_the_rest_alone(tmp_path: Path) -> None:
    data = np.arange(math.prod(DATA_SHAPE), dtype=np.uint16).reshape(DATA_SHAPE)
    path = tmp_path / "data.raw"
    data.tofile(path)
    buffer = np.full((10, *SIG_SHAPE), 7, dtype=np.uint16)
    frames = binary_frames(path)
    part = buffer[3:7]
    assert frames.read(range(2, 6), part) is part
    assert_array_equal(buffer[3:7], frames_of(data)[2:6])
    assert (buffer[:3] == 7).all()
    assert (buffer[7:] == 7).all()


def test_prefer_view_gives_a_read_only_view_of_a_memory_map_only_where_maps_are_allowed(
    tmp_path: Path, random_counts: CountsFn, memory_maps: bool
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path = tmp_path / "data.raw"
    data.tofile(path)
    frames = binary_frames(path, dtype=np.dtype("float32"))
    out = np.zeros((5, *SIG_SHAPE), dtype=np.float32)
    got = frames.read(range(10, 15), out, prefer_view=True)
    assert_array_equal(got, frames_of(data)[10:15])
    if memory_maps:
        assert got is not out
        assert not got.flags.writeable
    else:
        assert got is out
    # several runs always land in out
    part = out[:3]
    assert frames.read(np.array([1, 2, 8]), part, prefer_view=True) is part
    assert_array_equal(out[:3], frames_of(data)[[1, 2, 8]])


def test_binary_frames_swap_a_non_native_byte_order_into_native_frames(
    tmp_path: Path, random_counts: CountsFn, memory_maps: bool
) -> None:
    values = random_counts(DATA_SHAPE, dtype="float32", high=1000)
    path = tmp_path / "data.raw"
    values.astype(">f4").tofile(path)
    frames = binary_frames(path, dtype=np.dtype(">f4"))
    assert frames.dtype == np.dtype("=f4")
    for prefer_view in (False, True):
        out = np.empty((5, *SIG_SHAPE), dtype=np.float32)
        got = frames.read(range(4, 9), out, prefer_view=prefer_view)
        assert got is out  # swapped in the caller's buffer, never a view of the file
        assert_array_equal(got, frames_of(values)[4:9])
    assert_array_equal(frames.read(np.array([0, 34])), frames_of(values)[[0, 34]])


def test_a_negative_sync_offset_puts_zeros_before_the_first_stored_frame_with_either_read(
    tmp_path: Path, random_counts: CountsFn, memory_maps: bool
) -> None:
    stored = random_counts((FRAMES - 3, *SIG_SHAPE), dtype="uint16", high=1000) + 1
    path = tmp_path / "data.raw"
    stored.tofile(path)
    frames = load("raw", **LOADERS["raw"](path), sync_offset=-3)
    expected = np.concatenate([np.zeros((3, *SIG_SHAPE), dtype=np.uint16), stored])
    for positions in (range(FRAMES), range(1, 5), range(2), np.array([0, 2, 3, 4, 20])):
        out = np.full((len(positions), *SIG_SHAPE), 9, dtype=np.uint16)
        assert_array_equal(frames.read_frames(positions, out, prefer_view=True), expected[positions])


def test_binary_frames_report_a_file_that_ends_early_naming_frames_and_bytes(tmp_path: Path, memory_maps: bool) -> None:
    path = tmp_path / "data.raw"
    np.ones(DATA_SHAPE, dtype=np.uint16).tofile(path)
    frames = binary_frames(path, offset_nbytes=0)
    assert frames.read(range(2)) is not None  # the file is open now
    os.truncate(path, 10 * 198 + 5)
    assert_array_equal(frames.read(range(9, 10)), np.ones((1, *SIG_SHAPE)))
    with pytest.raises(DataSetError, match=r"data\.raw ends at byte 1985, but frames 8-11 need bytes up to 2376"):
        frames.read(range(8, 12), np.empty((4, *SIG_SHAPE), dtype=np.uint16))
    with pytest.raises(DataSetError, match=r"ends at byte 1985, but frames 20-21 need bytes up to .*truncated"):
        frames.read(np.array([1, 20, 21]))


def test_a_file_that_shrinks_between_its_size_check_and_its_mapping_is_a_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another process truncates the file just after this one checked its size (a worker's UDF, say)
    path = tmp_path / "data.raw"
    np.ones(DATA_SHAPE, dtype=np.uint16).tofile(path)
    monkeypatch.setattr(files_module, "_MEMORY_MAPS", [True])
    frames = binary_frames(path)
    real_mmap = files_module.mmap.mmap

    def shrinking_mmap(*args: Any, **kwargs: Any) -> Any:
        os.truncate(path, 198)
        return real_mmap(*args, **kwargs)

    monkeypatch.setattr(files_module.mmap, "mmap", shrinking_mmap)
    with pytest.raises(DataSetError, match=r"data\.raw .*frames 10-19"):
        frames.read(range(10, 20), prefer_view=True)


# ---------------------------------------------------------------- bad paths


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_missing_file_is_a_dataset_error_naming_the_path(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "missing" / "data.bin"
    with pytest.raises(DataSetError, match=rf"{WHAT[kind]}: no such file: .*missing/data\.bin"):
        load(kind, **LOADERS[kind](path))


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_directory_is_a_dataset_error_saying_it_is_no_file(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "scan.h5"
    folder.mkdir()
    with pytest.raises(DataSetError, match=rf"{WHAT[kind]}: .*scan\.h5 is a directory, not a file"):
        load(kind, **LOADERS[kind](folder))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_named_pipe_is_a_dataset_error_and_is_never_opened(tmp_path: Path, kind: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DataSetError, match=rf"{WHAT[kind]}: .*pipe is not a regular file"):
        load(kind, **LOADERS[kind](fifo))


NOBODY = 65534

_AS_NOBODY = """
import os, sys
import h5py  # imported while still root: the interpreter's files may be out of nobody's reach
import gpuudf.datasets
from gpuudf import DataSetError
try:
    os.setgroups([])
    os.setgid({uid})
    os.setuid({uid})
except OSError as exc:
    print("CANNOT-BECOME-NOBODY", exc)
    sys.exit(0)
try:
    gpuudf.datasets.load({kind!r}, **{kwargs!r})
except DataSetError as exc:
    print("DataSetError:", exc)
else:
    print("LOADED as uid", os.getuid())
"""


@pytest.mark.parametrize("kind", list(LOADERS))
def test_a_file_without_read_permission_is_a_dataset_error_saying_so(
    tmp_path: Path, data_file: FileFn, kind: str
) -> None:
    data = np.zeros(DATA_SHAPE, dtype=np.uint16)
    if os.geteuid() != 0:
        path, _ = data_file("npy" if kind == "npy" else "raw", data)
        path.chmod(0)
        with pytest.raises(DataSetError, match=rf"{WHAT[kind]}: no permission to read .*{path.name}"):
            load(kind, **LOADERS[kind](path))
        return
    # root reads any file: load it in a child process that gives up root for user nobody
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        base.chmod(0o755)
        if any(not p.stat().st_mode & stat.S_IXOTH for p in base.parents):
            pytest.skip(f"user nobody cannot reach {base}")
        path = base / ("data.npy" if kind == "npy" else "data.raw")
        if kind == "npy":
            np.save(path, data)
        else:
            data.tofile(path)
        path.chmod(0)
        kwargs = {k: (str(v) if isinstance(v, Path) else v) for k, v in LOADERS[kind](path).items()}
        code = _AS_NOBODY.format(uid=NOBODY, kind=kind, kwargs=kwargs)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=REPO
        )
    assert done.returncode == 0, done.stderr
    if done.stdout.startswith("CANNOT-BECOME-NOBODY"):
        pytest.skip(f"cannot run as user nobody here: {done.stdout.strip()}")
    assert f"DataSetError: {WHAT[kind]}: no permission to read {path}" in done.stdout, done.stdout + done.stderr


# ---------------------------------------------------------------- a file truncated around a run


PARTITION_FAILED = r"partition \d+ \(frames \d+-\d+\) of <\w+ '.*data\.\w+'"


def loader_of(kind: str) -> str:
    """The ``load`` kind of a file kind of ``FILE_KINDS``."""
    return kind.split("-", maxsplit=1)[0]


def truncate_to(path: Path, fraction: float) -> None:
    os.truncate(path, int(path.stat().st_size * fraction))


def check_runs_again(ctx: gpuudf.Context, data_file: FileFn, kind: str, random_counts: CountsFn) -> None:
    """The same Context runs on an intact file after a failed run."""
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file(kind, data, name="intact")
    assert_sum_udfs_match_numpy(ctx, ctx.load(loader_of(kind), **kwargs), data)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_a_file_truncated_between_load_and_run_is_a_dataset_error_naming_the_partition(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, kind: str
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    path, kwargs = data_file(kind, data)
    ds = ctx.load(loader_of(kind), **kwargs, num_partitions=5)
    truncate_to(path, 0.5)
    with pytest.raises(DataSetError, match=PARTITION_FAILED):
        ctx.run_udf(dataset=ds, udf=SumFrameUDF())
    check_runs_again(ctx, data_file, kind, random_counts)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("num_partitions", "keep_frames"),
    [
        # frame 0 is its own partition: the file keeps it, later partitions find theirs gone
        pytest.param(FRAMES, 1, id="later-partitions"),
        # the file goes while the tile of frames 0-11 is still being processed
        pytest.param(3, 0, id="current-tile"),
    ],
)
@pytest.mark.parametrize("kind", ["raw", "npy", "hdf5-chunked", "hdf5-unfiltered"])
def test_a_file_truncated_during_a_run_is_a_dataset_error_naming_a_partition(
    ctx: gpuudf.Context,
    data_file: FileFn,
    rng: np.random.Generator,
    random_counts: CountsFn,
    kind: str,
    num_partitions: int,
    keep_frames: int,
) -> None:
    data = rng.random(DATA_SHAPE, dtype=np.float32)  # compresses badly: gzip chunks fill the file
    path, kwargs = data_file(kind, data)
    ds = ctx.load(loader_of(kind), **kwargs, num_partitions=num_partitions)
    if kind.startswith("hdf5"):
        nbytes = path.stat().st_size // 4
    else:
        nbytes = path.stat().st_size - data.nbytes + keep_frames * ds.frame_nbytes
    udf = TruncatingSumUDF(str(path), at=0, nbytes=nbytes)
    with pytest.raises(DataSetError, match=PARTITION_FAILED):
        ctx.run_udf(dataset=ds, udf=udf)
    assert path.stat().st_size == nbytes
    check_runs_again(ctx, data_file, kind, random_counts)


# ---------------------------------------------------------------- worker processes read, the caller never


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_the_callers_process_never_reads_frames_when_workers_run(
    ctx: gpuudf.Context,
    executor_case: ExecutorCase,
    data_file: FileFn,
    random_counts: CountsFn,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    if not executor_case.in_processes:
        pytest.skip("the inline executor reads in the caller's process by design")
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file(kind, data)

    def no_reading_here(*args: Any, **kwargs: Any) -> Any:
        msg = "frames were read in the caller's process"
        raise AssertionError(msg)

    monkeypatch.setattr(BinaryFrames, "read", no_reading_here)
    monkeypatch.setattr(H5DataSet, "read_frames", no_reading_here)
    monkeypatch.setattr(files_module.BinaryFileDataSet, "read_frames", no_reading_here)
    ds = ctx.load("auto", **kwargs, num_partitions=4)
    assert_sum_udfs_match_numpy(ctx, ds, data, roi=FILE_ROI)
    with pytest.raises(AssertionError, match="caller's process"):
        ds.read_frames(range(1))  # the patch is in place here


# ---------------------------------------------------------------- h5py stays out of raw and npy runs


def test_loading_and_running_raw_and_npy_files_never_imports_h5py(tmp_path: Path) -> None:
    probe = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import gpuudf
        from gpuudf.executors import InlineExecutor
        from gpuudf.udfs import SumUDF
        data = np.ones((4, 5, 6, 7), dtype=np.float32)
        data.tofile({str(tmp_path / "data.raw")!r})
        np.save({str(tmp_path / "data.npy")!r}, data)
        for device in ("cpu", "sim:0"):
            ctx = gpuudf.Context(executor=InlineExecutor(device))
            datasets = [
                ctx.load("raw", path={str(tmp_path / "data.raw")!r}, nav_shape=(4, 5), sig_shape=(6, 7), dtype="f4"),
                ctx.load("npy", path={str(tmp_path / "data.npy")!r}),
                ctx.load("auto", path={str(tmp_path / "data.npy")!r}),
                ctx.load("auto", path={str(tmp_path / "data.raw")!r}, nav_shape=(4, 5), sig_shape=(6, 7), dtype="f4"),
            ]
            for ds in datasets:
                assert ds.read_frames(range(3)).sum() == 3 * 42
                assert ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.sum() == data.sum()
        print("h5py" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


# ---------------------------------------------------------------- LiberTEM's keywords: tileshape and spellings


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("depth", [3, 8])
def test_tileshape_sets_the_depth_of_the_tiles_of_every_file_kind(
    ctx: gpuudf.Context, data_file: FileFn, random_counts: CountsFn, kind: str, depth: int
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file(kind, data)
    ds = ctx.load(loader_of(kind), **kwargs, num_partitions=2, tileshape=(depth, 1, 1))
    assert ds.preferred_tile_depth == depth
    res = ctx.run_udf(dataset=ds, udf=ProbeUDF(method="tile"))
    seen = [entry["data"] for entry in res["view_shapes"].data.reshape(-1)]
    expected = []
    for part in ds.get_partitions():
        for start in range(part.start, part.stop, depth):
            tile = min(depth, part.stop - start)
            expected.extend([(tile, *SIG_SHAPE)] * tile)
    assert seen == expected
    assert_sum_udfs_match_numpy(ctx, ds, data)


@pytest.mark.parametrize("kind", ["raw", "npy", "hdf5", "auto"])
@pytest.mark.parametrize(
    ("tileshape", "message"),
    [
        pytest.param((4, 9), r"tileshape=\(4, 9\) must have 3 axes, \(depth, \*sig\)", id="rank"),
        pytest.param((0, 9, 11), r"tileshape must be a tuple of positive ints, got \(0, 9, 11\)", id="zero"),
        pytest.param((-1, 9, 11), r"tileshape must be a tuple of positive ints", id="negative"),
    ],
)
def test_a_bad_tileshape_is_a_dataset_error_at_load_for_every_file_loader(
    data_file: FileFn, kind: str, tileshape: Any, message: str
) -> None:
    path, kwargs = data_file("hdf5" if kind == "auto" else kind, np.zeros(DATA_SHAPE, dtype=np.uint16))
    with pytest.raises(DataSetError, match=message):
        load(kind, **(kwargs if kind != "auto" else {"path": path}), tileshape=tileshape)


def test_every_libertem_keyword_spelling_of_the_file_loaders_is_taken(
    tmp_path: Path,
    data_file: FileFn,
    random_counts: CountsFn,
    sync_shifted: Callable[[np.ndarray[Any, Any], int], np.ndarray[Any, Any]],
) -> None:
    data = random_counts((FRAMES + 1, *SIG_SHAPE), dtype="uint16", high=1000) + 1
    data.tofile(tmp_path / "data.raw")
    np.save(tmp_path / "data.npy", data[:FRAMES].reshape(DATA_SHAPE))
    data_file("hdf5", data[:FRAMES].reshape(DATA_SHAPE))
    tileshape = (4, *SIG_SHAPE)
    raw = load(
        "raw",
        path=tmp_path / "data.raw",
        nav_shape=NAV_SHAPE,
        sig_shape=SIG_SHAPE,
        dtype="uint16",
        sync_offset=1,
        num_partitions=2,
        tileshape=tileshape,
    )
    common = {"sig_dims": 2, "nav_shape": NAV_SHAPE, "sig_shape": SIG_SHAPE, "sync_offset": 1, "num_partitions": 2}
    npy = load("npy", path=tmp_path / "data.npy", **common, tileshape=tileshape)
    h5 = load("hdf5", path=tmp_path / "data.h5", ds_path="/entry/data", **common, tileshape=tileshape)
    auto = load("auto", path=tmp_path / "data.h5", ds_path="/entry/data", **common, tileshape=tileshape)
    assert_array_equal(raw.read_frames(range(FRAMES)), data[1:])
    for ds in (npy, h5, auto):
        assert_array_equal(ds.read_frames(range(FRAMES)), sync_shifted(data[:FRAMES], 1))
    for ds in (raw, npy, h5, auto):
        assert (ds.shape, ds.sync_offset, ds.preferred_tile_depth, len(ds.get_partitions())) == (DATA_SHAPE, 1, 4, 2)


# ---------------------------------------------------------------- pickling


def open_handles(ds: DataSet) -> list[Any]:
    """Open descriptors and h5py files a dataset holds (none in a fresh copy)."""
    handles = [getattr(ds, "_file", None)]
    binary = getattr(ds, "_binary", None)
    if binary is not None:
        handles.append(binary._fd)
    return [h for h in handles if h is not None]


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_a_pickled_file_dataset_reads_the_same_frames_and_carries_no_open_file(
    data_file: FileFn, random_counts: CountsFn, kind: str, dumps: Callable[[Any], bytes]
) -> None:
    data = random_counts(DATA_SHAPE, dtype="float32")
    _, kwargs = data_file(kind, data)
    ds = load("auto", **kwargs)
    positions = np.array([0, 4, 5, 6, 34])
    assert_array_equal(ds.read_frames(positions), frames_of(data)[positions])
    assert open_handles(ds)  # reading opened the file
    clone = pickle.loads(dumps(ds))
    assert type(clone) is type(ds)
    assert (clone.shape, clone.dtype, clone.path) == (ds.shape, ds.dtype, ds.path)
    assert clone.get_partitions(3) == ds.get_partitions(3)
    assert not open_handles(clone)
    assert_array_equal(clone.read_frames(positions), frames_of(data)[positions])
    assert_array_equal(clone.read_frames(range(FRAMES)), frames_of(data))
    assert_array_equal(ds.read_frames(range(3)), frames_of(data)[:3])  # the original still reads
