"""``DaskExecutor`` against ``LocalExecutor`` and against LiberTEM's dask executor, in one sitting.

One float32 scan of ``--size-gib`` GiB (default 2: sig 256×256, nav
``(rows, 64)``), in two sources: in memory (``ctx.load("memory", data=...)``)
and as a raw file written into a temporary directory under ``--dir``
(``ctx.load("raw", path=..., nav_shape=..., sig_shape=..., dtype="float32")``),
read once before its runs so that its page cache is warm.  Three cases:

=========  ==========================================================================
case       UDF (gpuudf; LiberTEM's of the same name through libertem_udfs.py)
=========  ==========================================================================
sum        ``SumUDF``
frame_sum  ``process_frame`` writing ``np.sum(frame)`` into a float32 nav buffer
masks16    ``ApplyMasksUDF`` with 16 random float32 masks (a ``(16, 256, 256)`` stack)
=========  ==========================================================================

Executors (``--cpus`` CPU workers each, default 2, and no GPU worker):
``gpuudf.executors.DaskExecutor.make_local(cpus=2, cudas=[])`` (a loopback
dask cluster, one single-threaded worker process per CPU) and
``gpuudf.executors.LocalExecutor(cpus=2, cudas=[])``, each in its own
``gpuudf.Context(executor=...)``, both open at once, each warmed by a tiny run
first (worker start-up, reported on its own).  Per source and case each
executor runs once untimed (its result checked against NumPy, float32
tolerance; a mismatch stops the benchmark); that first run's time is reported
apart, and on the memory source's first case it includes sending the data
(the dask executor scatters a memory dataset to the cluster once per
dataset).  For every dask run, outside its timing, the bytes scattered from
this process and the bytes the workers fetched from each other (from each
worker's log of incoming transfers) are recorded; timed runs that sent
anything are flagged in the output.  Then ``--repeats`` timed
repeats (default 3) of ``ctx.run_udf``, wall time, garbage collector paused,
the order of the two executors rotated from one repeat to the next so that
drift favours neither.  Each repeat gives a ratio dask/local.

With ``--libertem-python PATH`` (an interpreter with LiberTEM 0.16), after
gpuudf's executors are closed (so the two do not compete for memory and
cores), that interpreter runs ``benchmarks/libertem_udfs.py`` with LiberTEM's
default executor (``Context.make_with("dask")``, what ``Context()`` makes) on
the same file, warm again, once per source × case in a fresh process: the
same untimed first run and ``--repeats`` timed ones.  Its results are checked
against the same NumPy results.  LiberTEM's repeats are not interleaved with
ours, so its ratio LiberTEM/our-dask is taken over every pair of repeats:
from ``min(LiberTEM) / max(dask)`` to ``max(LiberTEM) / min(dask)``.  A
LiberTEM failure (an error, out of memory, a wrong result, a timeout) is
recorded, and the benchmark goes on.

Verdicts (the issue's goals), each over every source × case:

- dask within 1.2× of LocalExecutor: every repeat's dask/local ≤ 1.2;
- dask faster than LiberTEM's dask: every pair's LiberTEM/dask > 1; unknown
  where LiberTEM gave no figure.

Run::

    python benchmarks/bench_dask.py                                   # 2 GiB, 3 repeats
    python benchmarks/bench_dask.py --size-gib 0.05 --repeats 1       # a smoke test, figures not meaningful
    python benchmarks/bench_dask.py --libertem-python lt-venv/bin/python --json out.json

with nothing else busy on the machine.  At the default size gpuudf's part
holds about 8 GiB (the scan in this process, the local executor's
shared-memory copy, a copy on each dask worker), besides the 2 GiB file in
the page cache.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from timing import wall_s  # benchmarks/timing.py, beside this script

import gpuudf
from gpuudf import UDF
from gpuudf.executors import DaskExecutor, LocalExecutor
from gpuudf.udfs import ApplyMasksUDF, SumUDF

SOURCES = ("memory", "raw")
CASES = ("sum", "frame_sum", "masks16")
EXECUTORS = ("dask", "local")
N_MASKS = 16
#: dask/local at or below this in every repeat of every case: the issue's first goal
DASK_OVER_LOCAL_TARGET = 1.2
FRAMES_PER_ROW = 64
#: float32 results of different summation orders: relative to the largest magnitude
FLOAT32_RTOL = 1e-4
IO_BLOCK = 16 * 2**20
#: what the dask executor's runs send: bytes scattered from here, bytes its workers fetched from each other
SENT_KINDS = ("scattered", "between_workers")
LIBERTEM_SCRIPT = Path(__file__).with_name("libertem_udfs.py")
LIBERTEM_UDFS = {"sum": "SumUDF", "frame_sum": "FrameSumUDF", "masks16": "ApplyMasksUDF"}
#: wall-clock limit of one LiberTEM process (one source and case: start-up, first run, repeats)
LIBERTEM_TIMEOUT_S = 3600
LIBERTEM_ERROR_CHARS = 4000


class FrameSumUDF(UDF):
    """``np.sum`` of each frame, one call per frame."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"intensity": self.buffer(kind="nav", dtype="float32")}

    def process_frame(self, frame: Any) -> None:
        self.results.intensity[:] = self.xp.sum(frame)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


# -- the data and the references ----------------------------------------------------


def nav_for(size_gib: float, sig: int) -> tuple[int, int]:
    frames = max(FRAMES_PER_ROW, int(size_gib * 2**30) // (sig * sig * 4))
    return frames // FRAMES_PER_ROW, FRAMES_PER_ROW


def make_data(nav_shape: tuple[int, int], sig: int) -> np.ndarray:
    """Random float32 frames, one block of 64 frames repeated (fast and reproducible)."""
    block = np.random.default_rng(0).random((FRAMES_PER_ROW, sig, sig), dtype=np.float32)
    frames = nav_shape[0] * nav_shape[1]
    reps = -(-frames // FRAMES_PER_ROW)
    return np.tile(block, (reps, 1, 1))[:frames].reshape(*nav_shape, sig, sig)


def make_masks(sig: int) -> np.ndarray:
    return np.random.default_rng(N_MASKS).random((N_MASKS, sig, sig), dtype=np.float32)


def expected_results(data: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """What every result is checked against: float64 sums, the float32 mask product (BLAS)."""
    nav_shape = data.shape[:2]
    flat = data.reshape(nav_shape[0] * nav_shape[1], -1)
    return {
        "sum": np.sum(data, axis=(0, 1), dtype=np.float64),
        "frame_sum": flat.sum(axis=1, dtype=np.float64).reshape(nav_shape),
        "masks16": (flat @ masks.reshape(len(masks), -1).T).reshape(*nav_shape, len(masks)),
    }


def rel_diff(actual: Any, expected: np.ndarray) -> float:
    """Largest difference relative to the largest magnitude; inf for another shape."""
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        return float("inf")
    scale = float(np.max(np.abs(expected))) or 1.0
    return float(np.max(np.abs(actual.astype(np.float64) - expected)) / scale)


def check(what: str, actual: Any, expected: np.ndarray) -> float:
    diff = rel_diff(actual, expected)
    if not diff <= FLOAT32_RTOL:
        shape = np.asarray(actual).shape
        msg = f"{what}: result {shape} differs from NumPy's {expected.shape} by {diff:.2e} (allowed {FLOAT32_RTOL:.0e})"
        raise SystemExit(msg)
    return diff


def make_udf(case: str, masks: np.ndarray) -> UDF:
    if case == "sum":
        return SumUDF()
    if case == "frame_sum":
        return FrameSumUDF()
    return ApplyMasksUDF(mask_factories=lambda: masks)


def read_through(path: Path) -> float:
    """Read the whole file once (into the page cache); seconds it took."""
    buffer = bytearray(IO_BLOCK)
    start = time.perf_counter()
    with path.open("rb", buffering=0) as file:
        while file.readinto(buffer):
            pass
    return time.perf_counter() - start


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """``wall_s`` of one call (garbage collector paused), and the call's value."""
    box: list[Any] = []
    seconds = wall_s(lambda: box.append(call()))
    return seconds, box[0]


def span(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


# -- gpuudf ---------------------------------------------------------------------------


def _fetched_bytes_since(since: float, dask_worker: Any) -> int:
    """Bytes this dask worker fetched from other workers in transfers that started after ``since`` (``time.time()``).

    Run on every worker by ``client.run``; read from the worker's log of incoming transfers.
    """
    return int(sum(entry["total"] for entry in dask_worker.transfer_incoming_log if entry["start"] >= since))


def timed_run(executors: dict[str, Any], name: str, run: Callable[[], Any]) -> tuple[float, Any, list[int] | None]:
    """``timed(run)``; for dask also the bytes the run sent (scattered, between workers), counted outside the timing."""
    if name != "dask":
        return (*timed(run), None)
    dask = executors["dask"]
    scattered_before, since = dask.transport.scattered_nbytes, time.time()
    seconds, value = timed(run)
    fetched = sum(dask.client.run(_fetched_bytes_since, since).values())
    return seconds, value, [int(dask.transport.scattered_nbytes - scattered_before), int(fetched)]


def start_executors(cpus: int) -> tuple[dict[str, Any], dict[str, gpuudf.Context], dict[str, Any]]:
    """Both executors and their Contexts, warmed by a tiny run each; start-up figures."""
    executors: dict[str, Any] = {}
    contexts: dict[str, gpuudf.Context] = {}
    startup: dict[str, Any] = {}
    try:
        startup["dask_make_local_s"], executors["dask"] = timed(lambda: DaskExecutor.make_local(cpus=cpus, cudas=[]))
        executors["local"] = LocalExecutor(cpus=cpus, cudas=[])
        for name in EXECUTORS:
            contexts[name] = gpuudf.Context(executor=executors[name])
            tiny_run = tiny_runner(contexts[name])
            startup[f"{name}_first_tiny_run_s"] = timed(tiny_run)[0]
            startup[f"{name}_tiny_run_s"] = min(timed(tiny_run)[0] for _ in range(5))
    except BaseException:
        close_executors(executors)
        raise
    startup["dask_workers"] = [f"{slot.name} ({slot.device})" for slot in executors["dask"].slots()]
    startup["local_devices"] = list(executors["local"].devices)
    return executors, contexts, startup


def tiny_runner(ctx: gpuudf.Context) -> Callable[[], Any]:
    """A ``SumUDF`` run on a 4×4×8×8 memory dataset: the workers' start-up, then the fixed cost of a run."""
    ds = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    return lambda: ctx.run_udf(dataset=ds, udf=SumUDF())


def close_executors(executors: dict[str, Any]) -> None:
    for executor in executors.values():
        with contextlib.suppress(Exception):
            executor.close()


def load(ctx: gpuudf.Context, source: str, data: np.ndarray, path: Path) -> Any:
    if source == "memory":
        return ctx.load("memory", data=data)
    return ctx.load("raw", path=path, nav_shape=data.shape[:2], sig_shape=data.shape[2:], dtype="float32")


def bench_case(
    *,
    contexts: dict[str, gpuudf.Context],
    executors: dict[str, Any],
    datasets: dict[str, Any],
    case: str,
    what: str,
    masks: np.ndarray,
    expected: np.ndarray,
    repeats: int,
) -> dict[str, Any]:
    """One source × case: a checked untimed run per executor, then the timed repeats, order rotated."""
    udfs = {name: make_udf(case, masks) for name in EXECUTORS}
    runs = {
        name: lambda name=name: contexts[name].run_udf(dataset=datasets[name], udf=udfs[name]) for name in EXECUTORS
    }
    first_s, diffs = {}, {}
    first_sent: list[int] = []
    for name in EXECUTORS:
        first_s[name], result, sent = timed_run(executors, name, runs[name])
        first_sent = sent or first_sent
        diffs[name] = check(f"{what} on {name}", result["intensity"].data, expected)
    times: dict[str, list[float]] = {name: [] for name in EXECUTORS}
    timed_sent: list[list[int]] = []
    orders = []
    names = list(EXECUTORS)
    for repeat in range(repeats):
        shift = repeat % len(names)
        order = names[shift:] + names[:shift]
        orders.append(order)
        for name in order:
            seconds, _, sent = timed_run(executors, name, runs[name])
            times[name].append(seconds)
            if sent is not None:
                timed_sent.append(sent)
    ratios = [d / loc for d, loc in zip(times["dask"], times["local"], strict=True)]
    figures: dict[str, Any] = {
        "times_s": times,
        "orders": orders,
        "first_s": first_s,
        "ratios_dask_over_local": ratios,
        "max_rel_diff": diffs,
        "dask_sent_bytes_first_run": dict(zip(SENT_KINDS, first_sent, strict=True)),
        "dask_sent_bytes_timed_runs": {kind: [sent[i] for sent in timed_sent] for i, kind in enumerate(SENT_KINDS)},
    }
    sent_text = (
        f" (scattered {first_sent[0] / 2**30:.3f} GiB, between workers {first_sent[1] / 2**30:.3f} GiB)"
        if sum(first_sent)
        else ""
    )
    print(
        f"  {what:17s} dask {min(times['dask']):7.3f} s, local {min(times['local']):7.3f} s: "
        f"dask/local {span(ratios)}; first runs dask {first_s['dask']:.3f} s{sent_text}, "
        f"local {first_s['local']:.3f} s",
        flush=True,
    )
    for key, values in figures["dask_sent_bytes_timed_runs"].items():
        if any(values):
            print(
                f"  warning: timed dask runs of {what} sent data ({key.replace('_', ' ')}): "
                f"[{', '.join(f'{v / 2**20:.1f}' for v in values)}] MiB",
                flush=True,
            )
    return figures


def bench_gpuudf(
    *,
    contexts: dict[str, gpuudf.Context],
    executors: dict[str, Any],
    data: np.ndarray,
    path: Path,
    masks: np.ndarray,
    expected: dict[str, np.ndarray],
    repeats: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in SOURCES:
        entry: dict[str, Any] = {}
        if source == "raw":
            entry["warming_read_s"] = read_through(path)
        datasets = {name: load(contexts[name], source, data, path) for name in EXECUTORS}
        for case in CASES:
            entry[case] = bench_case(
                contexts=contexts,
                executors=executors,
                datasets=datasets,
                case=case,
                what=f"{source}/{case}",
                masks=masks,
                expected=expected[case],
                repeats=repeats,
            )
        out[source] = entry
        del datasets  # the memory dataset's frames on the cluster go with it
        gc.collect()
    return out


# -- LiberTEM ---------------------------------------------------------------------------


def libertem_version(python: str) -> str:
    """LiberTEM's version in ``python``; SystemExit where it does not import."""
    try:
        done = subprocess.run(
            [python, "-c", "import libertem.api; print(libertem.__version__)"],
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


def libertem_case(
    python: str, params: dict[str, Any], source: str, spec: dict[str, Any], expected: np.ndarray
) -> dict[str, Any]:
    """LiberTEM's dask executor on one source × case, in a fresh process; never raises for LiberTEM's sake."""
    case = spec["name"]
    key = f"{source}/{case}/dask"
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpuudf-bench-dask-libertem-") as temp:
        try:
            done = subprocess.run(
                [python, str(LIBERTEM_SCRIPT), json.dumps({**params, "sources": [source], "cases": [spec]}), temp],
                capture_output=True,
                text=True,
                check=False,
                timeout=LIBERTEM_TIMEOUT_S,
                cwd=temp,
                env={**os.environ, "DASK_TEMPORARY_DIRECTORY": temp},  # dask's scratch space goes with it
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            out["error"] = str(error)[-LIBERTEM_ERROR_CHARS:]
            return out
        finally:
            out["process_wall_s"] = time.perf_counter() - started
        figures_path, results_path = Path(temp) / "figures.json", Path(temp) / "results.npz"
        if done.returncode != 0 or not figures_path.exists():
            output = (done.stderr.strip() + "\n" + done.stdout.strip()).strip()
            out["error"] = f"{exit_text(done.returncode)}: {output[-LIBERTEM_ERROR_CHARS:]}"
            return out
        figures = json.loads(figures_path.read_text())
        out["version"] = figures.get("version")
        if key in figures.get("errors", {}):
            out["error"] = figures["errors"][key]
            return out
        out["times_s"] = figures["times_s"][key]
        out["first_s"] = figures.get("first_s", {}).get(key)
        with np.load(results_path) as npz:
            result = npz[f"{source}/{case}/intensity"]
    out["max_rel_diff"] = rel_diff(result, expected)
    if not out["max_rel_diff"] <= FLOAT32_RTOL:
        out["error"] = (
            f"wrong result: {result.shape} differs from NumPy's {expected.shape} by {out['max_rel_diff']:.2e} "
            f"(allowed {FLOAT32_RTOL:.0e})"
        )
    return out


def bench_libertem(
    *,
    python: str,
    path: Path,
    masks_path: Path,
    nav_shape: tuple[int, int],
    sig: int,
    expected: dict[str, np.ndarray],
    repeats: int,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "path": str(path),
        "nav_shape": list(nav_shape),
        "sig_shape": [sig, sig],
        "dtype": "float32",
        "executors": ["dask"],
        "repeats": repeats,
    }
    specs: dict[str, dict[str, Any]] = {case: {"name": case, "udf": LIBERTEM_UDFS[case]} for case in CASES}
    specs["masks16"]["masks_path"] = str(masks_path)
    out: dict[str, Any] = {"python": python, "executor": 'Context.make_with("dask")'}
    for source in SOURCES:
        out[source] = {"warming_read_s": read_through(path)}
        for case in CASES:
            entry = out[source][case] = libertem_case(python, params, source, specs[case], expected[case])
            if "error" in entry:
                last = entry["error"].strip().splitlines()[-1] if entry["error"].strip() else "?"
                print(f"  LiberTEM {source}/{case} failed: {last}", flush=True)
            else:
                print(
                    f"  LiberTEM {source + '/' + case:17s} {min(entry['times_s']):7.3f} s, "
                    f"first run {entry['first_s']:.3f} s",
                    flush=True,
                )
            out.setdefault("version", entry.get("version"))
    return out


# -- verdicts and the report --------------------------------------------------------------


def verdicts(figures: dict[str, Any]) -> dict[str, Any]:
    """The issue's two goals, per source × case and over all of them."""
    per_case: dict[str, Any] = {}
    within_all, faster_all = [], []
    libertem = figures.get("libertem")
    for source in SOURCES:
        for case in CASES:
            ours = figures["gpuudf"][source][case]
            ratios = ours["ratios_dask_over_local"]
            entry: dict[str, Any] = {
                "dask_over_local": [min(ratios), max(ratios)],
                "within_target_of_local": max(ratios) <= DASK_OVER_LOCAL_TARGET,
            }
            within_all.append(entry["within_target_of_local"])
            faster: bool | None = None
            if libertem is None:
                entry["faster_than_libertem_why"] = "LiberTEM not run (no --libertem-python)"
            elif "error" in libertem[source][case]:
                entry["faster_than_libertem_why"] = "LiberTEM gave no figure: " + libertem[source][case]["error"][-300:]
            else:
                lt, dask = libertem[source][case]["times_s"], ours["times_s"]["dask"]
                entry["libertem_over_dask"] = [min(lt) / max(dask), max(lt) / min(dask)]
                faster = min(lt) / max(dask) > 1.0
            entry["faster_than_libertem"] = faster
            faster_all.append(faster)
            per_case[f"{source}/{case}"] = entry
    if False in faster_all:
        faster_met: bool | None = False
    elif None in faster_all:
        faster_met = None
    else:
        faster_met = True
    return {
        "cases": per_case,
        "dask_within_target_of_local": {"target": DASK_OVER_LOCAL_TARGET, "met": all(within_all)},
        "dask_faster_than_libertem_dask": {"met": faster_met},
    }


def met_text(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "unknown"}[met]


def print_report(figures: dict[str, Any]) -> None:
    print(f"\n{figures['data']}; {figures['repeats']} repeats; {figures['machine']['cpu_count']} cores")
    print(f"dask:  {figures['executors']['dask']}, workers {', '.join(figures['startup']['dask_workers'])}")
    print(f"local: {figures['executors']['local']}, devices {', '.join(figures['startup']['local_devices'])}")
    libertem = figures.get("libertem")
    if libertem is not None:
        print(f"LiberTEM {libertem.get('version')}: {libertem['executor']} ({libertem['python']})")
    head = f"{'source/case':17s} {'dask s':>8s} {'local s':>8s} {'dask/local':>12s} {'LiberTEM s':>11s}"
    print(f"\n{head} {'LiberTEM/dask':>14s}  verdicts")
    for key, entry in figures["verdicts"]["cases"].items():
        source, case = key.split("/")
        ours = figures["gpuudf"][source][case]
        lt_entry = libertem[source][case] if libertem is not None else {}
        lt_s = "failed" if "error" in lt_entry else f"{min(lt_entry['times_s']):.3f}" if lt_entry else "-"
        lt_ratio = "-"
        if "libertem_over_dask" in entry:
            low, high = entry["libertem_over_dask"]
            lt_ratio = f"{low:.3f}-{high:.3f}"
        parts = [f"<= {DASK_OVER_LOCAL_TARGET}x local {met_text(entry['within_target_of_local'])}"]
        if libertem is not None:
            parts.append(f"faster than LiberTEM {met_text(entry['faster_than_libertem'])}")
        print(
            f"{key:17s} {min(ours['times_s']['dask']):8.3f} {min(ours['times_s']['local']):8.3f} "
            f"{span(ours['ratios_dask_over_local']):>12s} {lt_s:>11s} {lt_ratio:>14s}  {'; '.join(parts)}"
        )
    for key in figures["verdicts"]["cases"]:
        source, case = key.split("/")
        for kind, values in figures["gpuudf"][source][case]["dask_sent_bytes_timed_runs"].items():
            if any(values):
                print(
                    f"note: the timed dask runs of {key} include sending data ({kind.replace('_', ' ')}): "
                    f"[{', '.join(f'{v / 2**20:.1f}' for v in values)}] MiB per repeat"
                )
    print("\nuntimed first runs (s); on the memory source's first case they include sending the data")
    print(f"{'source/case':17s} {'dask':>8s} {'local':>8s} {'LiberTEM':>9s}")
    for source in SOURCES:
        for index, case in enumerate(CASES):
            first = figures["gpuudf"][source][case]["first_s"]
            lt_first = libertem[source][case].get("first_s") if libertem is not None else None
            lt_text = f"{lt_first:9.3f}" if lt_first is not None else f"{'-':>9s}"
            note = "  first run (includes sending the data)" if source == "memory" and index == 0 else ""
            print(f"{source + '/' + case:17s} {first['dask']:8.3f} {first['local']:8.3f} {lt_text}{note}")
    startup = figures["startup"]
    print(
        f"start-up: DaskExecutor.make_local {startup['dask_make_local_s']:.2f} s, first tiny run "
        f"dask {startup['dask_first_tiny_run_s']:.3f} s, local {startup['local_first_tiny_run_s']:.3f} s; "
        f"later tiny runs dask {startup['dask_tiny_run_s'] * 1e3:.1f} ms, "
        f"local {startup['local_tiny_run_s'] * 1e3:.1f} ms"
    )
    print(
        f"load average: {figures['machine']['loadavg_start']} at the start, "
        f"{figures['machine']['loadavg_end']} at the end"
    )
    within = figures["verdicts"]["dask_within_target_of_local"]
    worst = max(figures["verdicts"]["cases"].items(), key=lambda item: item[1]["dask_over_local"][1])
    print(
        f"\nverdict: dask within {DASK_OVER_LOCAL_TARGET}x of LocalExecutor on every case, every repeat: "
        f"{met_text(within['met'])} (worst {worst[1]['dask_over_local'][1]:.3f}, {worst[0]})"
    )
    faster = figures["verdicts"]["dask_faster_than_libertem_dask"]
    if libertem is None:
        print("verdict: dask faster than LiberTEM's dask on every case: not measured (no --libertem-python)")
    else:
        lows = {
            key: entry["libertem_over_dask"][0]
            for key, entry in figures["verdicts"]["cases"].items()
            if "libertem_over_dask" in entry
        }
        unknown = [key for key, entry in figures["verdicts"]["cases"].items() if entry["faster_than_libertem"] is None]
        detail = []
        if lows:
            low_key = min(lows, key=lows.__getitem__)
            detail.append(f"lowest LiberTEM/dask {lows[low_key]:.3f}, {low_key}")
        if unknown:
            detail.append(f"no LiberTEM figure for {', '.join(unknown)}")
        print(
            f"verdict: dask faster than LiberTEM's dask on every case, every repeat: {met_text(faster['met'])} "
            f"({'; '.join(detail)})"
        )
    print(f"wall time: {figures['wall_s']:.0f} s")


# -- the machine ------------------------------------------------------------------------


def filesystem_of(path: Path) -> str:
    """The filesystem type of the mount holding ``path``."""
    best, found = "", "?"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount_point, filesystem, *_ = line.split()
            inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, found = mount_point, filesystem
    return found


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpuudf_commit() -> str | None:
    """The commit of the gpuudf checkout imported, ``+dirty`` when it has changes; None outside git."""
    package = Path(gpuudf.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if changes else "")


def machine_info(directory: Path) -> dict[str, Any]:
    import dask
    import distributed

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    return {
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "ram_bytes": ram,
        "filesystem": filesystem_of(directory),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "gpuudf": gpuudf.__version__,
        "gpuudf_commit": gpuudf_commit(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- main -----------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0, help="dataset size (default 2 GiB), nav (rows, 64)")
    parser.add_argument("--sig", type=int, default=256, help="detector side (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per executor and case (default 3)")
    parser.add_argument("--cpus", type=int, default=2, help="CPU workers of each gpuudf executor (default 2)")
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the raw file's temporary directory goes"
    )
    parser.add_argument("--libertem-python", metavar="PATH", help="an interpreter with LiberTEM 0.16: compare with it")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every figure here")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.libertem_python:  # before anything is written: a wrong interpreter is a mistake of the command line
        print(f"LiberTEM {libertem_version(args.libertem_python)} in {args.libertem_python}", flush=True)

    sig = args.sig
    nav_shape = nav_for(args.size_gib, sig)
    data = make_data(nav_shape, sig)
    masks = make_masks(sig)
    expected = expected_results(data, masks)
    figures: dict[str, Any] = {
        "benchmark": "dask",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "data": f"float32 {data.shape}, {data.nbytes / 2**30:.2f} GiB",
        "nav_shape": list(nav_shape),
        "sig": sig,
        "nbytes": data.nbytes,
        "n_masks": N_MASKS,
        "repeats": args.repeats,
        "cpus": args.cpus,
        "dask_over_local_target": DASK_OVER_LOCAL_TARGET,
        "float32_rtol": FLOAT32_RTOL,
        "machine": machine_info(args.dir),
    }
    with tempfile.TemporaryDirectory(prefix="gpuudf-bench-dask-", dir=args.dir) as temp:
        path, masks_path = Path(temp) / "scan.raw", Path(temp) / "masks16.npy"
        write_s, _ = timed(lambda: data.tofile(path))
        np.save(masks_path, masks)
        figures["raw_file"] = {"path": str(path), "write_s": write_s}
        print(f"{figures['data']}, raw file in {temp} ({figures['machine']['filesystem']})", flush=True)

        executors, contexts, figures["startup"] = start_executors(args.cpus)
        try:
            figures["executors"] = {name: repr(executor) for name, executor in executors.items()}
            print(f"dask: {figures['executors']['dask']}; local: {figures['executors']['local']}", flush=True)
            figures["gpuudf"] = bench_gpuudf(
                contexts=contexts,
                executors=executors,
                data=data,
                path=path,
                masks=masks,
                expected=expected,
                repeats=args.repeats,
            )
            figures["dask_scattered_bytes_total"] = executors["dask"].transport.scattered_nbytes
        finally:
            close_executors(executors)  # before LiberTEM: the two must not compete for memory and cores
            del contexts
        figures["gpuudf_wall_s"] = time.perf_counter() - started
        if args.json:  # before LiberTEM: a later failure keeps what was measured
            args.json.write_text(json.dumps(figures, indent=1))

        if args.libertem_python:
            del data  # LiberTEM's processes read the file themselves
            gc.collect()
            lt_started = time.perf_counter()
            print(f"LiberTEM's dask executor ({args.libertem_python}), one process per source and case ...", flush=True)
            figures["libertem"] = bench_libertem(
                python=args.libertem_python,
                path=path,
                masks_path=masks_path,
                nav_shape=nav_shape,
                sig=sig,
                expected=expected,
                repeats=args.repeats,
            )
            figures["libertem_wall_s"] = time.perf_counter() - lt_started
    figures["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["verdicts"] = verdicts(figures)
    figures["wall_s"] = time.perf_counter() - started
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
