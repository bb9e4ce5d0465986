"""LiberTEM's side of the built-in UDF comparison: run by an interpreter that has LiberTEM, never imported.

Usage::

    LIBERTEM_PYTHON benchmarks/libertem_udfs.py PARAMS_JSON OUT_DIR

``PARAMS_JSON`` names a raw file (``path``, ``nav_shape``, ``sig_shape``,
``dtype``), the ``sources`` to load it as (``"raw"``: LiberTEM's raw dataset
on the file; ``"memory"``: the file read into an array and loaded as
LiberTEM's memory dataset), the ``executors`` (``Context.make_with`` specs:
``"dask"``, ``"pipelined"``, ``"threads"``, ``"inline"``; optionally
``executors_by_source``, a narrower list for a source), ``repeats`` and the
``cases``: ``{"name": ..., "udf": ..., ...}`` with ``udf`` one of
``ApplyMasksUDF`` (``masks_path``: an ``.npy`` stack; ``mask_dtype``;
``shifts``: a constant ``[y, x]``, or ``shifts_path``: an ``.npy`` of one
``(y, x)`` per frame),
``CoMUDF`` (``cy``, ``cx``, ``r``, ``ri``, ``scan_rotation``, ``flip_y``),
``StdDevUDF`` (``dtype``), ``LogsumUDF``, ``PickUDF`` (``roi_path``: an
``.npy`` nav mask), ``SumUDF`` and ``FrameSumUDF`` (defined here: ``process_frame``
writing ``np.sum(frame)`` into a float32 nav buffer ``intensity``).

It writes ``OUT_DIR/figures.json`` (LiberTEM's version, the times of every
source × case × executor, the untimed first run's time of each in
``"first_s"``, and an ``"errors"`` entry for any that failed) and
``OUT_DIR/results.npz`` with each case's buffers from the first executor that
ran it, keyed ``"{source}/{case}/{buffer}"``.  An untimed first run of every
case and executor comes before the timed ones.  The ``__main__`` guard
matters: LiberTEM's dask workers may import this file again.
"""

from __future__ import annotations

import functools
import gc
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def _timed(call: Any) -> tuple[float, Any]:
    gc.disable()
    try:
        start = time.perf_counter()
        value = call()
        return time.perf_counter() - start, value
    finally:
        gc.enable()


@functools.cache
def _frame_sum_udf_class() -> type:
    """A LiberTEM UDF writing ``np.sum(frame)`` per frame; made on first use (this file imports without LiberTEM)."""
    import numpy as np
    from libertem.udf import UDF

    class FrameSumUDF(UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"intensity": self.buffer(kind="nav", dtype="float32")}

        def process_frame(self, frame: Any) -> None:
            self.results.intensity[:] = np.sum(frame)

    return FrameSumUDF


def _make_udf(case: dict[str, Any]) -> tuple[Any, Any]:
    """The LiberTEM UDF of ``case``, and the ROI it runs with."""
    import numpy as np

    name = case["udf"]
    roi = None
    if name == "ApplyMasksUDF":
        from libertem.udf.masks import ApplyMasksUDF

        masks = np.load(case["masks_path"])
        shifts = case.get("shifts")
        if "shifts_path" in case:
            per_frame = np.load(case["shifts_path"]).reshape(-1, 2)
            shifts = ApplyMasksUDF.aux_data(per_frame, kind="nav", extra_shape=(2,), dtype=per_frame.dtype)
        udf = ApplyMasksUDF(mask_factories=lambda: masks, mask_dtype=case.get("mask_dtype"), shifts=shifts)
    elif name == "CoMUDF":
        from libertem.udf.com import CoMUDF

        keys = ("cy", "cx", "r", "ri", "scan_rotation", "flip_y")
        udf = CoMUDF.with_params(**{key: case[key] for key in keys if key in case})
    elif name == "StdDevUDF":
        from libertem.udf.stddev import StdDevUDF

        udf = StdDevUDF(dtype=case.get("dtype"))
    elif name == "LogsumUDF":
        from libertem.udf.logsum import LogsumUDF

        udf = LogsumUDF()
    elif name == "PickUDF":
        from libertem.udf.raw import PickUDF

        udf = PickUDF()
        roi = np.load(case["roi_path"])
    elif name == "SumUDF":
        from libertem.udf.sum import SumUDF

        udf = SumUDF()
    elif name == "FrameSumUDF":
        udf = _frame_sum_udf_class()()
    else:
        msg = f"unknown UDF {name!r}"
        raise ValueError(msg)
    return udf, roi


def _load(ctx: Any, source: str, params: dict[str, Any]) -> Any:
    import numpy as np

    nav_shape, sig_shape = tuple(params["nav_shape"]), tuple(params["sig_shape"])
    if source == "raw":
        return ctx.load("raw", path=params["path"], nav_shape=nav_shape, sig_shape=sig_shape, dtype=params["dtype"])
    data = np.fromfile(params["path"], dtype=params["dtype"]).reshape(*nav_shape, *sig_shape)
    return ctx.load("memory", data=data, sig_dims=len(sig_shape))


def main() -> None:
    params = json.loads(sys.argv[1])
    out_dir = Path(sys.argv[2])
    import libertem
    import numpy as np
    from libertem.api import Context

    figures: dict[str, Any] = {
        "version": libertem.__version__,
        "numpy": np.__version__,
        "times_s": {},
        "first_s": {},
        "errors": {},
    }
    results: dict[str, Any] = {}
    for executor in params["executors"]:
        ctx = Context.make_with(executor)
        try:
            for source in params["sources"]:
                if executor not in params.get("executors_by_source", {}).get(source, params["executors"]):
                    continue
                ds = _load(ctx, source, params)
                for case in params["cases"]:
                    key = f"{source}/{case['name']}/{executor}"
                    try:
                        udf, roi = _make_udf(case)
                        run = functools.partial(ctx.run_udf, dataset=ds, udf=udf, roi=roi)
                        first_s, result = _timed(run)
                        times = [_timed(run)[0] for _ in range(params["repeats"])]
                    except Exception:  # noqa: BLE001 - recorded, and the other cases go on
                        figures["errors"][key] = traceback.format_exc()[-2000:]
                        continue
                    figures["times_s"][key] = times
                    figures["first_s"][key] = first_s
                    for buffer, wrapper in result.items():
                        name = f"{source}/{case['name']}/{buffer}"
                        if name not in results:
                            results[name] = np.asarray(wrapper.data)
                del ds
                gc.collect()
        finally:
            ctx.close()
    np.savez(out_dir / "results.npz", **results)
    (out_dir / "figures.json").write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
