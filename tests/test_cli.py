"""The ``gpuudf`` command: the demo is the project's main job."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gpuudf
from gpuudf import cli
from gpuudf.datasets import DataSet
from gpuudf.udfs import SumUDF

# the demo writes its figure to the current folder
pytestmark = pytest.mark.usefixtures("in_tmp_path")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["demo"], id="defaults"),
        pytest.param(["demo", "--nav", "9", "--sig", "13"], id="small-odd"),
        pytest.param(["demo", "--nav", "5", "--sig", "8", "--device", "sim:0"], id="simulated-device"),
        pytest.param(["demo", "--nav", "5", "--sig", "8", "--source", "npy"], id="npy-file"),
        pytest.param(["demo", "--nav", "5", "--sig", "8", "--source", "raw", "--device", "sim:0"], id="raw-file"),
        pytest.param(["demo", "--nav", "5", "--sig", "8", "--source", "memory"], id="in-memory"),
    ],
)
def test_demo_runs_and_agrees_with_numpy(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "results agree with NumPy" in out
    assert "RESULTS DIFFER" not in out


def test_demo_reports_sizes_it_was_given(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["demo", "--nav", "6", "--sig", "10"])
    assert "nav (6, 6), sig (10, 10), uint16" in capsys.readouterr().out


class WrongSumUDF(SumUDF):
    def merge(self, dest: Any, src: Any) -> None:
        dest.intensity[:] += src.intensity + 1


def test_demo_says_so_when_results_differ_from_numpy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "SumUDF", WrongSumUDF)
    assert cli.main(["demo", "--nav", "4", "--sig", "8"]) == 1
    assert "RESULTS DIFFER FROM NUMPY" in capsys.readouterr().out


def test_python_dash_m_gpuudf_demo_runs_in_a_fresh_interpreter(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpuudf", "demo", "--nav", "6", "--sig", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "results agree with NumPy" in done.stdout
    assert (tmp_path / "gpuudf-demo.png").is_file()


def test_demo_writes_its_figure_where_out_says_and_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures" / "demo"
    assert cli.main(["demo", "--nav", "8", "--sig", "16", "--out", str(out)]) == 0
    figure = out / "gpuudf-demo.png"
    assert f"to {figure}" in capsys.readouterr().out
    image = matplotlib.image.imread(figure)
    assert image.shape[0] > 300
    assert image.shape[1] > 3 * image.shape[0]  # four panels side by side
    assert image[..., :3].std() > 0.1  # not a blank canvas


def test_the_demo_scan_darkens_in_bright_field_where_it_lights_up_in_dark_field() -> None:
    data = cli.synthetic_4dstem(nav_shape=(24, 24), sig_shape=(48, 48))
    detectors = cli.DemoGeometry((48, 48)).detectors()
    bright, dark = np.einsum("abyx,kyx->kab", data, detectors.astype(np.float64))
    assert np.corrcoef(bright.ravel(), dark.ravel())[0, 1] < -0.5


def test_info_lists_the_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    assert "CPU cores" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_synthetic_scan_is_deterministic_uint16_of_the_asked_shape() -> None:
    first = cli.synthetic_4dstem(nav_shape=(5, 7), sig_shape=(9, 11), seed=3)
    again = cli.synthetic_4dstem(nav_shape=(5, 7), sig_shape=(9, 11), seed=3)
    other = cli.synthetic_4dstem(nav_shape=(5, 7), sig_shape=(9, 11), seed=4)
    assert first.shape == (5, 7, 9, 11)
    assert first.dtype == np.uint16
    assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_brightest_frame_udf_matches_numpy(ctx: gpuudf.Context, load_partitioned: Callable[..., DataSet]) -> None:
    data = cli.synthetic_4dstem(nav_shape=(5, 7), sig_shape=(9, 11))
    res = ctx.run_udf(dataset=load_partitioned(data), udf=cli.BrightestFrameUDF())
    assert_array_equal(res["peak"].data, data.max(axis=(2, 3)))
    assert_array_equal(res["maximum"].data, data.max(axis=(0, 1)))


def test_demo_reads_the_scan_from_a_file_it_writes_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--nav", "4", "--sig", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "wrote it to scan.h5 and loaded it with ctx.load('auto', ...): <H5DataSet" in out
