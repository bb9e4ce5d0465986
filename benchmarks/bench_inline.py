"""Overhead of the inline executor, as ratios measured in one run.

Two figures, each against a plain NumPy baseline timed in the same process,
interleaved with it (so drift of the machine hits both alike):

- per-frame overhead: a ``process_frame`` UDF that writes ``f(frame)`` into a
  nav buffer, against ``for i in range(n): out[i] = f(frames[i])`` over the
  same frames; reported as extra microseconds per frame.
- SumUDF against ``np.sum(data, axis=nav_axes)`` on the same array; reported
  as the ratio of wall times.

Each time is the best of ``--repeats`` wall times (``time.perf_counter``,
garbage collector paused as ``timeit`` does) after one warm-up call.

Run::

    python benchmarks/bench_inline.py            # full size (1 GiB for SumUDF)
    python benchmarks/bench_inline.py --quick    # small sizes, a smoke test
    python benchmarks/bench_inline.py --json results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gpuudf
from gpuudf import UDF
from gpuudf.backends import NumpyBackend
from gpuudf.udfs import SumUDF

PER_FRAME_OVERHEAD_TARGET_US = 3.0
SUM_RATIO_TARGET = 1.1


@dataclass(frozen=True)
class Sizes:
    """Dataset shapes of one benchmark run."""

    frame_nav_shape: tuple[int, ...]
    frame_sig_shape: tuple[int, ...]
    sum_nav_shape: tuple[int, ...]
    sum_sig_shape: tuple[int, ...]


FULL_SIZES = Sizes(
    frame_nav_shape=(256, 256),
    frame_sig_shape=(16, 16),
    sum_nav_shape=(64, 64),
    sum_sig_shape=(256, 256),  # float32: 1 GiB
)
QUICK_SIZES = Sizes(
    frame_nav_shape=(32, 32),
    frame_sig_shape=(16, 16),
    sum_nav_shape=(16, 16),
    sum_sig_shape=(64, 64),
)


class FrameFuncUDF(UDF):
    """Writes ``func(frame)`` into the nav buffer ``value``, frame by frame."""

    def __init__(self, func: Callable[[np.ndarray], Any]) -> None:
        super().__init__(func=func)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"value": self.buffer(kind="nav", dtype=self.meta.input_dtype)}

    def process_frame(self, frame: np.ndarray) -> None:
        self.results.value[:] = self.params.func(frame)


def plain_loop(func: Callable[[np.ndarray], Any], frames: np.ndarray, out: np.ndarray) -> None:
    """The baseline of the per-frame benchmark: what a user would write without gpuudf."""
    for i in range(len(frames)):
        out[i] = func(frames[i])


def best_times_s(candidates: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each candidate, in seconds.

    Each candidate is called once to warm up, then ``repeats`` times,
    interleaved with the others, with the garbage collector paused.
    """
    for call in candidates.values():
        call()
    best_s = dict.fromkeys(candidates, math.inf)
    for _ in range(repeats):
        for name, call in candidates.items():
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                start_s = time.perf_counter()
                call()
                elapsed_s = time.perf_counter() - start_s
            finally:
                if gc_was_enabled:
                    gc.enable()
            best_s[name] = min(best_s[name], elapsed_s)
    return best_s


def random_float32(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def bench_per_frame(ctx: gpuudf.Context, sizes: Sizes, repeats: int) -> dict[str, Any]:
    """Per-frame overhead of ``process_frame`` over a plain Python loop."""
    data = random_float32((*sizes.frame_nav_shape, *sizes.frame_sig_shape), seed=1)
    num_frames = math.prod(sizes.frame_nav_shape)
    frames = data.reshape(num_frames, *sizes.frame_sig_shape)
    func = np.sum
    loop_out = np.zeros(num_frames, dtype=np.float32)
    dataset = ctx.load("memory", data=data, sig_dims=len(sizes.frame_sig_shape))
    udf = FrameFuncUDF(func=func)

    udf_result = ctx.run_udf(dataset=dataset, udf=udf)["value"].data
    plain_loop(func, frames, loop_out)
    if not np.array_equal(udf_result.reshape(-1), loop_out):
        msg = "per-frame benchmark: the UDF and the plain loop disagree"
        raise SystemExit(msg)

    best_s = best_times_s(
        {
            "udf": lambda: ctx.run_udf(dataset=dataset, udf=udf),
            "loop": lambda: plain_loop(func, frames, loop_out),
        },
        repeats,
    )
    overhead_us = (best_s["udf"] - best_s["loop"]) / num_frames * 1e6
    return {
        "nav_shape": sizes.frame_nav_shape,
        "sig_shape": sizes.frame_sig_shape,
        "dtype": "float32",
        "num_frames": num_frames,
        "frame_func": "np.sum",
        "udf_s": best_s["udf"],
        "loop_s": best_s["loop"],
        "loop_per_frame_us": best_s["loop"] / num_frames * 1e6,
        "udf_per_frame_us": best_s["udf"] / num_frames * 1e6,
        "overhead_per_frame_us": overhead_us,
        "target_us": PER_FRAME_OVERHEAD_TARGET_US,
        "meets_target": overhead_us <= PER_FRAME_OVERHEAD_TARGET_US,
    }


def bench_sum(ctx: gpuudf.Context, sizes: Sizes, repeats: int) -> dict[str, Any]:
    """SumUDF against ``np.sum`` over the nav axes of the same array."""
    data = random_float32((*sizes.sum_nav_shape, *sizes.sum_sig_shape), seed=2)
    nav_axes = tuple(range(len(sizes.sum_nav_shape)))
    dataset = ctx.load("memory", data=data, sig_dims=len(sizes.sum_sig_shape))
    udf = SumUDF()

    udf_result = ctx.run_udf(dataset=dataset, udf=udf)["intensity"].data
    numpy_result = np.sum(data, axis=nav_axes)
    max_rel_diff = float(np.max(np.abs(udf_result - numpy_result) / np.abs(numpy_result)))
    if not np.allclose(udf_result, numpy_result, rtol=1e-4):
        msg = f"SumUDF benchmark: SumUDF and np.sum disagree (max rel. diff {max_rel_diff:.2e})"
        raise SystemExit(msg)

    best_s = best_times_s(
        {
            "udf": lambda: ctx.run_udf(dataset=dataset, udf=udf),
            "numpy": lambda: np.sum(data, axis=nav_axes),
        },
        repeats,
    )
    ratio = best_s["udf"] / best_s["numpy"]
    return {
        "nav_shape": sizes.sum_nav_shape,
        "sig_shape": sizes.sum_sig_shape,
        "dtype": "float32",
        "nbytes": data.nbytes,
        "cpu_tile_nbytes": NumpyBackend.default_tile_nbytes,
        "udf_s": best_s["udf"],
        "numpy_s": best_s["numpy"],
        "numpy_gib_per_s": data.nbytes / 2**30 / best_s["numpy"],
        "udf_gib_per_s": data.nbytes / 2**30 / best_s["udf"],
        "ratio_udf_over_numpy": ratio,
        "max_rel_diff": max_rel_diff,
        "target_ratio": SUM_RATIO_TARGET,
        "meets_target": ratio <= SUM_RATIO_TARGET,
    }


def shape_text(nav_shape: tuple[int, ...], sig_shape: tuple[int, ...]) -> str:
    return f"nav {'x'.join(map(str, nav_shape))}, sig {'x'.join(map(str, sig_shape))}"


def print_report(per_frame: Mapping[str, Any], summed: Mapping[str, Any]) -> None:
    rows = [
        (
            "per-frame overhead, us/frame",
            f"{per_frame['overhead_per_frame_us']:.2f}",
            f"<= {per_frame['target_us']:.1f}",
            per_frame["meets_target"],
        ),
        (
            "SumUDF / np.sum, wall time",
            f"{summed['ratio_udf_over_numpy']:.3f}x",
            f"<= {summed['target_ratio']:.2f}x",
            summed["meets_target"],
        ),
    ]
    print(f"{'benchmark':<30} {'measured':>10} {'target':>10}  meets")
    for name, measured, target, meets in rows:
        print(f"{name:<30} {measured:>10} {target:>10}  {'yes' if meets else 'NO'}")
    print()
    print(
        f"per-frame: {shape_text(per_frame['nav_shape'], per_frame['sig_shape'])} float32, "
        f"{per_frame['num_frames']} frames, f = {per_frame['frame_func']}; "
        f"UDF {per_frame['udf_s'] * 1e3:.1f} ms ({per_frame['udf_per_frame_us']:.2f} us/frame), "
        f"loop {per_frame['loop_s'] * 1e3:.1f} ms ({per_frame['loop_per_frame_us']:.2f} us/frame)"
    )
    print(
        f"sum:       {shape_text(summed['nav_shape'], summed['sig_shape'])} float32, "
        f"{summed['nbytes'] / 2**20:.0f} MiB, CPU tile budget {summed['cpu_tile_nbytes'] / 2**20:g} MiB; "
        f"SumUDF {summed['udf_s'] * 1e3:.1f} ms ({summed['udf_gib_per_s']:.2f} GiB/s), "
        f"np.sum {summed['numpy_s'] * 1e3:.1f} ms ({summed['numpy_gib_per_s']:.2f} GiB/s), "
        f"max rel. diff {summed['max_rel_diff']:.1e}"
    )


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gpuudf": gpuudf.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "executor": "inline",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per candidate (best one counts)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    ctx = gpuudf.Context.make_with("inline")
    print(f"gpuudf {gpuudf.__version__}, numpy {np.__version__}, inline executor, best of {args.repeats}")
    per_frame = bench_per_frame(ctx, sizes, args.repeats)
    summed = bench_sum(ctx, sizes, args.repeats)
    print_report(per_frame, summed)

    if args.json is not None:
        report = {
            "quick": args.quick,
            "repeats": args.repeats,
            "machine": machine_info(),
            "sizes": asdict(sizes),
            "per_frame": per_frame,
            "sum": summed,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
