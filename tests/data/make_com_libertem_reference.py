"""Write ``com_libertem_reference.npz``: LiberTEM 0.16's ``CoMUDF`` results on a small dataset.

Run it with a Python that has LiberTEM 0.16 installed (not gpuudf's venv)::

    /root/lt-venv/bin/python tests/data/make_com_libertem_reference.py

The data are deterministic (``numpy.random.default_rng(0)``): uint16 frames of
shape (8, 9, 16, 16), a bright disk of radius 4 whose centre moves with the
scan position (a linear descan plus a smooth field), Poisson noise, and one
frame of zeros.  The file stores the data, the parameters of every case (as
JSON under ``cases``), and per case ``<case>__<result>`` arrays as LiberTEM's
``.data`` gives them, plus ``guess`` from ``guess_corrections`` of the default
case's ``raw_com``.  ``tests/test_udfs_com.py`` compares gpuudf with them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

NAV = (8, 9)
SIG = (16, 16)
RESULTS = ("raw_com", "raw_shifts", "field", "field_y", "field_x", "magnitude", "divergence", "curl", "regression")

#: name -> (with_params keyword arguments, ROI or None)
CASES: dict[str, dict[str, Any]] = {
    "default": {"params": {}, "roi": None},
    "disk_mean": {"params": {"cy": 7.5, "cx": 8.25, "r": 5.0, "regression": 0}, "roi": None},
    "annulus_rotated_linear": {
        "params": {"cy": 8, "cx": 7, "r": 7.0, "ri": 2.0, "scan_rotation": 30.0, "flip_y": True, "regression": 1},
        "roi": None,
    },
    "roi_linear": {"params": {"scan_rotation": -75.0, "regression": 1}, "roi": "rows 1-6, columns 2-8"},
    "explicit_regression": {
        "params": {"regression": [[0.5, -0.25], [0.1, 0.0], [0.0, -0.05]]},
        "roi": None,
    },
}


def make_data() -> np.ndarray:
    """The uint16 test stack."""
    rng = np.random.default_rng(0)
    ny, nx = NAV
    sy, sx = SIG
    scan_y, scan_x = np.mgrid[:ny, :nx]
    centre_y = 7.5 + 0.2 * scan_y - 0.1 * scan_x + 0.8 * np.sin(scan_x / 2.0)
    centre_x = 8.0 - 0.15 * scan_y + 0.25 * scan_x + 0.6 * np.cos(scan_y / 1.5)
    pix_y, pix_x = np.mgrid[:sy, :sx]
    distance_sq = (pix_y - centre_y[..., None, None]) ** 2 + (pix_x - centre_x[..., None, None]) ** 2
    expected = np.where(distance_sq <= 16.0, 200.0, 3.0)
    data = rng.poisson(expected).astype(np.uint16)
    data[3, 4] = 0  # a frame without intensity
    return data


def roi_mask() -> np.ndarray:
    """The ROI of the ``roi_linear`` case."""
    roi = np.zeros(NAV, dtype=bool)
    roi[1:7, 2:9] = True
    roi[4, 5] = False
    return roi


def main() -> None:
    """Run LiberTEM and write the file next to this script."""
    import libertem.api as lt
    from libertem.udf.com import CoMUDF, guess_corrections

    data = make_data()
    out: dict[str, np.ndarray] = {"data": data, "roi": roi_mask(), "cases": np.array(json.dumps(CASES))}
    with lt.Context.make_with("inline") as ctx, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LiberTEM 0.16 with NumPy 2.4: np.divide(where=...) without out
        ds = ctx.load("memory", data=data, sig_dims=2)
        for name, case in CASES.items():
            params = dict(case["params"])
            if isinstance(params.get("regression"), list):
                params["regression"] = np.array(params["regression"])
            roi = None if case["roi"] is None else roi_mask()
            res = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(**params), roi=roi)
            for key in RESULTS:
                out[f"{name}__{key}"] = np.asarray(res[key].data)
            if name == "default":
                com = res["raw_com"].data
                guess = guess_corrections(com[..., 0], com[..., 1])
                out["guess"] = np.array([guess.scan_rotation, guess.flip_y, guess.cy, guess.cx], dtype=np.float64)
    path = Path(__file__).with_name("com_libertem_reference.npz")
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
