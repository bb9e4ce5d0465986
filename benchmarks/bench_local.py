"""The default ``gpuudf.Context()`` (LocalExecutor) against NumPy and against LiberTEM, in one run.

One float32 in-memory dataset (``--size-gib``, default 2 GiB: sig 256×256,
nav ``(rows, 64)``, i.e. 128×64; ``--nav Y X`` and ``--sig`` set the shape
instead) on the default ``gpuudf.Context()`` (one CPU worker per core).  Per
case, each of ``--repeats`` repeats (default 3) times the UDF and its
references back to back, the order rotated from one repeat to the next, the
garbage collector paused; every ratio is a UDF time over a reference time of
the same repeat, and its min–max over the repeats is reported:

=========  =========================================  ==========================================================
case       UDF                                        references (same process, same array)
=========  =========================================  ==========================================================
sum        ``SumUDF``                                 ``np.sum(data, axis=(0, 1))``; two ``threading.Thread``\\ s,
                                                      each ``half.sum(axis=0)`` on half the frames as a
                                                      ``(frames, pixels)`` view, added (the bandwidth limit)
sumsig     ``SumSigUDF``                              ``np.sum(data, axis=(2, 3))``; two threads, each summing
                                                      its half of the frames over the sig axes
masks1     ``process_tile``: ``tile.reshape(len(      ``flat @ masks.T`` on the whole ``(frames, pixels)`` view
           tile), -1) @ masks.T``, 1 random mask
masks16    the same with 16 random float32 masks      ``flat @ masks.T``
frame_sum  ``process_frame`` writing ``np.sum(frame)``  the Python loop ``out[i] = np.sum(frames[i])``
=========  =========================================  ==========================================================

This process sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` to 1 before NumPy loads, so the single-thread references
are single-threaded also for the mask products (as in the issue's figures);
LiberTEM's interpreter inherits them (gpuudf's CPU workers set 1 anyway).
The masks are a UDF parameter, the result a nav buffer with
``extra_shape=(n_masks,)``.  Each UDF result is checked against its
reference (float32 tolerance) before it is timed.

Start-up figures, as before: ``import gpuudf; Context()`` in a fresh
interpreter (≤ 0.15 s), the first tiny run (4×4×8×8) in a fresh interpreter
(≤ 1.5 s), later tiny runs (≤ 10 ms).

With ``--libertem-python PATH`` (an interpreter with LiberTEM 0.16), after
gpuudf's Context is closed, that interpreter makes the same data the same
way and runs the same five workloads (LiberTEM's ``SumUDF``, ``SumSigUDF``
from ``libertem.udf.sumsigudf``, the same masks UDF and the per-frame sum
defined in its script) on every executor of ``--libertem-executors``
(default ``threads inline dask``: ``Context.make_with("threads")``,
``Context.make_with("inline")``, ``Context()``), each repeat interleaved
with the single-thread NumPy reference timed in that interpreter, so each
LiberTEM ratio is against a reference of its own process.  LiberTEM's best
executor for a case is the one with the lowest ratio in any repeat.  If that
interpreter dies (out of memory, say), what it had measured is kept and the
failure recorded.

Verdicts (the issue's targets), each met only if it holds in every repeat:
for ``sum``, ``sumsig``, ``masks1`` and ``masks16`` every repeat's ratio
(to single-thread NumPy) at or below the lowest ratio of LiberTEM's best
executor; for ``sum`` and ``sumsig`` every repeat within 1.10× of the
two-thread reference; for ``frame_sum`` every repeat below the lowest
ratio of LiberTEM's best executor.

Run::

    python benchmarks/bench_local.py                                  # 2 GiB, 3 repeats
    python benchmarks/bench_local.py --size-gib 0.1 --repeats 1       # a smoke test
    python benchmarks/bench_local.py --libertem-python lt-venv/bin/python --json out.json

with nothing else busy on the machine.
"""

from __future__ import annotations

import os

# single-thread BLAS for the NumPy references (the issue's figures); set before NumPy loads its BLAS
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402 - after the BLAS thread count
import gc  # noqa: E402 - after the BLAS thread count
import json  # noqa: E402 - after the BLAS thread count
import subprocess  # noqa: E402 - after the BLAS thread count
import sys  # noqa: E402 - after the BLAS thread count
import tempfile  # noqa: E402 - after the BLAS thread count
import textwrap  # noqa: E402 - after the BLAS thread count
import threading  # noqa: E402 - after the BLAS thread count
import time  # noqa: E402 - after the BLAS thread count
from collections.abc import Callable  # noqa: E402 - after the BLAS thread count
from pathlib import Path  # noqa: E402 - after the BLAS thread count
from typing import Any  # noqa: E402 - after the BLAS thread count

import numpy as np  # noqa: E402 - after the BLAS thread count
from timing import wall_s  # noqa: E402 - benchmarks/timing.py, beside this script

import gpuudf  # noqa: E402 - after the BLAS thread count
from gpuudf import UDF  # noqa: E402 - after the BLAS thread count
from gpuudf.udfs import SumSigUDF, SumUDF  # noqa: E402 - after the BLAS thread count

CASES = ("sum", "sumsig", "masks1", "masks16", "frame_sum")
VECTORISED = ("sum", "sumsig", "masks1", "masks16")
N_MASKS = {"masks1": 1, "masks16": 16}
TWO_THREAD_TARGET = 1.10
STARTUP_TARGETS = {"import_and_context_s": 0.15, "first_tiny_run_fresh_process_s": 1.5, "tiny_run_s": 0.01}
LIBERTEM_EXECUTORS = ["threads", "inline", "dask"]
LIBERTEM_TIMEOUT_S = 3600
FRAMES_PER_ROW = 64
#: float32 results of different summation orders: relative to the largest magnitude
FLOAT32_RTOL = 1e-4


class FrameSumUDF(UDF):
    """``np.sum`` of each frame, one call per frame."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"total": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        self.results.total[:] = self.xp.sum(frame)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


class MasksUDF(UDF):
    """``tile.reshape(len(tile), -1) @ masks.T``: ``masks`` (a parameter) is ``(n_masks, pixels)``."""

    def __init__(self, masks: np.ndarray) -> None:
        super().__init__(masks=masks)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"intensity": self.buffer(kind="nav", extra_shape=(len(self.params.masks),))}

    def process_tile(self, tile: Any) -> None:
        self.results.intensity[:] = tile.reshape(len(tile), -1) @ self.params.masks.T


def make_data(nav_shape: tuple[int, int], sig: int) -> np.ndarray:
    """Random float32 frames, generated as one block of 64 frames repeated (fast and reproducible)."""
    block = np.random.default_rng(0).random((FRAMES_PER_ROW, sig, sig), dtype=np.float32)
    frames = nav_shape[0] * nav_shape[1]
    reps = -(-frames // FRAMES_PER_ROW)
    return np.tile(block, (reps, 1, 1))[:frames].reshape(*nav_shape, sig, sig)


def make_masks(n_masks: int, sig: int) -> np.ndarray:
    return np.random.default_rng(n_masks).random((n_masks, sig * sig), dtype=np.float32)


def nav_for(size_gib: float, sig: int) -> tuple[int, int]:
    frames = max(FRAMES_PER_ROW, int(size_gib * 2**30) // (sig * sig * 4))
    return frames // FRAMES_PER_ROW, FRAMES_PER_ROW


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    """Best wall time of ``repeats`` runs after one warm-up, in seconds."""
    run()
    return min(wall_s(run) for _ in range(repeats))


def assert_close(what: str, actual: Any, expected: Any, rtol: float = FLOAT32_RTOL) -> float:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        msg = f"{what}: shape {actual.shape}, expected {expected.shape}"
        raise AssertionError(msg)
    scale = float(np.max(np.abs(expected))) or 1.0
    diff = float(np.max(np.abs(actual.astype(np.float64) - expected)) / scale)
    if not diff <= rtol:
        msg = f"{what}: largest difference {diff:.2e} of the largest value, allowed {rtol:.0e}"
        raise AssertionError(msg)
    return diff


def in_two_threads(work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def references(data: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, dict[str, Callable[[], Any]]]:
    """Per case, its references by name (``numpy1``: single thread; ``numpy2``: two threads), each giving the result."""
    nav_shape, sig_shape = data.shape[:2], data.shape[2:]
    flat = data.reshape(-1, sig_shape[0] * sig_shape[1])
    halves = (flat[: len(flat) // 2], flat[len(flat) // 2 :])

    def sum2() -> np.ndarray:
        parts: list[Any] = [None, None]

        def work(i: int) -> None:
            parts[i] = halves[i].sum(axis=0)

        in_two_threads(work)
        return (parts[0] + parts[1]).reshape(sig_shape)

    def sumsig2() -> np.ndarray:
        out = np.empty(len(flat), dtype=data.dtype)
        outs = (out[: len(halves[0])], out[len(halves[0]) :])

        def work(i: int) -> None:
            np.sum(halves[i], axis=1, out=outs[i])

        in_two_threads(work)
        return out.reshape(nav_shape)

    def loop_sum() -> np.ndarray:
        frames = data.reshape(-1, *sig_shape)
        out = np.empty(len(frames), dtype=np.float32)
        for i in range(len(frames)):
            out[i] = np.sum(frames[i])
        return out.reshape(nav_shape)

    refs: dict[str, dict[str, Callable[[], Any]]] = {
        "sum": {"numpy1": lambda: np.sum(data, axis=(0, 1)), "numpy2": sum2},
        "sumsig": {"numpy1": lambda: np.sum(data, axis=(2, 3)), "numpy2": sumsig2},
        "frame_sum": {"numpy1": loop_sum},
    }
    for case, stack in masks.items():
        refs[case] = {"numpy1": lambda stack=stack: (flat @ stack.T).reshape(*nav_shape, len(stack))}
    return refs


def make_udf(case: str, masks: dict[str, np.ndarray]) -> tuple[UDF, str]:
    """The UDF of ``case`` and its result buffer."""
    if case == "sum":
        return SumUDF(), "intensity"
    if case == "sumsig":
        return SumSigUDF(), "intensity"
    if case in masks:
        return MasksUDF(masks=masks[case]), "intensity"
    return FrameSumUDF(), "total"


def bench_gpuudf(ctx: gpuudf.Context, data: np.ndarray, masks: dict[str, np.ndarray], repeats: int) -> dict[str, Any]:
    ds = ctx.load("memory", data=data)
    refs = references(data, masks)
    out: dict[str, Any] = {}
    for case in CASES:
        udf, buffer = make_udf(case, masks)
        expected = refs[case]["numpy1"]()
        diffs = {"gpuudf": assert_close(case, ctx.run_udf(dataset=ds, udf=udf)[buffer].data, expected)}
        for name, ref in refs[case].items():
            if name != "numpy1":
                diffs[name] = assert_close(f"{case} {name}", ref(), expected)
        runs: dict[str, Callable[[], Any]] = {"gpuudf": lambda udf=udf: ctx.run_udf(dataset=ds, udf=udf)}
        runs.update(refs[case])
        times: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for repeat in range(repeats):
            shift = repeat % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(wall_s(runs[name]))
        figures: dict[str, Any] = {"times_s": times, "max_rel_diff": diffs}
        for name in refs[case]:
            figures[f"ratios_{name}"] = [u / r for u, r in zip(times["gpuudf"], times[name], strict=True)]
        out[case] = figures
        line = ", ".join(
            f"/{name} {min(figures[f'ratios_{name}']):.3f}-{max(figures[f'ratios_{name}']):.3f}" for name in refs[case]
        )
        took = f"{min(times['gpuudf']):7.3f} s, NumPy {min(times['numpy1']):7.3f} s"
        print(f"  gpuudf {case:9s} {took}; {line}", flush=True)
    tiny = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    out["tiny_run_s"] = best_of(20, lambda: ctx.run_udf(dataset=tiny, udf=SumUDF()))
    return out


def fresh_interpreter_s(code: str) -> float:
    """Wall time a fresh interpreter reports for ``code`` (which prints it)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


STARTUP = textwrap.dedent(
    """
    import time
    start = time.perf_counter()
    import gpuudf
    ctx = gpuudf.Context()
    print(time.perf_counter() - start)
    """
)

FIRST_RUN = textwrap.dedent(
    """
    import time
    start = time.perf_counter()
    import numpy as np
    import gpuudf
    from gpuudf.udfs import SumUDF
    ctx = {make_context}
    ds = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    ctx.run_udf(dataset=ds, udf=SumUDF())
    print(time.perf_counter() - start)
    """
)

#: LiberTEM's side, run by ``--libertem-python`` as a script: ``SCRIPT PARAMS_JSON OUT_JSON``; it rewrites
#: ``OUT_JSON`` after every executor, so a process that dies keeps what it had measured
LIBERTEM = textwrap.dedent(
    '''
    import gc, json, sys, time, traceback
    import numpy as np
    import libertem
    from libertem.api import Context
    from libertem.udf import UDF
    from libertem.udf.sum import SumUDF
    from libertem.udf.sumsigudf import SumSigUDF

    FRAMES_PER_ROW = 64

    class FrameSumUDF(UDF):
        def get_result_buffers(self):
            return {"total": self.buffer(kind="nav", dtype="float32")}
        def process_frame(self, frame):
            self.results.total[:] = np.sum(frame)

    class MasksUDF(UDF):
        """tile.reshape(len(tile), -1) @ masks.T; masks (n_masks, sy, sx), cut to the tile's part of the frame."""
        def __init__(self, masks):
            super().__init__(masks=masks)
        def get_result_buffers(self):
            return {"intensity": self.buffer(kind="nav", extra_shape=(len(self.params.masks),), dtype="float32")}
        def process_tile(self, tile):
            masks = self.params.masks[(slice(None), *self.meta.sig_slice.get())]
            self.results.intensity[:] += tile.reshape(len(tile), -1) @ masks.reshape(len(masks), -1).T

    def rel_diff(actual, expected):
        actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected)
        if actual.shape != expected.shape:
            return float("inf")
        return float(np.max(np.abs(actual - expected)) / (float(np.max(np.abs(expected))) or 1.0))

    def make_context(executor):
        return Context() if executor == "dask" else Context.make_with(executor)

    def main():
        global wall_s
        params = json.loads(sys.argv[1])
        out_path = sys.argv[2]
        sys.path.insert(0, params["benchmarks_dir"])
        from timing import wall_s  # the same timing as gpuudf's side (benchmarks/timing.py)
        nav_shape, sig = tuple(params["nav_shape"]), params["sig"]
        block = np.random.default_rng(0).random((FRAMES_PER_ROW, sig, sig), dtype=np.float32)
        frames = nav_shape[0] * nav_shape[1]
        reps = -(-frames // FRAMES_PER_ROW)
        data = np.tile(block, (reps, 1, 1))[:frames].reshape(*nav_shape, sig, sig)
        flat = data.reshape(frames, -1)
        masks = {
            case: np.random.default_rng(n).random((n, sig * sig), dtype=np.float32)
            for case, n in params["n_masks"].items()
        }

        def loop_sum():
            frames_view = data.reshape(-1, sig, sig)
            out = np.empty(len(frames_view), dtype=np.float32)
            for i in range(len(frames_view)):
                out[i] = np.sum(frames_view[i])
            return out.reshape(nav_shape)

        refs = {"sum": lambda: np.sum(data, axis=(0, 1)), "sumsig": lambda: np.sum(data, axis=(2, 3)),
                "frame_sum": loop_sum}
        for case, stack in masks.items():
            refs[case] = lambda stack=stack: (flat @ stack.T).reshape(*nav_shape, len(stack))
        expected = {case: refs[case]() for case in params["cases"]}

        def make_udf(case):
            if case == "sum":
                return SumUDF(), "intensity"
            if case == "sumsig":
                return SumSigUDF(), "intensity"
            if case in masks:
                return MasksUDF(masks=masks[case].reshape(-1, sig, sig)), "intensity"
            return FrameSumUDF(), "total"

        figures = {"version": libertem.__version__, "numpy": np.__version__, "executors": {}, "errors": {}}
        for executor in params["executors"]:
            ex = figures["executors"][executor] = {}
            started = time.perf_counter()
            try:
                ctx = make_context(executor)
                ds = ctx.load("memory", data=data, sig_dims=2)
                ex["startup_s"] = time.perf_counter() - started
            except Exception:
                figures["errors"][executor] = traceback.format_exc()[-2000:]
                continue
            try:
                for case in params["cases"]:
                    try:
                        udf, buffer = make_udf(case)
                        result = ctx.run_udf(dataset=ds, udf=udf)
                        diff = rel_diff(result[buffer].data, expected[case])
                        runs = {"libertem": lambda udf=udf: ctx.run_udf(dataset=ds, udf=udf), "numpy1": refs[case]}
                        times = {name: [] for name in runs}
                        names = list(runs)
                        for repeat in range(params["repeats"]):
                            shift = repeat % len(names)
                            for name in names[shift:] + names[:shift]:
                                times[name].append(wall_s(runs[name]))
                    except Exception:
                        figures["errors"][f"{executor}/{case}"] = traceback.format_exc()[-2000:]
                        continue
                    ex[case] = {
                        "times_s": times,
                        "ratios": [t / r for t, r in zip(times["libertem"], times["numpy1"])],
                        "max_rel_diff": diff,
                    }
                    print(f"  LiberTEM {executor:8s} {case:9s} {min(times['libertem']):7.3f} s, NumPy "
                          f"{min(times['numpy1']):7.3f} s", flush=True)
                tiny = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32), sig_dims=2)
                ctx.run_udf(dataset=tiny, udf=SumUDF())
                ex["tiny_run_s"] = min(wall_s(lambda: ctx.run_udf(dataset=tiny, udf=SumUDF())) for _ in range(10))
            finally:
                ctx.close()
                del ds
                gc.collect()
                ex["wall_s"] = time.perf_counter() - started
                with open(out_path, "w") as f:
                    json.dump(figures, f)

    if __name__ == "__main__":
        main()
    '''
)


def bench_libertem(python: str, params: dict[str, Any]) -> dict[str, Any]:
    """LiberTEM's figures; a ``"failed"`` entry (and whatever it had measured) when its process fails."""
    with tempfile.TemporaryDirectory(prefix="gpuudf-bench-local-libertem-") as temp:
        script, out_path = Path(temp) / "bench_local_libertem.py", Path(temp) / "figures.json"
        script.write_text(LIBERTEM)
        try:
            done = subprocess.run(
                [python, str(script), json.dumps(params), str(out_path)],
                stdout=None,  # its progress lines show as they come
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                timeout=LIBERTEM_TIMEOUT_S,
                cwd=temp,
                env={**os.environ, "DASK_TEMPORARY_DIRECTORY": temp},
            )
            returncode, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stderr = None, f"timed out after {LIBERTEM_TIMEOUT_S} s: {exc.stderr or ''}"
        figures: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {"executors": {}}
        figures.setdefault("errors", {})
        if returncode != 0:
            how = "killed by signal 9 (out of memory?)" if returncode == -9 else f"exit code {returncode}"
            figures["failed"] = f"{how}: {str(stderr).strip()[-2000:]}"
            print(f"  LiberTEM's process failed, {how}", flush=True)
        for key, error in figures["errors"].items():
            print(f"  LiberTEM {key} failed: {error.strip().splitlines()[-1]}", flush=True)
        return figures


def span(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def verdicts(figures: dict[str, Any]) -> dict[str, Any]:
    """Per case: LiberTEM's best executor and the issue's targets, each over every repeat."""
    out: dict[str, Any] = {}
    libertem = figures.get("libertem", {}).get("executors", {})
    for case in CASES:
        ours = figures["gpuudf"][case]["ratios_numpy1"]
        entry: dict[str, Any] = {"ratios_numpy1": ours}
        per_executor = {name: ex[case]["ratios"] for name, ex in libertem.items() if case in ex}
        if per_executor:
            best = min(per_executor, key=lambda name: min(per_executor[name]))
            entry["libertem_best"] = best
            entry["libertem_best_ratios"] = per_executor[best]
            entry["libertem_ratios"] = per_executor
            if case in VECTORISED:
                entry["at_or_below_libertem"] = max(ours) <= min(per_executor[best])
            else:
                entry["below_libertem"] = max(ours) < min(per_executor[best])
        if "ratios_numpy2" in figures["gpuudf"][case]:
            ratios2 = figures["gpuudf"][case]["ratios_numpy2"]
            entry["ratios_numpy2"] = ratios2
            entry["within_two_thread_target"] = max(ratios2) <= TWO_THREAD_TARGET
        out[case] = entry
    return out


def print_table(figures: dict[str, Any]) -> None:
    print(f"\n{figures['data']} on {figures['executor']}, {figures['repeats']} repeats")
    head = f"{'case':10s} {'/numpy 1 thread':>16s} {'/numpy 2 threads':>17s}"
    print(f"{head} {'LiberTEM best':>14s} {'LiberTEM/numpy':>15s}  verdict")
    for case, entry in figures["verdicts"].items():
        two = span(entry["ratios_numpy2"]) if "ratios_numpy2" in entry else "-"
        best = entry.get("libertem_best", "-")
        lt = span(entry["libertem_best_ratios"]) if "libertem_best_ratios" in entry else "-"
        parts = []
        if "at_or_below_libertem" in entry:
            parts.append(f"<= LiberTEM {'met' if entry['at_or_below_libertem'] else 'NOT met'}")
        if "below_libertem" in entry:
            parts.append(f"< LiberTEM {'met' if entry['below_libertem'] else 'NOT met'}")
        if case in VECTORISED and "libertem_best" not in entry:
            parts.append("<= LiberTEM: no LiberTEM figure")
        if "within_two_thread_target" in entry:
            parts.append(
                f"<= {TWO_THREAD_TARGET} x 2 threads {'met' if entry['within_two_thread_target'] else 'NOT met'}"
            )
        print(f"{case:10s} {span(entry['ratios_numpy1']):>16s} {two:>17s} {best:>14s} {lt:>15s}  {'; '.join(parts)}")
    for case in CASES:
        for name, ratios in figures["verdicts"][case].get("libertem_ratios", {}).items():
            print(f"  LiberTEM {name:8s} {case:9s} /numpy {span(ratios)}")
    for key, target in STARTUP_TARGETS.items():
        value = figures[key]
        print(f"{key:36s} {value:10.4f}  <= {target} {'met' if value <= target else 'NOT met'}")
    for name, ex in figures.get("libertem", {}).get("executors", {}).items():
        startup, tiny = ex.get("startup_s", float("nan")), ex.get("tiny_run_s", float("nan"))
        print(f"  LiberTEM {name:8s} Context + load {startup:.3f} s, tiny run {tiny:.4f} s")
    if "failed" in figures.get("libertem", {}):
        print(f"LiberTEM's process failed: {figures['libertem']['failed'][:300]}")
    print(f"wall time: {figures['wall_s']:.0f} s")


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0, help="dataset size (default 2 GiB), nav (rows, 64)")
    parser.add_argument("--nav", type=int, nargs=2, metavar=("Y", "X"), help="nav shape instead of --size-gib")
    parser.add_argument("--sig", type=int, default=256, help="detector side (default 256)")
    parser.add_argument("--quick", action="store_true", help="nav 32x32, sig 64: a smoke test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=None, help="CPU workers (default: Context(), one per core)")
    parser.add_argument("--cudas", type=int, nargs="*", default=None, help="GPUs to add (hybrid run)")
    parser.add_argument("--libertem-python", help="an interpreter with LiberTEM 0.16: compare with it")
    parser.add_argument(
        "--libertem-executors", nargs="+", default=LIBERTEM_EXECUTORS, choices=["threads", "inline", "dask"]
    )
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    sig = 64 if args.quick else args.sig
    nav_shape = (32, 32) if args.quick else tuple(args.nav) if args.nav else nav_for(args.size_gib, sig)

    data = make_data(nav_shape, sig)
    masks = {case: make_masks(n, sig) for case, n in N_MASKS.items()}
    default = args.cpus is None and args.cudas is None
    local = f"gpuudf.Context.make_with('local', cpus={args.cpus}, cudas={args.cudas or []})"
    make_context = "gpuudf.Context()" if default else local
    ctx = gpuudf.Context() if default else gpuudf.Context.make_with("local", cpus=args.cpus, cudas=args.cudas or [])
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "executor": repr(ctx.executor),
        "data": f"float32 {data.shape}, {data.nbytes / 2**30:.2f} GiB",
        "nav_shape": list(nav_shape),
        "sig": sig,
        "cores": os.cpu_count(),
        "numpy": np.__version__,
        "gpuudf": gpuudf.__version__,
        "repeats": args.repeats,
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
    }
    print(f"{figures['data']} on {figures['executor']}", flush=True)
    figures["gpuudf"] = bench_gpuudf(ctx, data, masks, args.repeats)
    figures["tiny_run_s"] = figures["gpuudf"].pop("tiny_run_s")
    ctx.close()
    figures["gpuudf_wall_s"] = time.perf_counter() - started
    figures["import_and_context_s"] = min(fresh_interpreter_s(STARTUP) for _ in range(3))
    first = FIRST_RUN.format(make_context=make_context)
    figures["first_tiny_run_fresh_process_s"] = min(fresh_interpreter_s(first) for _ in range(2))
    if args.json:  # before LiberTEM: a later failure keeps what was measured
        Path(args.json).write_text(json.dumps(figures, indent=1))

    if args.libertem_python:
        del data  # LiberTEM's interpreter makes its own
        gc.collect()
        lt_started = time.perf_counter()
        params = {
            "nav_shape": list(nav_shape),
            "sig": sig,
            "repeats": args.repeats,
            "executors": args.libertem_executors,
            "cases": list(CASES),
            "n_masks": N_MASKS,
            "benchmarks_dir": str(Path(__file__).resolve().parent),
        }
        print(f"LiberTEM ({args.libertem_python}), executors {', '.join(args.libertem_executors)} ...", flush=True)
        figures["libertem"] = bench_libertem(args.libertem_python, params)
        figures["libertem_wall_s"] = time.perf_counter() - lt_started
    figures["verdicts"] = verdicts(figures)
    figures["wall_s"] = time.perf_counter() - started
    print_table(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
