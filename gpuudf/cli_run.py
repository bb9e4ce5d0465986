"""``gpuudf run``: a built-in UDF over the user's own file, its results as ``.npy`` files and pictures.

Policy
------
- The file is loaded with ``load("auto", ...)``: its contents decide between
  ``.npy``, HDF5 and raw, and a raw file needs ``--nav-shape``,
  ``--sig-shape`` and ``--dtype``.
- Every buffer a UDF returns is written whole, as ``run_udf`` returns it (NaN
  outside a ROI), to ``STEM-UDF-BUFFER.npy``; every 2-D image a ``nav`` or
  ``sig`` buffer holds is drawn to a PNG, one per channel of an extra axis
  (``STEM-UDF-BUFFER-CHANNEL.png``).  ``single`` buffers are not drawn.
- A picture shows the array as it indexes, row 0 at the top, with a colour
  bar, and its title names the file, the UDF, the buffer and the channel.
- A mistake in the options is a :class:`CommandLineError` that names the
  option, raised before any frame is read; mistakes the library finds (the
  file, the device) keep the library's own exception.  ``gpuudf.cli`` turns
  both into one line on stderr.
- Matplotlib is imported only when a picture is drawn, and draws on the Agg
  canvas: no display is needed.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from gpuudf import masks
from gpuudf.context import Context
from gpuudf.datasets.auto import detect_kind
from gpuudf.results import BufferWrapper
from gpuudf.udf import UDF
from gpuudf.udfs import ApplyMasksUDF, CoMUDF, StdDevUDF, SumSigUDF, SumUDF

__all__ = [
    "UDF_CHOICES",
    "CommandLineError",
    "Geometry",
    "RoiRectangle",
    "add_run_command",
    "draw_image",
    "parse_roi",
    "parse_shape",
    "roi_mask",
    "run_command",
    "udf_class_name",
    "write_results",
]

#: ``--udf`` choices and what each runs.
UDF_CHOICES = {
    "sum": "SumUDF: the sum of all frames",
    "sumsig": "SumSigUDF: the sum of each frame",
    "masks": "ApplyMasksUDF: virtual bright-field and annular dark-field images",
    "com": "CoMUDF: the centre of mass of each frame",
    "stddev": "StdDevUDF: per-pixel mean, variance and standard deviation over the frames",
}

#: Names for the channels of buffers with an extra axis, where they have one.
_CHANNELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("masks", "intensity"): ("bright-field", "annular-dark-field"),
    ("com", "raw_com"): ("y", "x"),
    ("com", "raw_shifts"): ("y", "x"),
    ("com", "field"): ("y", "x"),
}

_GEOMETRY_OPTIONS = ("cy", "cx", "r", "ri", "ro")


class CommandLineError(ValueError):
    """An option of the ``gpuudf`` command that cannot be used as given; the message names it."""


def _say(text: str) -> None:
    print(text)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"32,48"`` or ``"32x48"`` as ``(32, 48)``: the ``type`` of the shape options.

    Raises
    ------
    argparse.ArgumentTypeError
        Unless every part is a positive integer.
    """
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        msg = f"{text!r} is not a shape: give positive integers separated by commas, e.g. 32,48"
        raise argparse.ArgumentTypeError(msg)
    return shape


class RoiRectangle(NamedTuple):
    """A ``--roi`` as given, and the index it stands for: one slice or integer per scan axis."""

    text: str
    axes: tuple[slice | int, ...]


def parse_roi(text: str) -> RoiRectangle:
    """``"y0:y1,x0:x1"`` as a rectangle of scan positions: the ``type`` of ``--roi``.

    Each comma-separated part indexes one scan axis as a Python slice
    (``start:stop`` or ``start:stop:step``, stop excluded, negative numbers
    counted from the end, a missing bound meaning the edge) or picks one
    index.  ``"10:20,:"`` selects rows 10 to 19 of every column.

    Raises
    ------
    argparse.ArgumentTypeError
        For anything else.
    """
    index: list[slice | int] = []
    for part in text.split(","):
        pieces = part.strip().split(":")
        try:
            numbers = [int(piece) if piece.strip() else None for piece in pieces]
        except ValueError:
            numbers = []
        if len(pieces) == 1 and numbers and numbers[0] is not None:
            index.append(numbers[0])
        elif 2 <= len(pieces) <= 3 and len(numbers) == len(pieces) and numbers[2:] != [0]:
            index.append(slice(*numbers))
        else:
            msg = (
                f"{text!r} is not a ROI: give one range start:stop (or one index) per scan axis, "
                "separated by commas, e.g. 10:20,0:32"
            )
            raise argparse.ArgumentTypeError(msg)
    return RoiRectangle(text, tuple(index))


def roi_mask(rectangles: Sequence[RoiRectangle], nav_shape: tuple[int, ...]) -> np.ndarray[Any, Any] | None:
    """The scan positions any of ``rectangles`` selects, as a mask of ``nav_shape``; ``None`` for none given.

    Raises
    ------
    CommandLineError
        For a rectangle with the wrong number of axes, an index outside the
        scan, or a selection of no position at all.
    """
    if not rectangles:
        return None
    mask = np.zeros(nav_shape, dtype=bool)
    for rectangle in rectangles:
        if len(rectangle.axes) != len(nav_shape):
            count = f"{len(rectangle.axes)} {'axis' if len(rectangle.axes) == 1 else 'axes'}"
            msg = f"--roi {rectangle.text!r}: {count} given, the scan has {len(nav_shape)} (nav shape {nav_shape})"
            raise CommandLineError(msg)
        for axis, (index, length) in enumerate(zip(rectangle.axes, nav_shape, strict=True)):
            if isinstance(index, int) and not -length <= index < length:
                msg = f"--roi {rectangle.text!r}: index {index} is outside scan axis {axis} of length {length}"
                raise CommandLineError(msg)
        mask[rectangle.axes] = True
    if not mask.any():
        texts = " ".join(repr(rectangle.text) for rectangle in rectangles)
        msg = f"--roi {texts} selects no scan position of nav shape {nav_shape}"
        raise CommandLineError(msg)
    return mask


class Geometry(NamedTuple):
    """Where the virtual detectors of ``masks`` and the mask of ``com`` lie, in detector pixels.

    ``masks``: a bright-field disk of radius ``r`` and an annular dark-field
    ring from ``ri`` to ``ro``, both around ``(cy, cx)``.  ``com``: the centre
    of mass of the pixels between ``ri`` and ``r`` from ``(cy, cx)``, and the
    shift from ``(cy, cx)``.
    """

    cy: float
    cx: float
    r: float
    ri: float
    ro: float

    @classmethod
    def from_options(cls, sig_shape: tuple[int, ...], udf: str, args: argparse.Namespace) -> Geometry:
        """The options given, and for the rest the defaults of ``udf`` on frames of ``sig_shape``.

        Defaults: the centre of the frame; ``r`` a quarter of its smaller
        side; for ``masks`` ``ri = r`` and ``ro`` half the smaller side, for
        ``com`` ``ri = 0``.

        Raises
        ------
        CommandLineError
            For frames that are not 2-D, or radii out of order.
        """
        if len(sig_shape) != 2:
            msg = f"--udf {udf} needs 2-D frames; the file's are {sig_shape}"
            raise CommandLineError(msg)
        height, width = sig_shape
        side = min(height, width)
        r = side / 4 if args.r is None else args.r
        ri = (r if udf == "masks" else 0.0) if args.ri is None else args.ri
        ro = side / 2 if args.ro is None else args.ro
        geometry = cls(
            cy=(height - 1) / 2 if args.cy is None else args.cy,
            cx=(width - 1) / 2 if args.cx is None else args.cx,
            r=r,
            ri=ri,
            ro=ro,
        )
        if geometry.r <= 0:
            msg = f"--r {geometry.r:g}: the radius must be positive"
            raise CommandLineError(msg)
        if not 0 <= geometry.ri < (geometry.ro if udf == "masks" else geometry.r):
            outer = "--ro" if udf == "masks" else "--r"
            limit = geometry.ro if udf == "masks" else geometry.r
            msg = f"--ri {geometry.ri:g}: the inner radius must be at least 0 and below {outer} ({limit:g})"
            raise CommandLineError(msg)
        return geometry


def _make_udf(name: str, sig_shape: tuple[int, ...], args: argparse.Namespace) -> UDF:
    if name == "sum":
        return SumUDF()
    if name == "sumsig":
        return SumSigUDF()
    if name == "stddev":
        return StdDevUDF()
    geometry = Geometry.from_options(sig_shape, name, args)
    centre = (geometry.cy, geometry.cx)
    if name == "masks":
        # partials, not arrays: each worker builds the masks itself, and they pickle small
        return ApplyMasksUDF(
            mask_factories=[
                functools.partial(masks.bright_field, sig_shape, centre, geometry.r),
                functools.partial(masks.annular_dark_field, sig_shape, centre, geometry.ri, geometry.ro),
            ]
        )
    return CoMUDF.with_params(cy=geometry.cy, cx=geometry.cx, r=geometry.r, ri=geometry.ri)


def _check_geometry_options(names: Sequence[str], args: argparse.Namespace) -> None:
    given = [option for option in _GEOMETRY_OPTIONS if getattr(args, option) is not None]
    if not given:
        return
    if not {"masks", "com"} & set(names):
        msg = f"--{given[0]} applies to --udf masks and --udf com only"
        raise CommandLineError(msg)
    if "ro" in given and "masks" not in names:
        msg = "--ro applies to --udf masks only"
        raise CommandLineError(msg)


def draw_image(path: Path, image: np.ndarray[Any, Any], title: str, kind: str) -> Path:
    """Draw ``image`` to the PNG ``path``: row 0 at the top, a colour bar, ``title`` above.

    ``kind`` (``"nav"`` or ``"sig"``) labels the axes as scan or detector
    coordinates.  NaN (outside a ROI) shows grey.
    """
    import matplotlib as mpl  # noqa: PLC0415 - only pictures need Matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    height, width = image.shape
    aspect = min(max(width / height, 0.5), 2.0)
    figure = Figure(figsize=(3.2 * aspect + 1.6, 3.8), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    colours = mpl.colormaps["viridis"].with_extremes(bad="lightgrey")
    shown = ax.imshow(np.asarray(image, dtype=np.float64), cmap=colours, interpolation="nearest")
    figure.colorbar(shown, ax=ax, shrink=0.9)
    ax.set_title(title, fontsize=9)
    x_label, y_label = ("scan x", "scan y") if kind == "nav" else ("detector x (px)", "detector y (px)")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    figure.savefig(path, dpi=100)
    return path


def _images(udf: str, name: str, buffer: BufferWrapper, nav_dims: int) -> list[tuple[str, str, np.ndarray[Any, Any]]]:
    """The 2-D images a buffer holds: ``(file suffix, title suffix, image)`` for each channel."""
    data = buffer.data
    image_dims = {"nav": nav_dims, "sig": 2}.get(buffer.kind, 0)
    if image_dims != 2 or data.ndim < 2 or not np.isrealobj(data) or data.dtype == object:
        return []
    channels = data.shape[2:]
    if not channels:
        return [("", "", data)]
    labels = _CHANNELS.get((udf, name), ())
    found = []
    for flat, index in enumerate(np.ndindex(*channels)):
        where = ", ".join(map(str, index))
        if len(channels) == 1 and flat < len(labels):
            found.append((f"-{labels[flat]}", f"[..., {where}] ({labels[flat].replace('-', ' ')})", data[:, :, *index]))
        else:
            found.append((f"-{'-'.join(map(str, index))}", f"[..., {where}]", data[:, :, *index]))
    return found


def write_results(
    results: Mapping[str, BufferWrapper], *, udf: str, stem: str, out: Path, nav_dims: int, source: str
) -> list[Path]:
    """Write each buffer of one UDF's ``results`` to ``out`` as ``.npy``, and its 2-D images as PNG.

    Returns
    -------
    list of Path
        The files written, in the order of the buffers.
    """
    written = []
    udf_class = udf_class_name(udf)
    for name, buffer in results.items():
        base = f"{stem}-{udf}-{name}"
        array_path = out / f"{base}.npy"
        np.save(array_path, buffer.data)
        written.append(array_path)
        for suffix, title_suffix, image in _images(udf, name, buffer, nav_dims):
            title = f"{source}: {udf_class} {name}{title_suffix}"
            written.append(draw_image(out / f"{base}{suffix}.png", image, title, buffer.kind))
    return written


def udf_class_name(udf: str) -> str:
    """``"CoMUDF"`` for ``"com"``: the class a ``--udf`` choice runs."""
    return UDF_CHOICES[udf].split(":", maxsplit=1)[0]


def _load_arguments(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.file)
    raw = {"nav_shape": args.nav_shape, "sig_shape": args.sig_shape, "dtype": args.dtype}
    given = {name: value for name, value in raw.items() if value is not None}
    # "raw" stands for "neither": the options a raw file needs are named here, not the loader's keywords
    kind = detect_kind(path, raw_arguments_given=True)
    if kind == "raw" and len(given) < len(raw):
        missing = ", ".join(f"--{name.replace('_', '-')}" for name in raw if name not in given)
        msg = f"{path} is neither .npy nor HDF5; to read it as a flat binary (raw) file, give {missing}"
        raise CommandLineError(msg)
    if kind != "raw" and args.dtype is not None:
        msg = f"--dtype applies to raw files; {path} is read as {kind}, whose header gives the dtype"
        raise CommandLineError(msg)
    if args.ds_path is not None:
        if kind != "hdf5":
            msg = f"--ds-path applies to HDF5 files; {path} is read as {kind}"
            raise CommandLineError(msg)
        given["ds_path"] = args.ds_path
    return {"path": path, **given}


def run_command(args: argparse.Namespace) -> int:
    """``gpuudf run``: load the file, run the UDFs in one pass, write and list what they returned."""
    names = list(dict.fromkeys(args.udf))
    _check_geometry_options(names, args)
    arguments = _load_arguments(args)
    out: Path = args.out
    try:  # before the run, which may take long, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"--out {out}: cannot make this folder: {exc.strerror or exc}"
        raise CommandLineError(msg) from exc
    context = Context() if args.device is None else Context.make_with("inline", device=args.device)
    with context as ctx:
        ds = ctx.load("auto", **arguments)
        nav_shape, sig_shape = tuple(ds.shape.nav), tuple(ds.shape.sig)
        roi = roi_mask(args.roi, nav_shape)
        udfs = [_make_udf(name, sig_shape, args) for name in names]
        frames = int(np.prod(nav_shape)) if roi is None else int(roi.sum())
        start = time.perf_counter()
        results = ctx.run_udf(dataset=ds, udf=udfs, roi=roi, progress=not args.no_progress)
        elapsed = time.perf_counter() - start
        executor = ctx.executor
    path: Path = arguments["path"]
    _say(
        f"ran {', '.join(udf_class_name(name) for name in names)} on {path.name} "
        f"(nav {nav_shape}, sig {sig_shape}, {ds.dtype}; {frames} frames) on {executor}: {elapsed:.2f} s"
    )
    written = []
    for name, result in zip(names, results, strict=True):
        written += write_results(result, udf=name, stem=path.stem, out=out, nav_dims=len(nav_shape), source=path.name)
    _say(f"wrote {len(written)} files:")
    for file in written:
        _say(f"  {file}")
    return 0


_RUN_DESCRIPTION = """\
Run built-in UDFs over a 4D-STEM file (.npy, HDF5, or raw with --nav-shape,
--sig-shape and --dtype), in one pass, and write what they return: each
result buffer as STEM-UDF-BUFFER.npy and each 2-D image in it as a PNG,
one per channel (STEM-UDF-BUFFER-CHANNEL.png), where STEM is the file's
name without its extension."""

_RUN_EPILOG = """\
UDFs (--udf):
{udfs}

detector geometry (pixels; masks and com only):
  masks: a bright-field disk of radius --r, and an annular dark-field ring
         from --ri to --ro, around (--cy, --cx)
  com:   the centre of mass of the pixels from --ri to --r around (--cy, --cx)
  defaults: the frame's centre; --r a quarter of the smaller frame side;
  --ri = --r for masks, 0 for com; --ro half the smaller frame side

region of interest:
  --roi y0:y1,x0:x1 selects scan rows y0 to y1 - 1 and columns x0 to x1 - 1,
  as Python slices do (a bound left out is the edge, a negative one counts
  from the end, a single number is one row or column); repeat --roi for
  several rectangles. Outside the ROI, images are NaN (drawn grey). A ROI
  that starts with a minus sign takes an equals sign: --roi=-10:,:

examples:
  gpuudf run scan.h5 --udf masks --out results
  gpuudf run scan.h5 --udf com --r 12 --roi 0:64,:
  gpuudf run scan.raw --nav-shape 128,128 --sig-shape 256,256 --dtype uint16 --udf sum --udf stddev"""


def add_run_command(commands: Any) -> None:
    """Add ``run`` to the ``gpuudf`` command's subcommands (an ``argparse`` subparsers action)."""
    run = commands.add_parser(
        "run",
        help="run a built-in UDF over your own file and write its results",
        description=_RUN_DESCRIPTION,
        epilog=_RUN_EPILOG.format(udfs="\n".join(f"  {name:7} {text}" for name, text in UDF_CHOICES.items())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("file", help="the scan: a .npy, HDF5 or raw file")
    run.add_argument(
        "--udf",
        action="append",
        required=True,
        choices=tuple(UDF_CHOICES),
        metavar="UDF",
        help=f"the UDF to run: {', '.join(UDF_CHOICES)} (see below); repeat for several",
    )
    run.add_argument(
        "--roi",
        action="append",
        type=parse_roi,
        default=[],
        metavar="Y0:Y1,X0:X1",
        help="only these scan positions (see below); repeat for several rectangles",
    )
    run.add_argument(
        "--out", type=Path, default=Path(), metavar="DIR", help="folder for the results (default: the current folder)"
    )
    run.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="run inline on one device: cpu, cuda:N or sim:N (the simulated CUDA device); "
        "default: every CPU core and GPU, through worker processes",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    files = run.add_argument_group("file layout")
    files.add_argument(
        "--nav-shape", type=parse_shape, metavar="N,...", help="raw files: the scan's shape, e.g. 128,128"
    )
    files.add_argument(
        "--sig-shape", type=parse_shape, metavar="N,...", help="raw files: a frame's shape, e.g. 256,256"
    )
    files.add_argument("--dtype", help="raw files: how a value is stored, e.g. uint16, float32, >u2")
    files.add_argument("--ds-path", metavar="PATH", help="HDF5 files: the array to read, where the file holds several")
    geometry = run.add_argument_group("detector geometry (see below)")
    geometry.add_argument("--cy", type=float, help="centre row in pixels")
    geometry.add_argument("--cx", type=float, help="centre column in pixels")
    geometry.add_argument("--r", type=float, help="radius: bright-field disk (masks), outer mask radius (com)")
    geometry.add_argument("--ri", type=float, help="inner radius: dark-field ring (masks), centre left out (com)")
    geometry.add_argument("--ro", type=float, help="outer radius of the dark-field ring (masks)")
    run.set_defaults(func=run_command)
