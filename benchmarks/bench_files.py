"""File datasets (raw, HDF5) with the default Context, as ratios measured in one run.

One float32 raw file of ``--size-gib`` GiB (frames 256×256, a square-ish 2-D
scan) and two HDF5 copies of it (one contiguous, one chunked by whole frames
along the last nav axis, both uncompressed) are written once into ``--dir``
(reused by later runs when ``--keep`` left them there).  Then, with
``gpuudf.Context()`` (LocalExecutor, one CPU worker per core) warmed by a tiny
run first:

1. warm page cache: ``SumUDF`` on the raw file against single-thread NumPy,
   ``np.memmap(...).sum(axis=0, dtype=float32)`` (float32 is what SumUDF
   accumulates and returns for float32 data); target ≤ 0.8;
2. memory: peak RSS of this process and all its children (sampled every
   20 ms) during a warm raw run, less the idle RSS after the workers started;
   target ≤ 512 MiB;
3. HDF5, warm: ``SumUDF`` on the contiguous and the chunked copy against
   ``SumUDF`` on the raw file, the three interleaved; target ≤ 1.2;
4. cold cache (page cache dropped before every timed run): ``SumUDF`` on the
   raw file against ``dd if=FILE of=/dev/null bs=16M``; target ≤ 1.1.

With ``--libertem-python PATH`` (an interpreter with ``libertem`` installed),
right after section 1 that interpreter runs LiberTEM's ``SumUDF`` on the same
raw file, warm, with LiberTEM's default ``Context()`` (its time, and the
import's, reported on their own), one untimed run then ``--repeats`` timed
ones; reported as LiberTEM's best time over gpuudf's best of section 1, with
no target.  Its result is checked against the NumPy sum too; a failure of
LiberTEM (an error, a crash, a wrong result) is recorded and printed, and the
run goes on.

Each time is taken ``--repeats`` times, the candidates interleaved, with the
garbage collector paused; the minimum counts and every value is kept.  Every
SumUDF result is checked against the NumPy sum; a mismatch stops the run.
Page-cache residency of the files (``mincore``) is recorded before each timed
run, so a "warm" run that was not warm, or a "cold" one that was not cold,
shows in the output.

Run::

    python benchmarks/bench_files.py                 # 4 GiB (3 files: 12 GiB of disk, 12 GiB of page cache)
    python benchmarks/bench_files.py --quick         # 256 MiB, 1 repeat: a smoke test
    python benchmarks/bench_files.py --keep          # keep the files for the next run
    python benchmarks/bench_files.py --dir /data/scratch --label mybox
    python benchmarks/bench_files.py --libertem-python ~/lt-venv/bin/python   # and LiberTEM's SumUDF
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import gc
import json
import math
import mmap
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import psutil

import gpuudf
from gpuudf.udfs import SumUDF

TARGETS = {"warm_raw": 0.8, "cold_raw": 1.1, "hdf5": 1.2, "memory_mib": 512.0}
#: Relative tolerance of SumUDF results against the NumPy float32 sum.
RTOL = 1e-4
#: Below this resident fraction a "warm" run is flagged; above COLD_MAX a "cold" one.
WARM_MIN = 0.99
COLD_MAX = 0.05
#: Interval of the RSS sampler.
SAMPLE_S = 0.02
#: Block size of writes, of the warming read-through and of dd.
IO_BLOCK = 16 * 2**20
DEFAULT_DIR = Path("/var/tmp/gpuudf-bench-files")
FILE_NAMES = {
    "raw": "gpuudf-bench-files.raw",
    "contiguous": "gpuudf-bench-files-contiguous.h5",
    "chunked": "gpuudf-bench-files-chunked.h5",
}
MANIFEST = "gpuudf-bench-files.json"
H5_PATH = "/data"
#: Wall-clock limit of the LiberTEM subprocess (start-up, warm-up and all its timed runs).
LIBERTEM_TIMEOUT_S = 3600
#: Characters of a failed LiberTEM run's output kept in the JSON.
LIBERTEM_ERROR_CHARS = 4000
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# -- the data -------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """What the three files hold."""

    nav_shape: tuple[int, int]
    sig_shape: tuple[int, int]
    chunk_shape: tuple[int, int, int, int]
    dtype: str = "float32"
    seed: int = 0

    @property
    def num_frames(self) -> int:
        return math.prod(self.nav_shape)

    @property
    def frame_nbytes(self) -> int:
        return math.prod(self.sig_shape) * np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.num_frames * self.frame_nbytes


def layout_for(size_bytes: int, sig: int, chunk_frames: int) -> Layout:
    """A 2-D scan of ``sig``×``sig`` float32 frames holding about ``size_bytes``."""
    frame_nbytes = sig * sig * 4
    num_frames = max(1, size_bytes // frame_nbytes)
    nav_x = 2 ** int(math.log2(math.isqrt(num_frames)))
    nav_y = num_frames // nav_x
    chunk = min(chunk_frames, nav_x)
    return Layout(nav_shape=(nav_y, nav_x), sig_shape=(sig, sig), chunk_shape=(1, chunk, sig, sig))


def manifest_of(layout: Layout) -> dict[str, Any]:
    return {"layout": json.loads(json.dumps(asdict(layout))), "files": list(FILE_NAMES.values())}


def files_reusable(directory: Path, layout: Layout) -> bool:
    """Whether ``directory`` holds the files of ``layout`` from an earlier run, complete."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("layout") != manifest_of(layout)["layout"]:
        return False
    sizes = manifest.get("sizes", {})
    for name in FILE_NAMES.values():
        path = directory / name
        if not path.is_file() or path.stat().st_size != sizes.get(name):
            return False
    return (directory / FILE_NAMES["raw"]).stat().st_size == layout.nbytes


def write_files(directory: Path, layout: Layout) -> dict[str, float]:
    """Write the raw file and its HDF5 copies; seconds each took (with a final sync)."""
    paths = {kind: directory / name for kind, name in FILE_NAMES.items()}
    (directory / MANIFEST).unlink(missing_ok=True)
    seconds = {}
    rng = np.random.default_rng(layout.seed)
    block_frames = max(1, IO_BLOCK // layout.frame_nbytes)
    start = time.perf_counter()
    with paths["raw"].open("wb") as file:
        for first in range(0, layout.num_frames, block_frames):
            count = min(block_frames, layout.num_frames - first)
            file.write(rng.random((count, *layout.sig_shape), dtype=np.float32).data)
    os.sync()
    seconds["raw"] = time.perf_counter() - start

    raw = np.memmap(paths["raw"], dtype=layout.dtype, mode="r", shape=(*layout.nav_shape, *layout.sig_shape))
    for kind, chunks in (("contiguous", None), ("chunked", layout.chunk_shape)):
        start = time.perf_counter()
        with h5py.File(paths[kind], "w") as file:
            array = file.create_dataset(H5_PATH, shape=raw.shape, dtype=layout.dtype, chunks=chunks)
            for row in range(layout.nav_shape[0]):
                array[row] = raw[row]
        os.sync()
        seconds[kind] = time.perf_counter() - start
    del raw

    manifest = manifest_of(layout)
    manifest["sizes"] = {path.name: path.stat().st_size for path in paths.values()}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return seconds


def remove_files(directory: Path, *, remove_directory: bool) -> None:
    for name in (*FILE_NAMES.values(), MANIFEST):
        (directory / name).unlink(missing_ok=True)
    if remove_directory:
        with contextlib.suppress(OSError):  # not empty: something else lives there
            directory.rmdir()


# -- the page cache -----------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)


def resident_fraction(path: Path) -> float | None:
    """Fraction of the file's pages in the page cache (``mincore``), or None where unknown."""
    size = path.stat().st_size
    if size == 0:
        return 1.0
    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            pages = np.zeros(-(-size // mmap.PAGESIZE), dtype=np.uint8)
            view = np.frombuffer(mapped, dtype=np.uint8)
            try:
                failed = _LIBC.mincore(
                    ctypes.c_void_p(view.ctypes.data), ctypes.c_size_t(size), ctypes.c_void_p(pages.ctypes.data)
                )
            finally:
                del view
    except (OSError, AttributeError, ValueError):
        return None
    if failed:
        return None
    return float(np.count_nonzero(pages & 1)) / pages.size


def read_through(path: Path) -> float:
    """Read the whole file once (into the page cache); seconds it took."""
    buffer = bytearray(IO_BLOCK)
    start = time.perf_counter()
    with path.open("rb", buffering=0) as file:
        while file.readinto(buffer):
            pass
    return time.perf_counter() - start


def warm_files(paths: Sequence[Path]) -> dict[str, Any]:
    """Read the files into the page cache; time taken and residency after."""
    seconds = {path.name: read_through(path) for path in paths}
    resident = {path.name: resident_fraction(path) for path in paths}
    for name, fraction in resident.items():
        if fraction is not None and fraction < WARM_MIN:
            print(f"warning: only {fraction:.1%} of {name} stays in the page cache (too little RAM?)")
    return {"read_s": seconds, "resident": resident}


class CacheDropper:
    """Evicts files from the page cache: ``drop_caches`` as root, else ``posix_fadvise``."""

    def __init__(self) -> None:
        self.method: str | None = None

    def drop(self, paths: Sequence[Path]) -> str:
        os.sync()
        if self.method in {None, "drop_caches"}:
            try:
                Path("/proc/sys/vm/drop_caches").write_text("3\n")
            except OSError:
                if self.method == "drop_caches":
                    raise
            else:
                self.method = "drop_caches"
                return self.method
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        self.method = "posix_fadvise(DONTNEED)"
        return self.method


# -- measuring ------------------------------------------------------------------


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call with the garbage collector paused, and its value."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        value = call()
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed, value


def summary(times: Sequence[float]) -> dict[str, Any]:
    return {"min_s": min(times), "all_s": list(times)}


def tree_of(root: psutil.Process) -> list[psutil.Process]:
    """``root`` and all its descendants."""
    return [root, *root.children(recursive=True)]


def tree_rss(processes: Sequence[psutil.Process]) -> int:
    """Summed RSS of ``processes`` (those that still live), in bytes."""
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return total


def reset_high_water_marks(processes: Sequence[psutil.Process]) -> bool:
    """Reset each process's VmHWM (``clear_refs`` 5); whether that worked for all."""
    try:
        for process in processes:
            Path(f"/proc/{process.pid}/clear_refs").write_text("5\n")
    except OSError:
        return False
    return True


def high_water_marks(processes: Sequence[psutil.Process]) -> int | None:
    """Summed VmHWM (each process's own peak RSS) of ``processes``, in bytes, or None."""
    total = 0
    try:
        for process in processes:
            status = Path(f"/proc/{process.pid}/status").read_text()
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.MULTILINE)
            if found is None:
                return None
            total += int(found.group(1)) * 1024
    except OSError:
        return None
    return total


class RssSampler:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread.

    The list of descendants is refreshed every ``REFRESH`` samples (finding
    them walks all of ``/proc``, which costs milliseconds).  Besides, each
    process's own peak RSS (VmHWM, reset at the start) is summed at the end:
    an upper bound of the true peak that no sampling interval can miss.
    """

    REFRESH = 10

    def __init__(self, interval_s: float = SAMPLE_S) -> None:
        self.interval_s = interval_s
        self.root = psutil.Process()
        self.processes = tree_of(self.root)
        self.peak = 0
        self.samples = 0
        self.hwm_sum: int | None = None
        self._hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        if self.samples % self.REFRESH == 0:
            self.processes = tree_of(self.root)
        self.peak = max(self.peak, tree_rss(self.processes))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._hwm_reset = reset_high_water_marks(self.processes)
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._hwm_reset:
            self.hwm_sum = high_water_marks(self.processes)


def idle_rss(seconds: float = 0.5) -> int:
    """Median tree RSS over ``seconds`` of idling."""
    processes = tree_of(psutil.Process())
    values = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        values.append(tree_rss(processes))
        time.sleep(SAMPLE_S)
    return int(np.median(values))


def numpy_sum(path: Path, layout: Layout) -> np.ndarray:
    """The reference: single-thread NumPy over a memory map, float32 as SumUDF accumulates."""
    frames = np.memmap(path, dtype=layout.dtype, mode="r", shape=(layout.num_frames, *layout.sig_shape))
    total = np.asarray(frames.sum(axis=0, dtype=np.float32))
    del frames
    return total.reshape(layout.sig_shape)


def dd_read(path: Path) -> None:
    """``dd if=path of=/dev/null bs=16M``; fails unless dd read the whole file."""
    done = subprocess.run(
        ["dd", f"if={path}", "of=/dev/null", f"bs={IO_BLOCK // 2**20}M"], capture_output=True, text=True, check=True
    )
    copied = re.search(r"^(\d+) bytes", done.stderr, flags=re.MULTILINE)
    if copied is None or int(copied.group(1)) != path.stat().st_size:
        msg = f"dd did not read all of {path}: {done.stderr.strip()}"
        raise SystemExit(msg)


class Checker:
    """Checks SumUDF results against the NumPy reference; stops the run on a mismatch."""

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = reference
        self.max_rel_diff = 0.0
        self.checked = 0

    def __call__(self, what: str, result: Any) -> None:
        problem, rel = self.compare(what, np.asarray(result["intensity"].data))
        if problem is not None:
            raise SystemExit(problem)
        assert rel is not None
        self.max_rel_diff = max(self.max_rel_diff, rel)
        self.checked += 1

    def compare(self, what: str, data: np.ndarray) -> tuple[str | None, float | None]:
        """(what is wrong or None, max relative difference or None) of ``data`` against the reference."""
        if data.shape != self.reference.shape or data.dtype != self.reference.dtype:
            expected = f"{self.reference.dtype} {self.reference.shape}"
            return f"{what}: SumUDF returned {data.dtype} {data.shape}, NumPy {expected}", None
        rel = float(np.max(np.abs(data - self.reference) / np.maximum(np.abs(self.reference), 1e-30)))
        if not np.allclose(data, self.reference, rtol=RTOL, atol=0):
            return f"{what}: SumUDF and the NumPy sum disagree (max rel. diff {rel:.2e}, rtol {RTOL})", rel
        return None, rel


class Bench:
    """The context, the datasets and the helpers every measurement shares."""

    def __init__(self, ctx: gpuudf.Context, paths: dict[str, Path], layout: Layout, repeats: int) -> None:
        self.ctx = ctx
        self.paths = paths
        self.layout = layout
        self.repeats = repeats
        self.datasets = {
            "raw": ctx.load(
                "raw", path=paths["raw"], nav_shape=layout.nav_shape, sig_shape=layout.sig_shape, dtype=layout.dtype
            ),
            "contiguous": ctx.load("hdf5", path=paths["contiguous"], ds_path=H5_PATH),
            "chunked": ctx.load("hdf5", path=paths["chunked"], ds_path=H5_PATH),
        }
        if not self.datasets["contiguous"].contiguous:
            msg = f"{paths['contiguous']} is not read as a contiguous array"
            raise SystemExit(msg)
        if self.datasets["chunked"].chunks != layout.chunk_shape:
            msg = f"{paths['chunked']} has chunks {self.datasets['chunked'].chunks}, expected {layout.chunk_shape}"
            raise SystemExit(msg)
        self.check: Checker | None = None

    def run_sum(self, kind: str) -> Any:
        return self.ctx.run_udf(dataset=self.datasets[kind], udf=SumUDF())

    def timed_sum(self, kind: str, what: str) -> float:
        seconds, result = timed(lambda: self.run_sum(kind))
        assert self.check is not None
        self.check(what, result)
        return seconds

    def resident(self, kind: str) -> float | None:
        return resident_fraction(self.paths[kind])


def min_resident(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def max_resident(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def bench_warm_raw(bench: Bench) -> dict[str, Any]:
    """1. SumUDF on the raw file against NumPy over a memory map, both from the page cache."""
    warmed = warm_files([bench.paths["raw"]])
    reference_s, reference = timed(lambda: numpy_sum(bench.paths["raw"], bench.layout))
    bench.check = Checker(reference)
    first_s = bench.timed_sum("raw", "warm raw, first run")  # also warms the workers' file path
    numpy_times, udf_times, resident = [], [], []
    for repeat in range(bench.repeats):
        resident.append(bench.resident("raw"))
        seconds, total = timed(lambda: numpy_sum(bench.paths["raw"], bench.layout))
        if not np.array_equal(total, reference):
            msg = "the NumPy reference changed between calls"
            raise SystemExit(msg)
        numpy_times.append(seconds)
        resident.append(bench.resident("raw"))
        udf_times.append(bench.timed_sum("raw", f"warm raw, repeat {repeat}"))
    ratio = min(udf_times) / min(numpy_times)
    return {
        "warming": warmed,
        "untimed_first_numpy_s": reference_s,
        "untimed_first_gpuudf_s": first_s,
        "gpuudf": summary(udf_times),
        "numpy_memmap": summary(numpy_times),
        "gpuudf_gib_per_s": bench.layout.nbytes / 2**30 / min(udf_times),
        "numpy_gib_per_s": bench.layout.nbytes / 2**30 / min(numpy_times),
        "min_resident_before_runs": min_resident(resident),
        "ratio": ratio,
        "target": TARGETS["warm_raw"],
        "met": ratio <= TARGETS["warm_raw"],
    }


#: Run by ``--libertem-python`` as ``PYTHON SCRIPT PARAMS_JSON OUT_DIR``; writes figures.json and
#: intensity.npy (the last run's result) into OUT_DIR.  The ``__main__`` guard matters: LiberTEM's
#: dask workers may import the script again.
LIBERTEM_SCRIPT = textwrap.dedent(
    """
    import gc
    import json
    import sys
    import time
    from pathlib import Path


    def timed(call):
        gc.disable()
        try:
            start = time.perf_counter()
            value = call()
            return time.perf_counter() - start, value
        finally:
            gc.enable()


    def main():
        params = json.loads(sys.argv[1])
        out_dir = Path(sys.argv[2])
        figures = {}
        start = time.perf_counter()
        import numpy as np
        import libertem
        from libertem.api import Context
        from libertem.udf.sum import SumUDF
        figures["import_s"] = time.perf_counter() - start
        figures["version"] = libertem.__version__
        figures["numpy"] = np.__version__
        figures["context_s"], ctx = timed(Context)
        try:
            figures["executor"] = type(ctx.executor).__name__
            try:
                workers = ctx.executor.get_available_workers()
                figures["cpu_workers"] = len(workers.has_cpu())
                figures["cuda_workers"] = len(workers.has_cuda())
            except Exception:  # only for the record
                figures["cpu_workers"] = figures["cuda_workers"] = None
            figures["load_s"], ds = timed(
                lambda: ctx.load(
                    "raw",
                    path=params["path"],
                    nav_shape=tuple(params["nav_shape"]),
                    sig_shape=tuple(params["sig_shape"]),
                    dtype=params["dtype"],
                )
            )

            def run():
                return ctx.run_udf(dataset=ds, udf=SumUDF())

            figures["untimed_first_s"], result = timed(run)
            times = []
            for _ in range(params["repeats"]):
                seconds, result = timed(run)
                times.append(seconds)
            figures["times_s"] = times
            np.save(out_dir / "intensity.npy", np.asarray(result["intensity"].data))
        finally:
            ctx.close()
        (out_dir / "figures.json").write_text(json.dumps(figures))


    if __name__ == "__main__":
        main()
    """
)


def libertem_version(python: str) -> str:
    """LiberTEM's version in ``python``; SystemExit where it does not import."""
    try:
        done = subprocess.run(
            [python, "-c", "import libertem.api, libertem.udf.sum; print(libertem.__version__)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        msg = f"--libertem-python {python}: {error}"
        raise SystemExit(msg) from error
    if done.returncode != 0:
        msg = f"--libertem-python {python}: LiberTEM does not import: {done.stderr.strip()[-LIBERTEM_ERROR_CHARS:]}"
        raise SystemExit(msg)
    return done.stdout.strip().splitlines()[-1]


def exit_text(returncode: int) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
    return f"killed by {name}{hint}"


def bench_libertem(bench: Bench, python: str, gpuudf_min_s: float) -> dict[str, Any]:
    """LiberTEM's SumUDF on the warm raw file, in ``python``, against gpuudf's best of section 1.

    Never raises for LiberTEM's sake: what went wrong goes into ``"error"``.
    """
    path = bench.paths["raw"]
    warmed = warm_files([path])
    out: dict[str, Any] = {"python": python, "warming": warmed, "resident_before": bench.resident("raw")}
    params = {
        "path": str(path),
        "nav_shape": list(bench.layout.nav_shape),
        "sig_shape": list(bench.layout.sig_shape),
        "dtype": bench.layout.dtype,
        "repeats": bench.repeats,
    }
    print(f"LiberTEM SumUDF on the warm raw file ({python}) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpuudf-bench-libertem-") as temp:
        script = Path(temp) / "bench_files_libertem.py"
        script.write_text(LIBERTEM_SCRIPT)
        try:
            done = subprocess.run(
                [python, str(script), json.dumps(params), temp],
                capture_output=True,
                text=True,
                check=False,
                timeout=LIBERTEM_TIMEOUT_S,
                cwd=temp,
                env={**os.environ, "DASK_TEMPORARY_DIRECTORY": temp},  # dask's scratch space goes with it
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            out["error"] = str(error)
            return out
        finally:
            out["resident_after"] = bench.resident("raw")
        figures_path, result_path = Path(temp) / "figures.json", Path(temp) / "intensity.npy"
        if done.returncode != 0 or not figures_path.exists() or not result_path.exists():
            output = (done.stderr.strip() + "\n" + done.stdout.strip()).strip()
            out["error"] = f"{exit_text(done.returncode)}: {output[-LIBERTEM_ERROR_CHARS:]}"
            return out
        out.update(json.loads(figures_path.read_text()))
        data = np.load(result_path)
    assert bench.check is not None
    problem, out["max_rel_diff"] = bench.check.compare("LiberTEM warm raw", data)
    if problem is not None:
        out["error"] = problem
        return out
    out["min_s"] = min(out["times_s"])
    out["gib_per_s"] = bench.layout.nbytes / 2**30 / out["min_s"]
    out["gpuudf_min_s"] = gpuudf_min_s
    out["ratio"] = out["min_s"] / gpuudf_min_s
    return out


def bench_memory(bench: Bench, baseline: int) -> dict[str, Any]:
    """4. Peak RSS of the process tree during warm raw runs, over the idle baseline."""
    warm_files([bench.paths["raw"]])
    idle_after_runs = idle_rss()
    peaks, samples, hwm_sums = [], [], []
    for repeat in range(bench.repeats):
        with RssSampler() as sampler:
            bench.timed_sum("raw", f"memory, repeat {repeat}")
        peaks.append(sampler.peak)
        samples.append(sampler.samples)
        hwm_sums.append(sampler.hwm_sum)
    increase_mib = (max(peaks) - baseline) / 2**20
    known_hwm = [h for h in hwm_sums if h is not None]
    return {
        "baseline_idle_after_start_bytes": baseline,
        "idle_after_runs_bytes": idle_after_runs,
        "peak_bytes": peaks,
        "samples": samples,
        "sample_interval_s": SAMPLE_S,
        "summed_per_process_peaks_bytes": hwm_sums,
        "summed_per_process_peaks_increase_mib": (max(known_hwm) - baseline) / 2**20 if known_hwm else None,
        "increase_mib": increase_mib,
        "target_mib": TARGETS["memory_mib"],
        "met": increase_mib <= TARGETS["memory_mib"],
    }


def bench_hdf5(bench: Bench) -> dict[str, Any]:
    """3. SumUDF on the two HDF5 copies against SumUDF on the raw file, all warm, interleaved."""
    kinds = ("raw", "contiguous", "chunked")
    warmed = warm_files([bench.paths[k] for k in kinds])
    first_s = {k: bench.timed_sum(k, f"hdf5 section, {k}, first run") for k in kinds[1:]}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    resident: dict[str, list[float | None]] = {k: [] for k in kinds}
    for repeat in range(bench.repeats):
        for kind in kinds:
            resident[kind].append(bench.resident(kind))
            times[kind].append(bench.timed_sum(kind, f"hdf5 section, {kind}, repeat {repeat}"))
    raw_min = min(times["raw"])
    out: dict[str, Any] = {"warming": warmed, "raw": summary(times["raw"])}
    for kind in kinds[1:]:
        ratio = min(times[kind]) / raw_min
        out[kind] = {
            **summary(times[kind]),
            "untimed_first_s": first_s[kind],
            "gib_per_s": bench.layout.nbytes / 2**30 / min(times[kind]),
            "ratio": ratio,
            "target": TARGETS["hdf5"],
            "met": ratio <= TARGETS["hdf5"],
        }
    out["min_resident_before_runs"] = {k: min_resident(v) for k, v in resident.items()}
    return out


def bench_cold_raw(bench: Bench) -> dict[str, Any]:
    """2. SumUDF on the raw file against dd, the page cache dropped before each run."""
    dropper = CacheDropper()
    path = bench.paths["raw"]
    dd_times, udf_times, resident = [], [], []
    for repeat in range(bench.repeats):
        dropper.drop([path])
        resident.append(bench.resident("raw"))
        dd_times.append(timed(lambda: dd_read(path))[0])
        dropper.drop([path])
        resident.append(bench.resident("raw"))
        udf_times.append(bench.timed_sum("raw", f"cold raw, repeat {repeat}"))
    worst = max_resident(resident)
    if worst is not None and worst > COLD_MAX:
        print(f"warning: {worst:.1%} of the raw file was still cached before a cold run")
    ratio = min(udf_times) / min(dd_times)
    return {
        "drop_method": dropper.method,
        "max_resident_before_runs": worst,
        "gpuudf": summary(udf_times),
        "dd": summary(dd_times),
        "dd_command": f"dd if={path} of=/dev/null bs={IO_BLOCK // 2**20}M",
        "gpuudf_gib_per_s": bench.layout.nbytes / 2**30 / min(udf_times),
        "dd_gib_per_s": bench.layout.nbytes / 2**30 / min(dd_times),
        "ratio": ratio,
        "target": TARGETS["cold_raw"],
        "met": ratio <= TARGETS["cold_raw"],
    }


# -- the machine ------------------------------------------------------------------


def mount_of(path: Path) -> dict[str, str]:
    """Device, mount point and filesystem type of the mount holding ``path``."""
    best = {"device": "?", "mount_point": "/", "filesystem": "?"}
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount_point, filesystem, *_ = line.split()
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best["mount_point"]):
                best = {"device": device, "mount_point": mount_point, "filesystem": filesystem}
    return best


def disk_info(path: Path) -> dict[str, Any]:
    """The filesystem and, where sysfs tells, the block device under ``path``."""
    info: dict[str, Any] = mount_of(path)
    with contextlib.suppress(OSError):
        dev = path.stat().st_dev
        block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
        if (block / "partition").exists():
            block = block.parent
        info["block_device"] = block.name
        queue = block / "queue"
        if (queue / "rotational").exists():
            info["rotational"] = (queue / "rotational").read_text().strip() == "1"
        model = block / "device" / "model"
        if model.exists():
            info["model"] = model.read_text().strip()
    return info


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpuudf_commit() -> str | None:
    """The commit of the gpuudf checkout imported, ``+dirty`` when gpuudf/ has changes; None outside git."""
    package = Path(gpuudf.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if changes else "")


def machine_info(directory: Path, ctx: gpuudf.Context) -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "ram_bytes": psutil.virtual_memory().total,
        "disk": disk_info(directory),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "psutil": psutil.__version__,
        "gpuudf": gpuudf.__version__,
        "gpuudf_commit": gpuudf_commit(),
        "executor": repr(ctx.executor),
    }


# -- the report -----------------------------------------------------------------


def report_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, str, str, str, str]]:
    """(measurement, value, reference, ratio, target, met) rows of the table."""

    def yes(met: bool) -> str:
        return "yes" if met else "NO"

    warm = figures["warm_raw"]
    yield (
        "warm raw: SumUDF / numpy memmap",
        f"{warm['gpuudf']['min_s']:.3f} s",
        f"{warm['numpy_memmap']['min_s']:.3f} s",
        f"{warm['ratio']:.3f}",
        f"<= {warm['target']}",
        yes(warm["met"]),
    )
    libertem = figures.get("libertem")
    if libertem is not None:
        failed = "error" in libertem
        yield (
            "warm raw: LiberTEM SumUDF / gpuudf SumUDF",
            "failed" if failed else f"{libertem['min_s']:.3f} s",
            f"{warm['gpuudf']['min_s']:.3f} s",
            "-" if failed else f"{libertem['ratio']:.3f}",
            "-",
            "-",
        )
    cold = figures["cold_raw"]
    yield (
        "cold raw: SumUDF / dd",
        f"{cold['gpuudf']['min_s']:.3f} s",
        f"{cold['dd']['min_s']:.3f} s",
        f"{cold['ratio']:.3f}",
        f"<= {cold['target']}",
        yes(cold["met"]),
    )
    hdf5 = figures["hdf5"]
    for kind in ("contiguous", "chunked"):
        yield (
            f"warm HDF5 {kind}: SumUDF / raw",
            f"{hdf5[kind]['min_s']:.3f} s",
            f"{hdf5['raw']['min_s']:.3f} s",
            f"{hdf5[kind]['ratio']:.3f}",
            f"<= {hdf5[kind]['target']}",
            yes(hdf5[kind]["met"]),
        )
    memory = figures["memory"]
    yield (
        "memory: peak RSS - idle (tree)",
        f"{memory['increase_mib']:.0f} MiB",
        f"{memory['baseline_idle_after_start_bytes'] / 2**20:.0f} MiB idle",
        "-",
        f"<= {memory['target_mib']:.0f} MiB",
        yes(memory["met"]),
    )
    context = figures["context"]
    yield ("first run (worker start-up)", f"{context['first_tiny_run_s']:.3f} s", "-", "-", "-", "-")


def print_report(figures: dict[str, Any]) -> None:
    header = ("measurement", "value", "reference", "ratio", "target", "met?")
    rows = [header, *report_rows(figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
    print()
    warm, cold, hdf5, memory = figures["warm_raw"], figures["cold_raw"], figures["hdf5"], figures["memory"]

    def values(times: Sequence[float]) -> str:
        return ", ".join(f"{t:.3f}" for t in times)

    print(
        f"warm raw:  SumUDF {warm['gpuudf_gib_per_s']:.2f} GiB/s [{values(warm['gpuudf']['all_s'])}] s, "
        f"numpy {warm['numpy_gib_per_s']:.2f} GiB/s [{values(warm['numpy_memmap']['all_s'])}] s, "
        f"resident >= {fraction_text(warm['min_resident_before_runs'])}"
    )
    libertem = figures.get("libertem")
    if libertem is not None and "error" in libertem:
        print(f"LiberTEM:  failed: {libertem['error']}")
    elif libertem is not None:
        print(
            f"LiberTEM:  {libertem['version']}, {libertem['executor']} with {libertem['cpu_workers']} CPU and "
            f"{libertem['cuda_workers']} CUDA workers, "
            f"SumUDF {libertem['gib_per_s']:.2f} GiB/s [{values(libertem['times_s'])}] s, "
            f"first run {libertem['untimed_first_s']:.3f} s, import {libertem['import_s']:.3f} s, "
            f"Context() {libertem['context_s']:.3f} s, load {libertem['load_s']:.3f} s, "
            f"resident {fraction_text(libertem['resident_before'])} before, "
            f"{fraction_text(libertem['resident_after'])} after; "
            f"result max rel. diff {libertem['max_rel_diff']:.1e}"
        )
    print(
        f"cold raw:  SumUDF {cold['gpuudf_gib_per_s']:.2f} GiB/s [{values(cold['gpuudf']['all_s'])}] s, "
        f"dd {cold['dd_gib_per_s']:.2f} GiB/s [{values(cold['dd']['all_s'])}] s, "
        f"cache dropped by {cold['drop_method']}, resident <= {fraction_text(cold['max_resident_before_runs'])}"
    )
    resident = ", ".join(f"{k} {fraction_text(v)}" for k, v in hdf5["min_resident_before_runs"].items())
    print(
        f"hdf5 warm: raw [{values(hdf5['raw']['all_s'])}] s, contiguous [{values(hdf5['contiguous']['all_s'])}] s, "
        f"chunked [{values(hdf5['chunked']['all_s'])}] s; resident >= {resident}"
    )
    print(
        f"memory:    idle after start {memory['baseline_idle_after_start_bytes'] / 2**20:.0f} MiB, "
        f"idle after runs {memory['idle_after_runs_bytes'] / 2**20:.0f} MiB, "
        f"peaks [{', '.join(f'{p / 2**20:.0f}' for p in memory['peak_bytes'])}] MiB "
        f"({', '.join(map(str, memory['samples']))} samples); "
        f"summed per-process peaks (VmHWM) - idle: {mib_text(memory['summed_per_process_peaks_increase_mib'])}"
    )
    print(
        f"results:   {figures['checked_results']} SumUDF results checked against NumPy, "
        f"max rel. diff {figures['max_rel_diff']:.1e} (rtol {RTOL})"
    )


def fraction_text(value: float | None) -> str:
    return "?" if value is None else f"{value:.1%}"


def mib_text(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} MiB"


# -- main -----------------------------------------------------------------------


def prepare_directory(directory: Path, needed: int) -> bool:
    """Create ``directory`` if needed (True when this run made it); refuse tmpfs and a full disk."""
    made = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    filesystem = mount_of(directory)["filesystem"]
    if filesystem in {"tmpfs", "ramfs"}:
        if made:
            directory.rmdir()
        msg = f"{directory} is on {filesystem}: files there never leave memory; give --dir on a disk"
        raise SystemExit(msg)
    free = shutil.disk_usage(directory).free
    if free < needed:
        if made:
            directory.rmdir()
        msg = f"{directory} has {free / 2**30:.1f} GiB free, the files need {needed / 2**30:.1f} GiB"
        raise SystemExit(msg)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size-gib", type=float, default=4.0, help="size of the raw file (default 4)")
    parser.add_argument("--sig", type=int, default=256, help="frames are SIG x SIG float32 (default 256)")
    parser.add_argument("--chunk-frames", type=int, default=16, help="frames per HDF5 chunk (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per candidate (default 3)")
    parser.add_argument("--quick", action="store_true", help="256 MiB, 1 repeat: a smoke test")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"where the files go (default {DEFAULT_DIR})")
    parser.add_argument("--keep", action="store_true", help="leave the files for the next run (reused if they fit)")
    parser.add_argument("--cpus", type=int, default=None, help="CPU workers (default: gpuudf.Context()'s own)")
    parser.add_argument("--label", default=socket.gethostname(), help="names the JSON file (default: host name)")
    parser.add_argument(
        "--libertem-python",
        metavar="PATH",
        help="an interpreter with libertem installed: also time LiberTEM's SumUDF on the warm raw file",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="JSON output (default results/DATE-LABEL-files.json; -runN instead of overwriting)",
    )
    parser.add_argument("--no-json", action="store_true", help="write no JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_gib, args.repeats = 0.25, 1
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.libertem_python:
        # before writing any file: a wrong interpreter is a mistake of the command line
        print(f"LiberTEM {libertem_version(args.libertem_python)} in {args.libertem_python}")

    layout = layout_for(int(args.size_gib * 2**30), args.sig, args.chunk_frames)
    directory = args.dir.expanduser().absolute()
    paths = {kind: directory / name for kind, name in FILE_NAMES.items()}
    reuse = directory.exists() and files_reusable(directory, layout)
    if directory.exists() and not reuse:
        remove_files(directory, remove_directory=False)  # files of another size: their space counts as free
    made_directory = prepare_directory(directory, 0 if reuse else 3 * layout.nbytes + 2**30)
    date = dt.datetime.now(tz=dt.UTC)
    figures: dict[str, Any] = {
        "benchmark": "files",
        "date": date.isoformat(timespec="seconds"),
        "label": args.label,
        "quick": args.quick,
        "repeats": args.repeats,
    }
    cache_need = 3 * layout.nbytes
    available = psutil.virtual_memory().available
    if cache_need > 0.8 * available:
        print(
            f"warning: the HDF5 section needs {cache_need / 2**30:.1f} GiB of page cache, "
            f"{available / 2**30:.1f} GiB of memory is available"
        )
    ctx = None
    try:
        if reuse:
            print(f"reusing the files in {directory}")
            written: dict[str, float] = {}
        else:
            print(f"writing 3 x {layout.nbytes / 2**30:.2f} GiB into {directory} ...", flush=True)
            written = write_files(directory, layout)
            print("  " + ", ".join(f"{k} {s:.1f} s" for k, s in written.items()))
            # pages cached by the writer are laid out unlike pages read back (folio sizes), and
            # mapping them measured up to 2x slower: every file starts from a read, as a user's would
            figures["dropped_after_writing"] = CacheDropper().drop(list(paths.values()))
        figures["data"] = {
            **asdict(layout),
            "nbytes": layout.nbytes,
            "directory": str(directory),
            "reused": reuse,
            "write_s": written,
            "file_bytes": {kind: path.stat().st_size for kind, path in paths.items()},
        }

        ctx = gpuudf.Context() if args.cpus is None else gpuudf.Context.make_with("local", cpus=args.cpus)
        tiny = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
        first_s = timed(lambda: ctx.run_udf(dataset=tiny, udf=SumUDF()))[0]
        tiny_s = min(timed(lambda: ctx.run_udf(dataset=tiny, udf=SumUDF()))[0] for _ in range(3))
        baseline = idle_rss()
        bench = Bench(ctx, paths, layout, args.repeats)
        figures["machine"] = machine_info(directory, ctx)
        figures["context"] = {
            "first_tiny_run_s": first_s,
            "later_tiny_run_s": tiny_s,
            "raw_partitions": len(bench.datasets["raw"].get_partitions(min_partitions=ctx.executor.num_workers())),
        }
        print(
            f"{ctx.executor!r}; data nav {layout.nav_shape} sig {layout.sig_shape} float32, "
            f"{layout.nbytes / 2**30:.2f} GiB, HDF5 chunks {layout.chunk_shape}; best of {args.repeats}",
            flush=True,
        )

        figures["warm_raw"] = bench_warm_raw(bench)
        if args.libertem_python:
            figures["libertem"] = bench_libertem(bench, args.libertem_python, figures["warm_raw"]["gpuudf"]["min_s"])
            if "error" in figures["libertem"]:
                print(f"LiberTEM failed: {figures['libertem']['error']}", flush=True)
        figures["memory"] = bench_memory(bench, baseline)
        figures["hdf5"] = bench_hdf5(bench)
        figures["cold_raw"] = bench_cold_raw(bench)
        assert bench.check is not None
        figures["checked_results"] = bench.check.checked
        figures["max_rel_diff"] = bench.check.max_rel_diff
    finally:
        if ctx is not None:
            ctx.close()
        if args.keep:
            print(f"kept the files in {directory}")
        else:
            remove_files(directory, remove_directory=made_directory or directory == DEFAULT_DIR)

    print()
    print_report(figures)
    if not args.no_json:
        suffix = "-quick" if args.quick else ""
        path = args.json or RESULTS_DIR / f"{date:%Y-%m-%d}-{args.label}-files{suffix}.json"
        run = 1
        while args.json is None and path.exists():  # never overwrite an earlier run of the day
            run += 1
            path = RESULTS_DIR / f"{date:%Y-%m-%d}-{args.label}-files{suffix}-run{run}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
