"""Hybrid scheduling: a compute-heavy per-frame UDF on CPU workers, a GPU, and both.

A per-frame FFT (``process_frame``: the power spectrum of each frame, summed)
is run with the same data on three ``LocalExecutor`` configurations:
every core as CPU workers; the GPU alone; the GPU plus the remaining cores
(one core goes to the GPU worker's feeder).  The target: hybrid faster than
either alone.  Each figure is the best of ``--repeats`` runs after a warm-up.

Run: ``python benchmarks/bench_hybrid.py [--nav 256 --sig 128] [--json out.json]``
(needs a GPU; ``--cudas sim:0`` runs the same code on the simulated device).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import gpuudf
from gpuudf import UDF
from gpuudf.executors import LocalExecutor


class FFTPowerUDF(UDF):
    """Sum over frames of ``|fft2(frame)|**2``, one frame at a time."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"power": self.buffer(kind="sig", dtype="float64")}

    def process_frame(self, frame: Any) -> None:
        spectrum = self.xp.fft.fft2(frame)
        self.results.power[:] += (spectrum.real**2 + spectrum.imag**2).astype(np.float64)

    def merge(self, dest: Any, src: Any) -> None:
        dest.power[:] += src.power

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")


def best_of(repeats: int, ctx: gpuudf.Context, ds: Any) -> tuple[float, np.ndarray]:
    """Best wall time of ``repeats`` runs after a warm-up, and the result."""
    result = ctx.run_udf(dataset=ds, udf=FFTPowerUDF())["power"].data
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ctx.run_udf(dataset=ds, udf=FFTPowerUDF())
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nav", type=int, default=256)
    parser.add_argument("--sig", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cudas", nargs="*", default=["0"], help="GPU indices or device names (sim:0)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    cudas: list[int | str] = [int(c) if c.isdigit() else c for c in args.cudas]
    cores = len(os.sched_getaffinity(0))

    block = np.random.default_rng(0).random((64, args.sig, args.sig), dtype=np.float32)
    data = np.tile(block, (args.nav * args.nav // 64, 1, 1)).reshape(args.nav, args.nav, args.sig, args.sig)
    configurations = {
        "cpu_only": {"cpus": cores, "cudas": []},
        "gpu_only": {"cpus": 0, "cudas": cudas},
        "hybrid": {"cpus": max(1, cores - len(cudas)), "cudas": cudas},
    }
    figures: dict[str, Any] = {"data": f"float32 {data.shape}, {data.nbytes / 2**30:.2f} GiB", "cores": cores}
    results = {}
    for name, config in configurations.items():
        with gpuudf.Context(executor=LocalExecutor(**config)) as ctx:
            ds = ctx.load("memory", data=data)
            figures[f"{name}_s"], results[name] = best_of(args.repeats, ctx, ds)
            figures[f"{name}_executor"] = repr(ctx.executor)
    for name in ("gpu_only", "hybrid"):
        np.testing.assert_allclose(results[name], results["cpu_only"], rtol=1e-4)
    figures["hybrid_vs_cpu_only"] = figures["hybrid_s"] / figures["cpu_only_s"]
    figures["hybrid_vs_gpu_only"] = figures["hybrid_s"] / figures["gpu_only_s"]
    for key, value in figures.items():
        print(f"{key:24s} {value:.3f}" if isinstance(value, float) else f"{key:24s} {value}")
    faster = figures["hybrid_vs_cpu_only"] < 1 and figures["hybrid_vs_gpu_only"] < 1
    print(f"target: hybrid faster than either alone -> {'met' if faster else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
