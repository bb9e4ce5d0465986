"""What live plots cost a run, as ratios measured in one run.

A float32 in-memory dataset (2 GiB by default: sig 256×256, nav rows of 64
frames) on the default ``Context()``.  For ``SumSigUDF`` (a nav image) and
``SumUDF`` (a detector image), each repeat times, interleaved so that drift
of the machine hits every variant alike:

- the run without plots (the reference);
- ``plots=PNGPlots(tmpdir)``: one PNG per channel, drawn with Agg;
- ``plots=True`` with Matplotlib's Agg backend: headless, where the plot
  keeps the results and draws nothing until its figure is read (the cost
  of a script that asks for plots without a screen);
- ``plots=True`` as in a notebook with ``%matplotlib inline``: every frame
  is rendered and encoded as PNG; IPython's display is replaced by one that
  drops the frames, since this process has no front end to send them to.

Each plotted run's time is divided by the reference of its own repeat; the
min–max of those ratios is printed (target ≤ 1.05).  The final frame of a
plot is drawn before ``run_udf`` returns, so a short run pays for it in
full: the ratio only means something for runs of a second or more.  Every
variant runs once before the timed repeats (imports, font caches).

Run::

    python benchmarks/bench_plots.py                  # 2 GiB, 3 repeats
    python benchmarks/bench_plots.py --size-gib 0.1   # a smoke test
    python benchmarks/bench_plots.py --json results.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from timing import wall_s  # benchmarks/timing.py, beside this script

import gpuudf
from gpuudf.udfs import SumSigUDF, SumUDF
from gpuudf.viz import PNGPlots
from gpuudf.viz import mpl as viz_mpl

RATIO_TARGET = 1.05
PLOTTED = ("png", "plots_true", "plots_true_inline")
FRAMES_PER_ROW = 64


def make_data(size_gib: float, sig: int) -> np.ndarray:
    """Random float32 frames, nav ``(rows, 64)``, about ``size_gib`` in all (generated in blocks: fast)."""
    frames = max(FRAMES_PER_ROW, int(size_gib * 2**30) // (sig * sig * 4))
    rows = frames // FRAMES_PER_ROW
    block = np.random.default_rng(0).random((FRAMES_PER_ROW, sig, sig), dtype=np.float32)
    return np.tile(block, (rows, 1, 1)).reshape(rows, FRAMES_PER_ROW, sig, sig)


class DroppedDisplay:
    """Stands in for ``IPython.display.display`` and its handle: takes every frame, sends none."""

    def __call__(self, obj: object, display_id: bool = False) -> DroppedDisplay:
        return self

    def update(self, obj: object) -> None:
        pass


@contextlib.contextmanager
def notebook_inline() -> Iterator[None]:
    """Plots as under ``%matplotlib inline``, frames dropped instead of sent to a front end."""
    display_mode, ipython_display = viz_mpl.display_mode, viz_mpl._ipython_display  # noqa: SLF001
    viz_mpl.display_mode = lambda: "inline"
    viz_mpl._ipython_display = DroppedDisplay  # noqa: SLF001
    try:
        yield
    finally:
        viz_mpl.display_mode, viz_mpl._ipython_display = display_mode, ipython_display  # noqa: SLF001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0, help="dataset size (default 2 GiB)")
    parser.add_argument("--sig", type=int, default=256, help="detector side (default 256)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    mpl.use("Agg")  # plots=True draws off screen

    data = make_data(args.size_gib, args.sig)
    ctx = gpuudf.Context()
    ds = ctx.load("memory", data=data)
    figures: dict[str, Any] = {
        "executor": repr(ctx.executor),
        "data": f"float32 {data.shape}, {data.nbytes / 2**30:.2f} GiB",
        "cores": os.cpu_count(),
        "repeats": args.repeats,
    }
    with tempfile.TemporaryDirectory(prefix="gpuudf-bench-plots-") as tmp:
        variants: dict[str, Callable[[], object]] = {
            "none": lambda: None,
            "png": lambda: PNGPlots(tmp),
            "plots_true": lambda: True,
            "plots_true_inline": lambda: True,
        }
        for udf_name, udf_class in (("SumSigUDF", SumSigUDF), ("SumUDF", SumUDF)):
            times: dict[str, list[float]] = {name: [] for name in variants}

            def run(name: str, udf_class: type = udf_class) -> None:
                inline = notebook_inline() if name == "plots_true_inline" else contextlib.nullcontext()
                with inline:
                    ctx.run_udf(dataset=ds, udf=udf_class(), plots=variants[name]())

            for name in variants:
                run(name)
            for _ in range(args.repeats):
                for name in variants:
                    times[name].append(wall_s(lambda name=name: run(name)))
            figures[f"{udf_name}_s"] = times
            for name in PLOTTED:
                ratios = [t / ref for t, ref in zip(times[name], times["none"], strict=True)]
                figures[f"{udf_name}_{name}_ratios"] = ratios
                figures[f"{udf_name}_{name}_best_ratio"] = min(times[name]) / min(times["none"])
    ctx.close()

    print(f"{figures['data']} on {figures['executor']}, {args.repeats} repeats")
    print(f"{'figure':40s} {'no plots s':>10s} {'ratio min':>10s} {'ratio max':>10s}  target")
    for udf_name in ("SumSigUDF", "SumUDF"):
        reference = min(figures[f"{udf_name}_s"]["none"])
        for name in PLOTTED:
            ratios = figures[f"{udf_name}_{name}_ratios"]
            verdict = "met" if max(ratios) <= RATIO_TARGET else "NOT met"  # in every repeat
            label = f"{udf_name} {name} / none"
            print(f"{label:40s} {reference:10.3f} {min(ratios):10.3f} {max(ratios):10.3f}  <= {RATIO_TARGET} {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
