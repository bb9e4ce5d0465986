"""The built-in 4D-STEM UDFs against plain NumPy and against LiberTEM, with the default ``Context()``.

For every size in ``--sizes-gib`` (default 1 and 4) one float32 scan with
256×256 frames is made (Poisson counts around a bright disk, so that CoM and
the virtual detectors see a diffraction-like signal) and written as a raw file
into ``--dir`` (default ``/var/tmp/gpuudf-bench-udfs``; tmpfs is refused, a
file there never leaves memory).  Each case runs on the scan in memory
(``ctx.load("memory", ...)``) and on the raw file with its page cache warm
(``ctx.load("raw", ...)``), timed ``--repeats`` times interleaved with its
NumPy reference on the same bytes (the array, or ``np.memmap`` of the file):

=========  =============================================  ==================================================  ======
case       gpuudf                                         NumPy reference (2 BLAS threads)                    target
=========  =============================================  ==================================================  ======
masks1     ``ApplyMasksUDF`` with 1 dense disk mask       ``flat @ masks.T``                                  ≤ 0.9×
masks16    ``ApplyMasksUDF`` with 16 dense ring masks     ``flat @ masks.T``                                  ≤ 0.9×
com        ``CoMUDF`` (disk of radius 64 at the centre)   the same three sums as one ``flat @ stack.T``,      ≤ 1.2×
                                                          then the division and the shifts
stddev     ``StdDevUDF``                                  ``data.std(axis=(0, 1))``                           ≤ 1.0×
=========  =============================================  ==================================================  ======

Every UDF result is checked against its reference (float32 tolerance) before
it is timed.  With ``--libertem-python PATH`` (an interpreter with LiberTEM
0.16, e.g. ``python3 -m venv lt-venv && lt-venv/bin/pip install
libertem==0.16.0``), that interpreter runs ``benchmarks/libertem_udfs.py`` on
the same file after gpuudf's runs, with every LiberTEM executor (``dask``, the
default; ``pipelined``, ``threads``, ``inline``) on both sources; the best of
them per case is the one gpuudf must beat (target < 1×), and LiberTEM's
results are compared with gpuudf's.  Before the timings, it runs
``tests/test_udfs_libertem.py`` with the same interpreter: LiberTEM's and
gpuudf's ``ApplyMasksUDF``, ``CoMUDF``, ``StdDevUDF``, ``LogsumUDF`` and
``PickUDF`` on one small uint16 file must give equal results (``rtol`` 1e-5).

Run ``python benchmarks/bench_udfs.py [--sizes-gib 1 4] [--repeats 3]
[--libertem-python PATH] [--json out.json]``; ``--quick`` makes a 64 MiB scan
(a smoke test, figures not meaningful).  Run it with nothing else busy on the
machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the NumPy references get 2 BLAS threads, as the issue asks; set before NumPy loads its BLAS
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "2")

import numpy as np  # noqa: E402 - after the BLAS thread count

import gpuudf  # noqa: E402 - after the BLAS thread count
from gpuudf import masks  # noqa: E402 - after the BLAS thread count
from gpuudf.udfs import ApplyMasksUDF, CoMUDF, StdDevUDF  # noqa: E402 - after the BLAS thread count

SIG = 256
TARGETS = {"masks1": 0.9, "masks16": 0.9, "com": 1.2, "stddev": 1.0}
LIBERTEM_EXECUTORS = ["dask", "pipelined", "threads", "inline"]
LIBERTEM_SCRIPT = Path(__file__).with_name("libertem_udfs.py")
LIBERTEM_TIMEOUT_S = 3600
#: float32 results of different summation orders: relative to the largest magnitude
FLOAT32_RTOL = 1e-4
AGREEMENT_RTOL = 1e-5


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        value = call()
        return time.perf_counter() - start, value
    finally:
        gc.enable()


def make_scan(nav_shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """float32 Poisson counts: a bright disk that moves a little over the scan, on a dim background."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIG, :SIG]
    data = np.empty((*nav_shape, SIG, SIG), dtype=np.float32)
    for row in range(nav_shape[0]):
        shift = 4 * math.sin(2 * math.pi * row / nav_shape[0])
        disk = ((y - SIG / 2 - shift) ** 2 + (x - SIG / 2) ** 2 < (SIG / 5) ** 2) * 40.0 + 2.0
        data[row] = rng.poisson(disk, size=(nav_shape[1], SIG, SIG))
    return data


def nav_for(size_gib: float) -> tuple[int, int]:
    frames = int(size_gib * 2**30 // (SIG * SIG * 4))
    side = math.isqrt(frames)
    return side, frames // side


def mask_stacks() -> dict[str, np.ndarray]:
    centre = (SIG / 2, SIG / 2)
    return {
        "masks1": masks.disk((SIG, SIG), centre, SIG / 5)[np.newaxis].astype(np.float32),
        "masks16": masks.radial_bins((SIG, SIG), centre, SIG / 2, n_bins=16).astype(np.float32),
    }


def com_stack(radius: float) -> np.ndarray:
    y, x = np.mgrid[:SIG, :SIG].astype(np.float32)
    inside = masks.disk((SIG, SIG), (SIG / 2, SIG / 2), radius).astype(np.float32)
    return np.stack([inside, inside * y, inside * x]).reshape(3, -1)


def numpy_reference(case: str, data: np.ndarray, stacks: dict[str, np.ndarray]) -> Callable[[], Any]:
    flat = data.reshape(-1, SIG * SIG)
    if case in stacks:
        weights = stacks[case].reshape(len(stacks[case]), -1)
        return lambda: (flat @ weights.T).reshape(*data.shape[:2], -1)
    if case == "com":
        stack = com_stack(SIG / 4)

        def com() -> np.ndarray:
            sums = flat @ stack.T
            centres = sums[:, 1:] / sums[:, :1]
            return (centres - SIG / 2).reshape(*data.shape[:2], 2)

        return com
    if case == "stddev":
        return lambda: data.std(axis=(0, 1))
    msg = f"unknown case {case!r}"
    raise ValueError(msg)


def expected_result(case: str, data: np.ndarray, stacks: dict[str, np.ndarray]) -> np.ndarray:
    """What the results are checked against: the reference's result, except for ``stddev``.

    NumPy's float32 ``std`` over 16384 frames drifts by about 2e-4 of the
    largest value; the UDF accumulates in float64, so it is checked against
    the float64 ``std`` (the float32 one is still what is timed).
    """
    if case == "stddev":
        return np.asarray(data).std(axis=(0, 1), dtype=np.float64)
    return np.asarray(numpy_reference(case, data, stacks)())


def gpuudf_udf(case: str, stacks: dict[str, np.ndarray]) -> tuple[gpuudf.UDF, str]:
    """The UDF of ``case`` and the result buffer compared with the reference."""
    if case in stacks:
        stack = stacks[case]
        return ApplyMasksUDF(mask_factories=lambda: stack), "intensity"
    if case == "com":
        return CoMUDF.with_params(cy=SIG / 2, cx=SIG / 2, r=SIG / 4), "raw_shifts"
    return StdDevUDF(), "std"


def assert_close(what: str, actual: np.ndarray, expected: np.ndarray, rtol: float) -> float:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        msg = f"{what}: shape {actual.shape}, expected {expected.shape}"
        raise AssertionError(msg)
    scale = float(np.nanmax(np.abs(expected))) or 1.0
    diff = float(np.nanmax(np.abs(actual.astype(np.float64) - expected)) / scale) if expected.size else 0.0
    if not diff <= rtol:
        msg = f"{what}: largest difference {diff:.2e} of the largest value, allowed {rtol:.0e}"
        raise AssertionError(msg)
    return diff


def check_not_tmpfs(directory: Path) -> None:
    best, fstype = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if str(directory.resolve()).startswith(fields[1]) and len(fields[1]) > len(best):
            best, fstype = fields[1], fields[2]
    if fstype in {"tmpfs", "ramfs"}:
        msg = f"--dir {directory} is on {fstype}: a file there never leaves memory"
        raise SystemExit(msg)


def bench_size(
    ctx: gpuudf.Context, size_gib: float, directory: Path, cases: list[str], repeats: int
) -> tuple[dict[str, Any], Path, tuple[int, int]]:
    nav_shape = nav_for(size_gib)
    print(f"== {size_gib:g} GiB: nav {nav_shape}, sig ({SIG}, {SIG}), float32", flush=True)
    data = make_scan(nav_shape)
    path = directory / f"scan-{size_gib:g}gib.raw"
    data.tofile(path)
    stacks = mask_stacks()
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=data.shape)
    np.asarray(mapped).sum(dtype=np.float64)  # warm the page cache
    sources = {
        "memory": (ctx.load("memory", data=data, sig_dims=2), data),
        "raw": (ctx.load("raw", path=path, nav_shape=nav_shape, sig_shape=(SIG, SIG), dtype="float32"), mapped),
    }
    figures: dict[str, Any] = {"nav_shape": list(nav_shape), "nbytes": data.nbytes}
    for source, (ds, array) in sources.items():
        for case in cases:
            reference = numpy_reference(case, array, stacks)
            udf, buffer = gpuudf_udf(case, stacks)
            expected = expected_result(case, array, stacks)
            got = ctx.run_udf(dataset=ds, udf=udf)[buffer].data  # also the untimed first run
            diff = assert_close(f"{source}/{case}", got, expected, FLOAT32_RTOL)
            udf_times, numpy_times = [], []
            for _ in range(repeats):
                udf_times.append(timed(lambda: ctx.run_udf(dataset=ds, udf=udf))[0])  # noqa: B023
                numpy_times.append(timed(reference)[0])
            ratio = min(udf_times) / min(numpy_times)
            figures[f"{source}/{case}"] = {
                "gpuudf_s": udf_times,
                "numpy_s": numpy_times,
                "ratio": ratio,
                "ratios": [u / n for u, n in zip(udf_times, numpy_times, strict=True)],
                "target": TARGETS[case],
                "met": ratio <= TARGETS[case],
                "max_rel_diff": diff,
                "gib_per_s": data.nbytes / 2**30 / min(udf_times),
            }
            print(
                f"  {source:6} {case:8} gpuudf {min(udf_times):7.3f} s, NumPy {min(numpy_times):7.3f} s: "
                f"{ratio:.2f}x (target <= {TARGETS[case]}x, {'met' if ratio <= TARGETS[case] else 'NOT met'})",
                flush=True,
            )
    del sources, mapped
    gc.collect()
    return figures, path, nav_shape


def run_libertem(python: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """LiberTEM's figures and results for ``params``, from ``python``; SystemExit when it fails outright."""
    with tempfile.TemporaryDirectory(prefix="gpuudf-bench-libertem-") as temp:
        done = subprocess.run(
            [python, str(LIBERTEM_SCRIPT), json.dumps(params), temp],
            capture_output=True,
            text=True,
            check=False,
            timeout=LIBERTEM_TIMEOUT_S,
            cwd=temp,
            env={**os.environ, "DASK_TEMPORARY_DIRECTORY": temp},
        )
        figures_path = Path(temp) / "figures.json"
        if done.returncode != 0 or not figures_path.exists():
            msg = f"LiberTEM ({python}) failed, exit code {done.returncode}: {done.stderr[-3000:]}"
            raise SystemExit(msg)
        with np.load(Path(temp) / "results.npz") as npz:
            results = {name: npz[name] for name in npz.files}
        return json.loads(figures_path.read_text()), results


def libertem_cases(cases: list[str], directory: Path) -> list[dict[str, Any]]:
    stacks = mask_stacks()
    specs = []
    for case in cases:
        if case in stacks:
            masks_path = directory / f"{case}.npy"
            np.save(masks_path, stacks[case])
            specs.append({"name": case, "udf": "ApplyMasksUDF", "masks_path": str(masks_path)})
        elif case == "com":
            specs.append({"name": case, "udf": "CoMUDF", "cy": SIG / 2, "cx": SIG / 2, "r": SIG / 4})
        else:
            specs.append({"name": case, "udf": "StdDevUDF"})
    return specs


def bench_libertem(
    python: str,
    *,
    figures: dict[str, Any],
    path: Path,
    nav_shape: tuple[int, int],
    cases: list[str],
    repeats: int,
    memory_executors: list[str],
) -> dict[str, Any]:
    directory = path.parent
    params = {
        "path": str(path),
        "nav_shape": list(nav_shape),
        "sig_shape": [SIG, SIG],
        "dtype": "float32",
        "sources": ["memory", "raw"],
        "executors": LIBERTEM_EXECUTORS,
        "executors_by_source": {"memory": memory_executors},
        "repeats": repeats,
        "cases": libertem_cases(cases, directory),
    }
    print(
        f"  LiberTEM ({python}), executors {', '.join(LIBERTEM_EXECUTORS)} (memory: {', '.join(memory_executors)}) ...",
        flush=True,
    )
    lt_figures, lt_results = run_libertem(python, params)
    data = np.memmap(path, dtype=np.float32, mode="r", shape=(*nav_shape, SIG, SIG))
    stacks = mask_stacks()
    out: dict[str, Any] = {"version": lt_figures["version"], "errors": lt_figures["errors"]}
    for source in ("memory", "raw"):
        for case in cases:
            per_executor = {
                executor: min(lt_figures["times_s"][f"{source}/{case}/{executor}"])
                for executor in LIBERTEM_EXECUTORS
                if f"{source}/{case}/{executor}" in lt_figures["times_s"]
            }
            _, buffer = gpuudf_udf(case, stacks)
            expected = expected_result(case, data, stacks)
            diff = assert_close(f"LiberTEM {source}/{case}", lt_results[f"{source}/{case}/{buffer}"], expected, 1e-3)
            best = min(per_executor, key=per_executor.__getitem__)
            ours = min(figures[f"{source}/{case}"]["gpuudf_s"])
            ratio = ours / per_executor[best]
            out[f"{source}/{case}"] = {
                "executors_min_s": per_executor,
                "times_s": {e: lt_figures["times_s"][f"{source}/{case}/{e}"] for e in per_executor},
                "best": best,
                "ratio": ratio,
                "met": ratio < 1.0,
                "max_rel_diff": diff,
            }
            print(
                f"  {source:6} {case:8} LiberTEM best: {best} {per_executor[best]:7.3f} s; gpuudf/LiberTEM "
                f"{ratio:.2f}x ({'met' if ratio < 1 else 'NOT met'}); "
                + ", ".join(f"{e} {t:.3f} s" for e, t in per_executor.items()),
                flush=True,
            )
    for key, error in lt_figures["errors"].items():
        print(f"  LiberTEM {key} failed: {error.strip().splitlines()[-1]}")
    return out


def agreement(python: str) -> dict[str, Any]:
    """``tests/test_udfs_libertem.py`` with ``--libertem-python``: the five UDFs equal LiberTEM's (rtol 1e-5)."""
    print("== agreement with LiberTEM: tests/test_udfs_libertem.py ...", flush=True)
    root = Path(__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_udfs_libertem.py",
         f"--libertem-python={python}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        timeout=LIBERTEM_TIMEOUT_S,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    print(f"  {summary}", flush=True)
    if done.returncode != 0:
        msg = f"the UDFs disagree with LiberTEM's:\n{done.stdout[-5000:]}"
        raise SystemExit(msg)
    return {"pytest": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/gpuudf-bench-udfs"))
    parser.add_argument("--cases", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--libertem-python", help="an interpreter with LiberTEM 0.16: compare with it")
    parser.add_argument(
        "--libertem-memory-executors",
        nargs="+",
        default=LIBERTEM_EXECUTORS,
        choices=LIBERTEM_EXECUTORS,
        help="LiberTEM's executors on the in-memory source (dask and pipelined ship the whole array: slow)",
    )
    parser.add_argument("--quick", action="store_true", help="one 64 MiB scan: a smoke test")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    sizes = [1 / 16] if args.quick else args.sizes_gib
    args.dir.mkdir(parents=True, exist_ok=True)
    check_not_tmpfs(args.dir)
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "gpuudf": gpuudf.__version__,
        "sizes": {},
    }
    if args.libertem_python:
        figures["agreement"] = agreement(args.libertem_python)
    try:
        for size in sizes:
            with gpuudf.Context() as ctx:
                figures["executor"] = repr(ctx.executor)
                size_figures, path, nav_shape = bench_size(ctx, size, args.dir, args.cases, args.repeats)
            if args.libertem_python:
                size_figures["libertem"] = bench_libertem(
                    args.libertem_python,
                    figures=size_figures,
                    path=path,
                    nav_shape=nav_shape,
                    cases=args.cases,
                    repeats=args.repeats,
                    memory_executors=args.libertem_memory_executors,
                )
            figures["sizes"][f"{size:g}"] = size_figures
            path.unlink()
            if args.json:  # after each size: a later failure keeps what was measured
                args.json.write_text(json.dumps(figures, indent=1))
    finally:
        for leftover in args.dir.glob("*"):
            leftover.unlink()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    sys.exit(0)


if __name__ == "__main__":
    main()
