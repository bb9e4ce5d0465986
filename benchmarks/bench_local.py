"""The device scheduler (LocalExecutor) against single-thread NumPy, and start-up times.

All figures are ratios against references timed in the same run, on the same
array (float32, nav 128×128, sig 256×256 = 4 GiB by default):

- ``SumUDF`` against ``np.sum(data, axis=(0, 1))`` (target ≤ 0.75 on 2 cores);
- a per-frame UDF writing ``np.sum(frame)`` against a Python loop doing the
  same over the frames (target ≤ 0.65);
- a per-frame maximum with a merge against the loop
  ``acc = np.maximum(acc, frame)`` (target ≤ 0.7);
- start-up: ``import gpuudf; Context()`` in a fresh interpreter (≤ 0.15 s),
  the first tiny run (4×4×8×8) in a fresh interpreter (≤ 1.5 s), later tiny
  runs (≤ 10 ms);
- with ``--libertem-python PATH`` (an interpreter with ``libertem`` installed),
  the same three workloads with LiberTEM's default ``Context()``, timed in that
  interpreter on the same data, and reported beside ours.

Run: ``python benchmarks/bench_local.py [--quick] [--cudas 0] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import gpuudf
from gpuudf import UDF
from gpuudf.udfs import SumUDF

TARGETS = {"sum": 0.75, "frame_sum": 0.65, "frame_max": 0.7}


class FrameSumUDF(UDF):
    """``np.sum`` of each frame, one call per frame."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"total": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        self.results.total[:] = self.xp.sum(frame)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


class FrameMaxUDF(UDF):
    """Elementwise maximum over frames, frame by frame, merged by maximum."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"maximum": self.buffer(kind="sig", dtype=self.meta.input_dtype)}

    def preprocess(self) -> None:
        self.results.maximum[:] = -np.inf

    def process_frame(self, frame: Any) -> None:
        self.xp.maximum(self.results.maximum, frame, out=self.results.maximum)

    def merge(self, dest: Any, src: Any) -> None:
        np.maximum(dest.maximum, src.maximum, out=dest.maximum)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    """Best wall time of ``repeats`` runs after one warm-up, in seconds."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def make_data(nav: int, sig: int) -> np.ndarray:
    """Random float32 frames, generated in blocks (fast and reproducible)."""
    block = np.random.default_rng(0).random((64, sig, sig), dtype=np.float32)
    return np.tile(block, (nav * nav // 64, 1, 1)).reshape(nav, nav, sig, sig)


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
    ctx = gpuudf.Context.make_with("local", cpus={cpus}, cudas={cudas})
    ds = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    ctx.run_udf(dataset=ds, udf=SumUDF())
    print(time.perf_counter() - start)
    """
)

LIBERTEM = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from libertem.api import Context
    from libertem.udf import UDF
    from libertem.udf.sum import SumUDF

    class FrameSumUDF(UDF):
        def get_result_buffers(self):
            return {{"total": self.buffer(kind="nav", dtype="float32")}}
        def process_frame(self, frame):
            self.results.total[:] = np.sum(frame)

    class FrameMaxUDF(UDF):
        def get_result_buffers(self):
            return {{"maximum": self.buffer(kind="sig", dtype="float32")}}
        def preprocess(self):
            self.results.maximum[:] = -np.inf
        def process_frame(self, frame):
            np.maximum(self.results.maximum, frame, out=self.results.maximum)
        def merge(self, dest, src):
            np.maximum(dest.maximum, src.maximum, out=dest.maximum)

    def best_of(repeats, run):
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
        return min(times)

    if __name__ == "__main__":
        block = np.random.default_rng(0).random((64, {sig}, {sig}), dtype=np.float32)
        data = np.tile(block, ({nav} * {nav} // 64, 1, 1)).reshape({nav}, {nav}, {sig}, {sig})
        start = time.perf_counter()
        ctx = Context()
        ds = ctx.load("memory", data=data, sig_dims=2)
        startup = time.perf_counter() - start
        figures = {{"startup_s": startup}}
        for name, udf in (("sum", SumUDF), ("frame_sum", FrameSumUDF), ("frame_max", FrameMaxUDF)):
            figures[name + "_s"] = best_of({repeats}, lambda: ctx.run_udf(dataset=ds, udf=udf()))
        tiny = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32), sig_dims=2)
        figures["tiny_run_s"] = best_of(10, lambda: ctx.run_udf(dataset=tiny, udf=SumUDF()))
        ctx.close()
        print(json.dumps(figures))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nav", type=int, default=128)
    parser.add_argument("--sig", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="nav 32, sig 64: a smoke test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=None, help="CPU workers (default: one per core)")
    parser.add_argument("--cudas", type=int, nargs="*", default=[], help="GPUs to add (hybrid run)")
    parser.add_argument("--libertem-python", help="an interpreter with libertem installed")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    nav, sig = (32, 64) if args.quick else (args.nav, args.sig)

    data = make_data(nav, sig)
    frames = data.reshape(-1, sig, sig)
    ctx = gpuudf.Context.make_with("local", cpus=args.cpus, cudas=args.cudas)
    ds = ctx.load("memory", data=data)
    figures: dict[str, Any] = {
        "executor": repr(ctx.executor),
        "data": f"float32 {data.shape}, {data.nbytes / 2**30:.2f} GiB",
        "cores": os.cpu_count(),
    }

    def loop_sum() -> None:
        out = np.empty(len(frames), dtype=np.float32)
        for i in range(len(frames)):
            out[i] = np.sum(frames[i])

    def loop_max() -> None:
        acc = np.full((sig, sig), -np.inf, dtype=np.float32)
        for i in range(len(frames)):
            np.maximum(acc, frames[i], out=acc)

    references = {
        "sum": lambda: np.sum(data, axis=(0, 1)),
        "frame_sum": loop_sum,
        "frame_max": loop_max,
    }
    udfs = {"sum": SumUDF, "frame_sum": FrameSumUDF, "frame_max": FrameMaxUDF}
    for name, udf_class in udfs.items():
        reference_s = best_of(args.repeats, references[name])
        udf_s = best_of(args.repeats, lambda udf_class=udf_class: ctx.run_udf(dataset=ds, udf=udf_class()))
        figures[f"{name}_numpy_s"] = reference_s
        figures[f"{name}_gpuudf_s"] = udf_s
        figures[f"{name}_ratio"] = udf_s / reference_s

    tiny = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    figures["tiny_run_s"] = best_of(20, lambda: ctx.run_udf(dataset=tiny, udf=SumUDF()))
    ctx.close()
    figures["import_and_context_s"] = min(fresh_interpreter_s(STARTUP) for _ in range(3))
    first = FIRST_RUN.format(cpus=args.cpus, cudas=args.cudas)
    figures["first_tiny_run_fresh_process_s"] = min(fresh_interpreter_s(first) for _ in range(2))

    if args.libertem_python:
        del data, frames, ds, references  # LiberTEM makes its own copy of the data
        gc.collect()
        script = Path("/tmp/gpuudf_bench_libertem.py")
        script.write_text(LIBERTEM.format(nav=nav, sig=sig, repeats=args.repeats))
        out = subprocess.run([args.libertem_python, str(script)], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            libertem = json.loads(out.stdout.strip().splitlines()[-1])
            figures["libertem"] = libertem
            for name in udfs:
                figures[f"{name}_libertem_ratio"] = libertem[f"{name}_s"] / figures[f"{name}_numpy_s"]
        else:
            figures["libertem_failed"] = f"exit code {out.returncode}: {out.stderr.strip()[-300:]}"
            print(f"LiberTEM run failed: {figures['libertem_failed']}")

    print(f"{'figure':36s} {'value':>10s}  target")
    for name in udfs:
        ratio = figures[f"{name}_ratio"]
        verdict = "met" if ratio <= TARGETS[name] else "NOT met"
        print(f"{name + ' / numpy':36s} {ratio:10.3f}  <= {TARGETS[name]} {verdict}")
        if f"{name}_libertem_ratio" in figures:
            print(f"{'  LiberTEM ' + name + ' / numpy':36s} {figures[name + '_libertem_ratio']:10.3f}")
    for key, target in (("import_and_context_s", 0.15), ("first_tiny_run_fresh_process_s", 1.5), ("tiny_run_s", 0.01)):
        print(f"{key:36s} {figures[key]:10.4f}  <= {target} {'met' if figures[key] <= target else 'NOT met'}")
    if "libertem" in figures:
        print(f"{'  LiberTEM tiny run s':36s} {figures['libertem']['tiny_run_s']:10.4f}")
        print(f"{'  LiberTEM Context() + load s':36s} {figures['libertem']['startup_s']:10.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
