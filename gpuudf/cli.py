"""The ``gpuudf`` command: ``gpuudf demo`` runs the main job end to end."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gpuudf.backends import detect
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.context import Context
from gpuudf.udf import UDF
from gpuudf.udfs import SumSigUDF, SumUDF

__all__ = ["BrightestFrameUDF", "main", "synthetic_4dstem"]


def synthetic_4dstem(
    nav_shape: tuple[int, int] = (32, 48), sig_shape: tuple[int, int] = (64, 72), seed: int = 0
) -> np.ndarray[Any, np.dtype[np.uint16]]:
    """A small 4D-STEM scan: a disk whose centre and brightness vary over the scan.

    Returns
    -------
    numpy.ndarray
        ``uint16`` counts of shape ``(*nav_shape, *sig_shape)``.
    """
    rng = np.random.default_rng(seed)
    sy, sx = np.mgrid[: sig_shape[0], : sig_shape[1]]
    ny, nx = np.mgrid[: nav_shape[0], : nav_shape[1]]
    cy = sig_shape[0] / 2 + 3 * np.sin(2 * np.pi * nx / nav_shape[1])
    cx = sig_shape[1] / 2 + 3 * np.cos(2 * np.pi * ny / nav_shape[0])
    radius = min(sig_shape) / 6
    inside = (sy[None, None] - cy[..., None, None]) ** 2 + (sx[None, None] - cx[..., None, None]) ** 2 < radius**2
    brightness = 50 + 30 * (ny + nx)[..., None, None] / (nav_shape[0] + nav_shape[1])
    counts: np.ndarray[Any, np.dtype[np.uint16]] = rng.poisson(1 + brightness * inside).astype(np.uint16)
    return counts


class BrightestFrameUDF(UDF):
    """Example user UDF: the brightest pixel of each frame, and the overall maximum frame."""

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        """Declare a per-frame peak and a frame-shaped maximum."""
        return {
            "peak": self.buffer(kind="nav", dtype=self.meta.input_dtype),
            "maximum": self.buffer(kind="sig", dtype=self.meta.input_dtype),
        }

    def preprocess(self) -> None:
        """Start the maximum below any value."""
        self.results.maximum[:] = -np.inf

    def process_frame(self, frame: Any) -> None:
        """Record the frame's peak and fold it into the maximum."""
        self.results.peak[:] = frame.max()
        self.results.maximum[:] = self.xp.maximum(self.results.maximum, frame)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        """Peaks go into place; maxima combine."""
        dest.peak[:] = src.peak
        dest.maximum[:] = np.maximum(dest.maximum, src.maximum)

    def get_backends(self) -> tuple[str, ...]:
        """Plain array code: runs on either module."""
        return ("numpy", "cupy")


def _write_scan(data: np.ndarray[Any, Any], source: str, directory: Path) -> Path:
    """Save the scan as a detector would: an HDF5 file chunked along the scan, or a ``.npy``/raw file."""
    if source == "hdf5":
        import h5py  # noqa: PLC0415 - only this source needs it

        path = directory / "scan.h5"
        with h5py.File(path, "w") as file:
            file.create_dataset("/entry/data/data", data=data, chunks=(1, data.shape[1], *data.shape[2:]))
    elif source == "npy":
        path = directory / "scan.npy"
        np.save(path, data)
    else:
        path = directory / "scan.raw"
        data.tofile(path)
    return path


def _demo(args: argparse.Namespace) -> int:
    data = synthetic_4dstem(nav_shape=(args.nav, args.nav), sig_shape=(args.sig, args.sig))
    size_mib = data.nbytes / 2**20
    print(f"synthetic 4D-STEM scan: nav {data.shape[:2]}, sig {data.shape[2:]}, {data.dtype}, {size_mib:.1f} MiB")
    context = Context() if args.device is None else Context.make_with("inline", device=args.device)
    # the directory goes after the Context: its workers must have closed the file
    with tempfile.TemporaryDirectory(prefix="gpuudf-demo-") as directory, context as ctx:
        if args.source == "memory":
            ds = ctx.load("memory", data=data, sig_dims=2)
        else:
            path = _write_scan(data, args.source, Path(directory))
            raw = {"nav_shape": data.shape[:2], "sig_shape": data.shape[2:], "dtype": data.dtype}
            ds = ctx.load("auto", path=path, **(raw if args.source == "raw" else {}))
            print(f"wrote it to {path.name} and loaded it with ctx.load('auto', ...): {ds!r}")
        elapsed = []
        for _ in range(2):  # the first run starts the workers
            start = time.perf_counter()
            total, per_frame, brightest = ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF(), BrightestFrameUDF()])
            elapsed.append(time.perf_counter() - start)
    reference = data.sum(axis=(0, 1), dtype=np.float64)
    ok = np.allclose(total["intensity"].data, reference, rtol=1e-5)
    ok &= np.allclose(per_frame["intensity"].data, data.sum(axis=(2, 3), dtype=np.float64), rtol=1e-5)
    ok &= np.array_equal(brightest["maximum"].data, data.max(axis=(0, 1)))
    print(
        f"ran SumUDF, SumSigUDF and BrightestFrameUDF in one pass on {ctx.executor}: "
        f"{elapsed[0] * 1e3:.0f} ms the first time, {elapsed[1] * 1e3:.1f} ms the second"
    )
    mean_frame = total["intensity"].data / (data.shape[0] * data.shape[1])
    print(f"  SumUDF: total counts {total['intensity'].data.sum():.0f}, mean frame's peak {mean_frame.max():.1f}")
    frame_sums = per_frame["intensity"].data
    print(
        f"  SumSigUDF: frame sums from {frame_sums.min():.0f} to {frame_sums.max():.0f} (nav-shaped {frame_sums.shape})"
    )
    print(
        f"  BrightestFrameUDF: brightest pixel {brightest['peak'].data.max():.0f} at scan position "
        f"{tuple(int(i) for i in np.unravel_index(np.argmax(brightest['peak'].data), data.shape[:2]))}"
    )
    print("results agree with NumPy" if ok else "RESULTS DIFFER FROM NUMPY")
    return 0 if ok else 1


def _info(_args: argparse.Namespace) -> int:
    print(detect())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpuudf`` command."""
    parser = argparse.ArgumentParser(prog="gpuudf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="synthesise a small 4D dataset and run built-in and user UDFs on it")
    demo.add_argument("--nav", type=int, default=32, help="scan size per axis (default 32)")
    demo.add_argument("--sig", type=int, default=64, help="frame size per axis (default 64)")
    demo.add_argument(
        "--source",
        choices=("hdf5", "npy", "raw", "memory"),
        default="hdf5",
        help="where the workers read the scan from: a file of this kind in a temporary directory "
        "(default hdf5), or the array in memory",
    )
    demo.add_argument(
        "--device",
        default=None,
        help="run inline on one device: cpu, cuda:N or sim:N (the simulated CUDA device); "
        "default: every CPU core and GPU, through worker processes",
    )
    demo.set_defaults(func=_demo)
    info = commands.add_parser("info", help="list the CPU cores and CUDA GPUs gpuudf can use")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
