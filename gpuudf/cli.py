"""The ``gpuudf`` command: ``demo``, ``run`` (in ``gpuudf.cli_run``) and ``info``.

Policy
------
- The command behaves as a user expects of a command-line tool:
  ``--version``, ``--help`` on every subcommand, and the help alone for a bare
  ``gpuudf`` (exit status 0: asking what the command does is no error).
- A mistake of the user or of the machine (a usage error, a missing or
  unreadable file, a device that is not there, parameters a UDF refuses, a
  folder that cannot be written) is one line on stderr, ``gpuudf: error:
  ...``, and exit status 2, never a traceback; anything else is a bug in
  gpuudf and keeps its traceback.
- :func:`main` returns the exit status and never raises ``SystemExit``, so
  it can be called in-process.
- Help texts are plain text: no reStructuredText markup, which a terminal
  would show as is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from gpuudf import __version__, masks
from gpuudf.backends import detect
from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.cli_run import CommandLineError, add_run_command
from gpuudf.context import Context
from gpuudf.errors import (
    BackendUnavailableError,
    DataSetError,
    DeviceOutOfMemoryError,
    ExecutorSpecException,
    UDFDefinitionError,
)
from gpuudf.udf import UDF
from gpuudf.udfs import ApplyMasksUDF, CoMUDF, SumSigUDF, SumUDF

__all__ = ["BrightestFrameUDF", "DemoGeometry", "main", "plot_demo", "synthetic_4dstem"]


def synthetic_4dstem(
    nav_shape: tuple[int, int] = (32, 48), sig_shape: tuple[int, int] = (64, 72), seed: int = 0
) -> np.ndarray[Any, np.dtype[np.uint16]]:
    """A small 4D-STEM scan: a bright disk that wanders over the scan, and particles that scatter.

    The disk's centre moves by up to 3 px (a beam shift, which the CoM maps
    show); where the beam crosses one of three particles, part of the disk's
    electrons are scattered outside it, so the bright-field image darkens and
    the dark-field image lights up there.

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
    distance = np.hypot(sy[None, None] - cy[..., None, None], sx[None, None] - cx[..., None, None])
    inside = distance < radius
    scattering = np.zeros(nav_shape)
    for fy, fx, size in ((0.3, 0.25, 0.12), (0.65, 0.7, 0.16), (0.75, 0.2, 0.08)):
        scattering += np.exp(-((ny / nav_shape[0] - fy) ** 2 + (nx / nav_shape[1] - fx) ** 2) / (2 * size**2))
    scattering = np.clip(scattering, 0, 1)[..., None, None]
    brightness = 50 + 30 * (ny + nx)[..., None, None] / (nav_shape[0] + nav_shape[1])
    # scattered electrons leave the disk and land on a halo around it
    halo = 6 * scattering * np.exp(-np.clip(distance - radius, 0, None) / (min(sig_shape) / 4))
    expected = 1 + brightness * (1 - 0.4 * scattering) * inside + halo * ~inside
    counts: np.ndarray[Any, np.dtype[np.uint16]] = rng.poisson(expected).astype(np.uint16)
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


class DemoGeometry:
    """Where the synthetic scan's beam is, and the virtual detectors the demo puts around it."""

    def __init__(self, sig_shape: tuple[int, int]) -> None:
        self.sig_shape = sig_shape
        self.centre = (sig_shape[0] / 2, sig_shape[1] / 2)
        beam = min(sig_shape) / 6  # the disk's radius in synthetic_4dstem
        # the disk wanders up to 3 px: the bright field sees all of it, the dark field none of it
        self.bright_field_radius = beam + 3
        inner = beam + 4
        self.dark_field_radii = (inner, max(min(sig_shape) / 2 - 1, inner + 2))  # small frames: past the edges

    def detectors(self) -> np.ndarray[Any, Any]:
        """The bright-field disk and the annular dark-field ring, as one stack."""
        inner, outer = self.dark_field_radii
        return np.stack(
            [
                masks.bright_field(self.sig_shape, self.centre, self.bright_field_radius),
                masks.annular_dark_field(self.sig_shape, self.centre, inner, outer),
            ]
        )


def plot_demo(
    path: Path,
    mean_frame: np.ndarray[Any, Any],
    geometry: DemoGeometry,
    intensity: np.ndarray[Any, Any],
    field: np.ndarray[Any, Any],
) -> Path:
    """Write the demo's figure: the mean frame with its detectors, both virtual images, the CoM field.

    Uses Matplotlib's object API (no pyplot, no display): the figure renders
    with the Agg canvas wherever the demo runs.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415 - only the demo draws
    from matplotlib.patches import Circle  # noqa: PLC0415

    figure = Figure(figsize=(14, 4), layout="constrained")
    frame_ax, bright_ax, dark_ax, field_ax = figure.subplots(1, 4)
    frame_ax.imshow(np.log1p(mean_frame), cmap="gray")
    centre_xy = (geometry.centre[1], geometry.centre[0])
    for radius, colour in [
        (geometry.bright_field_radius, "tab:orange"),
        (geometry.dark_field_radii[0], "tab:cyan"),
        (geometry.dark_field_radii[1], "tab:cyan"),
    ]:
        frame_ax.add_patch(Circle(centre_xy, radius, fill=False, color=colour, linewidth=1.2))
    frame_ax.set_title("mean frame (log)\nBF disk, ADF ring")
    for ax, image, title in [
        (bright_ax, intensity[..., 0], "virtual bright field\n(ApplyMasksUDF)"),
        (dark_ax, intensity[..., 1], "virtual annular dark field\n(ApplyMasksUDF)"),
    ]:
        shown = ax.imshow(image, cmap="viridis")
        figure.colorbar(shown, ax=ax, shrink=0.8, label="counts")
        ax.set_title(title)
    field_y, field_x = field[..., 0], field[..., 1]
    magnitude = np.hypot(field_y, field_x)
    shown = field_ax.imshow(magnitude, cmap="magma")
    figure.colorbar(shown, ax=field_ax, shrink=0.8, label="shift (px)")
    step = max(1, max(magnitude.shape) // 16)
    ys, xs = np.mgrid[0 : magnitude.shape[0] : step, 0 : magnitude.shape[1] : step]
    field_ax.quiver(xs, ys, field_x[::step, ::step], field_y[::step, ::step], color="white", angles="xy")
    field_ax.set_title("beam shift, size and direction\n(CoMUDF field)")
    for ax in (bright_ax, dark_ax, field_ax):
        ax.set_xlabel("scan x")
        ax.set_ylabel("scan y")
    frame_ax.set_xlabel("detector x (px)")
    frame_ax.set_ylabel("detector y (px)")
    figure.savefig(path, dpi=110)
    return path


def _numpy_com_shifts(data: np.ndarray[Any, Any], centre: tuple[float, float], radius: float) -> np.ndarray[Any, Any]:
    """Centre of mass minus ``centre`` of each frame within ``radius``: CoMUDF's ``raw_shifts`` in NumPy."""
    inside = masks.bright_field(data.shape[2:], centre, radius, dtype=np.float64)
    y, x = np.mgrid[: data.shape[2], : data.shape[3]]
    total = np.einsum("abyx,yx->ab", data, inside)
    com_y = np.einsum("abyx,yx->ab", data, inside * y) / total
    com_x = np.einsum("abyx,yx->ab", data, inside * x) / total
    return np.stack([com_y - centre[0], com_x - centre[1]], axis=-1)


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
    out: Path = Path() if args.out is None else args.out
    out.mkdir(parents=True, exist_ok=True)
    # asked for a folder, the user gets the scan too, to try `gpuudf run` on
    keep = args.out is not None and args.source != "memory"
    with contextlib.ExitStack() as stack:
        # the folder is entered first and left last: the Context's workers must have closed the file
        directory = str(out) if keep else stack.enter_context(tempfile.TemporaryDirectory(prefix="gpuudf-demo-"))
        context = Context() if args.device is None else Context.make_with("inline", device=args.device)
        ctx = stack.enter_context(context)
        if args.source == "memory":
            ds = ctx.load("memory", data=data, sig_dims=2)
        else:
            path = _write_scan(data, args.source, Path(directory))
            raw = {"nav_shape": data.shape[:2], "sig_shape": data.shape[2:], "dtype": data.dtype}
            ds = ctx.load("auto", path=path, **(raw if args.source == "raw" else {}))
            print(f"wrote it to {path.name} and loaded it with ctx.load('auto', ...): {ds!r}")
        geometry = DemoGeometry((args.sig, args.sig))
        detectors = geometry.detectors()
        udfs = [
            SumUDF(),
            SumSigUDF(),
            BrightestFrameUDF(),
            ApplyMasksUDF(mask_factories=detectors),
            CoMUDF.with_params(cy=geometry.centre[0], cx=geometry.centre[1], r=geometry.bright_field_radius),
        ]
        elapsed = []
        for _ in range(2):  # the first run starts the workers
            start = time.perf_counter()
            total, per_frame, brightest, virtual, com = ctx.run_udf(dataset=ds, udf=udfs)
            elapsed.append(time.perf_counter() - start)
    reference = data.sum(axis=(0, 1), dtype=np.float64)
    ok = np.allclose(total["intensity"].data, reference, rtol=1e-5)
    ok &= np.allclose(per_frame["intensity"].data, data.sum(axis=(2, 3), dtype=np.float64), rtol=1e-5)
    ok &= np.array_equal(brightest["maximum"].data, data.max(axis=(0, 1)))
    virtual_reference = np.einsum("abyx,kyx->abk", data, detectors.astype(np.float64))
    ok &= np.allclose(virtual["intensity"].data, virtual_reference, rtol=1e-5)
    com_reference = _numpy_com_shifts(data, geometry.centre, geometry.bright_field_radius)
    ok &= np.allclose(com["raw_shifts"].data, com_reference, rtol=1e-4, atol=1e-4)
    print(
        "ran SumUDF, SumSigUDF, BrightestFrameUDF, ApplyMasksUDF (virtual BF and ADF) and CoMUDF in one pass "
        f"on {ctx.executor}: {elapsed[0] * 1e3:.0f} ms the first time, {elapsed[1] * 1e3:.1f} ms the second"
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
    bright, dark = virtual["intensity"].data[..., 0], virtual["intensity"].data[..., 1]
    print(
        f"  ApplyMasksUDF: virtual bright field {bright.min():.0f} to {bright.max():.0f} counts, "
        f"annular dark field {dark.min():.0f} to {dark.max():.0f}"
    )
    shifts = np.hypot(com["field_y"].data, com["field_x"].data)
    print(f"  CoMUDF: beam shifts of {shifts.min():.2f} to {shifts.max():.2f} px over the scan")
    figure = plot_demo(out / "gpuudf-demo.png", mean_frame, geometry, virtual["intensity"].data, com["field"].data)
    print(f"wrote the virtual bright-field and dark-field images and the CoM field to {figure}")
    if keep:
        layout = f" --nav-shape {args.nav},{args.nav} --sig-shape {args.sig},{args.sig} --dtype uint16"
        print(
            f"kept the scan in {path}; try: gpuudf run {path}{layout if args.source == 'raw' else ''} "
            f"--udf masks --out {out}"
        )
    print("results agree with NumPy" if ok else "RESULTS DIFFER FROM NUMPY")
    return 0 if ok else 1


def _info(_args: argparse.Namespace) -> int:
    print(detect())
    return 0


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line: the usage is one ``--help`` away."""

    def error(self, message: str) -> NoReturn:
        """Print ``gpuudf: error: message`` and where help is, and exit with status 2."""
        self.exit(2, f"gpuudf: error: {message} (see '{self.prog} --help')\n")


#: Errors that are the user's or the machine's, not gpuudf's: reported in one line.
_USER_ERRORS = (
    CommandLineError,
    DataSetError,
    UDFDefinitionError,
    ExecutorSpecException,
    BackendUnavailableError,
    DeviceOutOfMemoryError,
    OSError,
)

_DESCRIPTION = """\
gpuudf runs user-defined functions (UDFs) over 4D-STEM scans on every CPU
core and CUDA GPU of this machine. The built-in UDFs compute virtual
detector images, the centre of mass of each frame, and statistics."""

_EPILOG = """\
examples:
  gpuudf demo --out demo          synthesise a scan, run UDFs on it, keep both in demo/
  gpuudf run scan.h5 --udf masks  virtual bright-field and dark-field images of your file
  gpuudf run --help               what run computes and writes, and its options
  gpuudf info                     the CPU cores and GPUs gpuudf can use"""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gpuudf", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"gpuudf {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="synthesise a small 4D-STEM scan and run built-in and user UDFs on it",
        description="Synthesise a small 4D-STEM scan, run built-in and user UDFs on it in one pass, check them "
        "against NumPy and draw them to gpuudf-demo.png.",
    )
    demo.add_argument("--nav", type=int, default=32, help="scan size per axis (default 32)")
    demo.add_argument("--sig", type=int, default=64, help="frame size per axis (default 64)")
    demo.add_argument(
        "--source",
        choices=("hdf5", "npy", "raw", "memory"),
        default="hdf5",
        help="where the workers read the scan from: a file of this kind (default hdf5), or the array in memory",
    )
    demo.add_argument(
        "--device",
        default=None,
        help="run inline on one device: cpu, cuda:N or sim:N (the simulated CUDA device); "
        "default: every CPU core and GPU, through worker processes",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the figure gpuudf-demo.png and the scan file, kept there to try gpuudf run on "
        "(default: the figure in the current folder, the scan in a temporary folder, removed after the run)",
    )
    demo.set_defaults(func=_demo)
    add_run_command(commands)
    info = commands.add_parser(
        "info",
        help="list the CPU cores and CUDA GPUs gpuudf can use",
        description="List the CPU cores and CUDA GPUs gpuudf can use.",
    )
    info.set_defaults(func=_info)
    return parser


def _silence_stdout() -> None:
    """Point stdout at ``os.devnull``, so that flushing it at exit does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stdout may be no real file
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpuudf`` command.

    Parameters
    ----------
    argv
        The arguments after the command's name; ``None``: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 for success (and for ``--help``, ``--version``
        and a bare ``gpuudf``, which print the help), 1 when the demo's
        results differ from NumPy's, 2 for a usage error or any other
        mistake of the user's, reported in one line on stderr, 130 when
        interrupted; 1, silently, when the reader of stdout has left.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed what it had to
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 0
    try:
        result: int = args.func(args)
    except BrokenPipeError:  # the reader left (`gpuudf run ... | head`): as other tools, stop quietly
        _silence_stdout()
        return 1
    except _USER_ERRORS as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"gpuudf: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpuudf: interrupted", file=sys.stderr)
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
