"""The built-in UDFs give LiberTEM 0.16's results on the same file (needs ``--libertem-python``).

LiberTEM runs in its own interpreter, through ``benchmarks/libertem_udfs.py``
(the script the UDF benchmark uses), on a raw uint16 file of the synthetic
scan; gpuudf runs the same UDFs, with the same parameters, on the same file.
Every buffer both return must agree within ``rtol=1e-5`` (the UDFs run in
float64 where they offer it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf.cli import synthetic_4dstem
from gpuudf.udfs import ApplyMasksUDF, CoMUDF, LogsumUDF, PickUDF, StdDevUDF

RTOL = 1e-5
SCRIPT = Path(__file__).parents[1] / "benchmarks" / "libertem_udfs.py"
NAV, SIG = (12, 14), (32, 36)
CONSTANT_SHIFT = (3, -5)
COM_PARAMS: dict[str, Any] = {"cy": 15.5, "cx": 17.0, "r": 9.0, "ri": 2.0, "scan_rotation": 17.0, "flip_y": True}


@pytest.fixture(scope="module")
def scan_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scan as a raw file, with the mask stack and ROI the UDFs use, in one folder."""
    folder = tmp_path_factory.mktemp("libertem")
    data = synthetic_4dstem(nav_shape=NAV, sig_shape=SIG)
    data.tofile(folder / "scan.raw")
    rng = np.random.default_rng(1)
    np.save(folder / "masks.npy", rng.random((5, *SIG)))
    np.save(folder / "roi.npy", rng.random(NAV) < 0.2)
    np.save(folder / "shifts.npy", rng.integers(-20, 21, size=(*NAV, 2)))
    return {"folder": folder, "data": data}


@pytest.fixture(scope="module")
def libertem_results(libertem_python: str, scan_file: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    """LiberTEM's buffers, keyed ``"{case}/{buffer}"``."""
    folder: Path = scan_file["folder"]
    params = {
        "path": str(folder / "scan.raw"),
        "nav_shape": list(NAV),
        "sig_shape": list(SIG),
        "dtype": "uint16",
        "sources": ["raw"],
        "executors": ["inline"],
        "repeats": 0,
        "cases": [
            {"name": "masks", "udf": "ApplyMasksUDF", "masks_path": str(folder / "masks.npy"), "mask_dtype": "float64"},
            {
                "name": "masks-shifted",
                "udf": "ApplyMasksUDF",
                "masks_path": str(folder / "masks.npy"),
                "mask_dtype": "float64",
                "shifts": list(CONSTANT_SHIFT),
            },
            {
                "name": "masks-shifted-per-frame",
                "udf": "ApplyMasksUDF",
                "masks_path": str(folder / "masks.npy"),
                "mask_dtype": "float64",
                "shifts_path": str(folder / "shifts.npy"),
            },
            {"name": "com", "udf": "CoMUDF", **COM_PARAMS},
            {"name": "stddev", "udf": "StdDevUDF", "dtype": "float64"},
            {"name": "logsum", "udf": "LogsumUDF"},
            {"name": "pick", "udf": "PickUDF", "roi_path": str(folder / "roi.npy")},
        ],
    }
    out = folder / "libertem-out"
    out.mkdir()
    done = subprocess.run(
        [libertem_python, str(SCRIPT), json.dumps(params), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=out,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((out / "figures.json").read_text())
    assert not figures["errors"], figures["errors"]
    with np.load(out / "results.npz") as npz:
        return {name.removeprefix("raw/"): npz[name] for name in npz.files}


def gpuudf_udf(case: str, folder: Path) -> tuple[gpuudf.UDF, Any]:
    """gpuudf's UDF for ``case``, made as the LiberTEM script makes its own, and its ROI."""
    if case.startswith("masks"):
        stack = np.load(folder / "masks.npy")
        shifts: Any = None
        if case == "masks-shifted":
            shifts = CONSTANT_SHIFT
        elif case == "masks-shifted-per-frame":
            shifts = ApplyMasksUDF.aux_data(np.load(folder / "shifts.npy"), kind="nav", extra_shape=(2,), dtype=int)
        return ApplyMasksUDF(mask_factories=lambda: stack, mask_dtype="float64", shifts=shifts), None
    if case == "com":
        return CoMUDF.with_params(**COM_PARAMS), None
    if case == "stddev":
        return StdDevUDF(dtype="float64"), None
    if case == "logsum":
        return LogsumUDF(), None
    return PickUDF(), np.load(folder / "roi.npy")


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["masks", "masks-shifted", "masks-shifted-per-frame", "com", "stddev", "logsum", "pick"]
)
def test_a_builtin_udf_gives_libertems_results_on_the_same_file(
    ctx: gpuudf.Context, scan_file: dict[str, Any], libertem_results: dict[str, np.ndarray[Any, Any]], case: str
) -> None:
    folder: Path = scan_file["folder"]
    dataset = ctx.load("raw", path=folder / "scan.raw", nav_shape=NAV, sig_shape=SIG, dtype="uint16")
    udf, roi = gpuudf_udf(case, folder)
    result = ctx.run_udf(dataset=dataset, udf=udf, roi=roi)
    theirs = {key.split("/", 1)[1]: value for key, value in libertem_results.items() if key.startswith(f"{case}/")}
    assert theirs, f"LiberTEM returned no buffers for {case}"
    missing = sorted(set(theirs) - set(result))
    assert not missing, f"gpuudf's {type(udf).__name__} lacks LiberTEM's buffers {missing}"
    for name, expected in theirs.items():
        actual = result[name].data
        assert actual.shape == expected.shape, f"{case}/{name}: {actual.shape}, LiberTEM {expected.shape}"
        np.testing.assert_allclose(
            actual,
            expected,
            rtol=RTOL,
            atol=RTOL * float(np.nanmax(np.abs(expected)) or 1),
            equal_nan=True,
            err_msg=f"{case}/{name}",
        )
