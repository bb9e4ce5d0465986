"""CUDA data path: does the pinned-memory pipeline keep the host-to-device link busy?

Measured in one run on one GPU, all on the same uint16 data:

- ``bare_copy``: pinned host → device copies of the same bytes, in tiles of the
  pipeline's size, back to back on one stream: what the link can do.
- ``host_read``: filling the pinned ring from the dataset (the feeder's part).
- ``compute``: the UDF's per-tile kernels on device-resident tiles.
- ``pipeline``: ``run_udf(udf)`` on ``InlineExecutor("cuda:0")``, end to end;
  ``--udf sum`` (default) runs ``SumUDF``, ``--udf masks16`` an
  ``ApplyMasksUDF`` with 16 radial bins out to the frame's edge (dense
  masks, one cuBLAS product per tile).
- ``numpy``: ``np.sum`` over the nav axes on the CPU (single thread), for scale.

Reports the pipeline's throughput as a share of the bare copy's (target ≥ 80 %)
and the overlap efficiency ``(t_copy + t_compute − t_pipeline) / min(t_copy, t_compute)``
(1 = the shorter of copy and compute is hidden entirely).

Run: ``python benchmarks/bench_cuda_pipeline.py [--nav 128 --sig 256] [--udf masks16] [--json out.json]``.
Needs CuPy and a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import gpuudf
from gpuudf import masks
from gpuudf.backends.device import DeviceBackend
from gpuudf.executors import InlineExecutor
from gpuudf.udfs import ApplyMasksUDF, SumUDF


def best_of(repeats: int, run: Callable[[], Any], sync: Callable[[], Any]) -> float:
    """Best wall time of ``repeats`` runs after one warm-up, in seconds."""
    run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import cupy
    import cupyx

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nav", type=int, default=128, help="scan size per axis")
    parser.add_argument("--sig", type=int, default=256, help="frame size per axis")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile-mib", type=float, nargs="*", default=[], help="also sweep these tile sizes")
    parser.add_argument("--read-threads", type=int, nargs="*", default=[], help="also sweep feeder read threads")
    parser.add_argument("--registered", action="store_true", help="also time copies from registered dataset memory")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--udf", choices=("sum", "masks16"), default="sum", help="the UDF the pipeline runs")
    args = parser.parse_args()
    centre = ((args.sig - 1) / 2, (args.sig - 1) / 2)
    bins = masks.radial_bins((args.sig, args.sig), centre, args.sig / 2, n_bins=16)

    shape = (args.nav, args.nav, args.sig, args.sig)
    rng = np.random.default_rng(0)
    block = rng.integers(0, 1000, size=(16, args.sig, args.sig), dtype=np.uint16)
    data = np.tile(block, (args.nav * args.nav // 16, 1, 1)).reshape(shape)
    nbytes = data.nbytes
    device = cupy.cuda.Device(0)
    sync = device.synchronize
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])

    ctx = gpuudf.Context(executor=InlineExecutor("cuda:0"))
    backend = ctx.executor.backend  # type: ignore[attr-defined]
    assert isinstance(backend, DeviceBackend)
    ds = ctx.load("memory", data=data, sig_dims=2)
    frame_nbytes = args.sig * args.sig * 2
    tile_nbytes = (backend.tile_budget_nbytes() // (args.sig * args.sig * 4)) * frame_nbytes
    tile_frames = tile_nbytes // frame_nbytes
    num_tiles = -(-args.nav * args.nav // tile_frames)

    pinned = cupyx.empty_pinned((tile_nbytes,), dtype=np.uint8)
    pinned[:] = 1
    on_device = cupy.empty((tile_nbytes,), dtype=np.uint8)
    stream = cupy.cuda.Stream(non_blocking=True)

    def bare_copy() -> None:
        for _ in range(num_tiles):
            on_device.set(pinned, stream=stream)

    flat = data.reshape(-1, args.sig, args.sig)
    ring = pinned.view(np.uint16).reshape(tile_frames, args.sig, args.sig)

    def host_read() -> None:
        for k in range(num_tiles):
            part = flat[k * tile_frames : (k + 1) * tile_frames]
            backend._read(ds.read_frames, range(k * tile_frames, k * tile_frames + len(part)), ring[: len(part)])  # noqa: SLF001

    device_tile = cupy.asarray(np.tile(block, (tile_frames // 16 + 1, 1, 1))[:tile_frames])

    device_bins = cupy.asarray(bins.reshape(16, -1))

    def compute() -> None:
        acc = cupy.zeros((args.sig, args.sig), dtype=np.float32)
        for _ in range(num_tiles):
            if args.udf == "sum":
                acc += cupy.sum(device_tile.astype(np.float32), axis=0)
            else:
                device_tile.astype(np.float32).reshape(tile_frames, -1) @ device_bins.T

    def make_udf() -> gpuudf.UDF:
        return SumUDF() if args.udf == "sum" else ApplyMasksUDF(mask_factories=lambda: bins)

    def pipeline() -> None:
        ctx.run_udf(dataset=ds, udf=make_udf())

    t_copy = best_of(args.repeats, bare_copy, stream.synchronize)
    t_read = best_of(args.repeats, host_read, sync)
    t_compute = best_of(args.repeats, compute, sync)
    t_pipeline = best_of(args.repeats, pipeline, sync)
    start = time.perf_counter()
    data.sum(axis=(0, 1), dtype=np.float32)
    t_numpy = time.perf_counter() - start
    result = ctx.run_udf(dataset=ds, udf=make_udf())["intensity"].data
    if args.udf == "sum":
        np.testing.assert_allclose(result, data.sum(axis=(0, 1), dtype=np.float64), rtol=1e-4)
    else:
        expected = data.reshape(-1, args.sig * args.sig).astype(np.float64) @ bins.reshape(16, -1).T
        np.testing.assert_allclose(result.reshape(expected.shape), expected, rtol=1e-4)

    gbps = lambda t: nbytes / t / 1e9  # noqa: E731
    overlap = (t_copy + t_compute - t_pipeline) / min(t_copy, t_compute)
    figures: dict[str, Any] = {
        "device": name,
        "udf": args.udf,
        "data": f"uint16 {shape}, {nbytes / 2**30:.2f} GiB",
        "tile_mib": tile_nbytes / 2**20,
        "bare_copy_GBps": gbps(t_copy),
        "host_read_GBps": gbps(t_read),
        "compute_GBps": gbps(t_compute),
        "pipeline_GBps": gbps(t_pipeline),
        "pipeline_share_of_bare_copy": t_copy / t_pipeline,
        "overlap_efficiency": overlap,
        "numpy_1thread_s": t_numpy,
        "pipeline_s": t_pipeline,
        "speedup_vs_numpy": t_numpy / t_pipeline,
    }
    backend.timings.reset()
    pipeline()
    figures["pipeline_read_s"] = backend.timings.read_s
    figures["pipeline_wait_for_data_s"] = backend.timings.wait_for_data_s
    sweep = {}
    for tile_mib in args.tile_mib:
        backend.default_tile_nbytes = int(tile_mib * 2**20)
        sweep[str(tile_mib)] = gbps(best_of(args.repeats, pipeline, sync))
    if sweep:
        figures["pipeline_GBps_by_tile_mib"] = sweep
    backend.default_tile_nbytes = DeviceBackend.default_tile_nbytes
    threads_sweep = {}
    for threads in args.read_threads:
        backend.READ_THREADS = threads
        backend._read_pool = None  # noqa: SLF001 - a pool of the new size
        threads_sweep[str(threads)] = gbps(best_of(args.repeats, pipeline, sync))
    if threads_sweep:
        figures["pipeline_GBps_by_read_threads"] = threads_sweep
    if args.registered:
        # what a copy straight out of page-locked dataset memory would give (no staging copy)
        start = time.perf_counter()
        cupy.cuda.runtime.hostRegister(data.ctypes.data, nbytes, 0)
        figures["host_register_s"] = time.perf_counter() - start
        chunk = tile_nbytes
        flat_bytes = data.reshape(-1).view(np.uint8)

        def registered_copy() -> None:
            for k in range(num_tiles):
                piece = flat_bytes[k * chunk : (k + 1) * chunk]
                on_device[: piece.size].set(piece, stream=stream)

        figures["registered_copy_GBps"] = gbps(best_of(args.repeats, registered_copy, stream.synchronize))
        cupy.cuda.runtime.hostUnregister(data.ctypes.data)
    for key, value in figures.items():
        print(f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    print(f"target: pipeline ≥ 80 % of bare copy -> {'met' if t_copy / t_pipeline >= 0.8 else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as f:  # noqa: PTH123
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
