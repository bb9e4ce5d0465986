"""The ``gpuudf`` command: the demo (the project's main job), ``run`` on a file, and behaving as a command-line tool."""

from __future__ import annotations

import argparse
import re
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
from gpuudf import cli, cli_run, masks
from gpuudf.backends.cuda import cupy_usable
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


# ---------------------------------------------------------------- the command as a command-line tool


def test_version_option_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"gpuudf {gpuudf.__version__}\n"


def test_bare_command_prints_the_help_to_stdout_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("usage: gpuudf")
    for command in ("demo", "run", "info"):
        assert command in captured.out
    assert not captured.err


@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["info"]], ids=["gpuudf", "demo", "run", "info"])
def test_help_texts_are_plain_text_without_restructuredtext_markup(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: gpuudf")
    assert "``" not in text
    assert not re.search(r":\w+:`", text)  # roles such as :class:`...`
    assert not re.search(r"^\s*\.\. \w+::", text, re.MULTILINE)  # directives


# ---------------------------------------------------------------- gpuudf run


def _scan(shape: tuple[int, int, int, int] = (6, 7, 12, 14), seed: int = 1) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).poisson(5, shape).astype(np.uint16)


def _run(path: Path, *options: str) -> list[str]:
    return ["run", str(path), "--device", "cpu", "--no-progress", *options]


def _default_centre(sig: tuple[int, ...]) -> tuple[float, float]:
    return ((sig[0] - 1) / 2, (sig[1] - 1) / 2)


def _com_shifts(data: np.ndarray[Any, Any], centre: tuple[float, float], r: float, ri: float) -> np.ndarray[Any, Any]:
    y, x = np.mgrid[: data.shape[2], : data.shape[3]]
    distance = np.hypot(y - centre[0], x - centre[1])
    inside = ((distance <= r) & (distance > ri)).astype(np.float64) if ri > 0 else (distance <= r).astype(np.float64)
    total = np.einsum("abyx,yx->ab", data, inside)
    com_y = np.einsum("abyx,yx->ab", data, inside * y) / total
    com_x = np.einsum("abyx,yx->ab", data, inside * x) / total
    return np.stack([com_y - centre[0], com_x - centre[1]], axis=-1)


def _references(data: np.ndarray[Any, Any]) -> dict[str, dict[str, np.ndarray[Any, Any]]]:
    """What each --udf must write, by NumPy, with the command's default geometry."""
    sig = data.shape[2:]
    centre = _default_centre(sig)
    side = min(sig)
    detectors = np.stack(
        [
            masks.bright_field(sig, centre, side / 4, dtype=np.float64),
            masks.annular_dark_field(sig, centre, side / 4, side / 2, dtype=np.float64),
        ]
    )
    wide = data.astype(np.float64)
    return {
        "sum": {"intensity": wide.sum(axis=(0, 1))},
        "sumsig": {"intensity": wide.sum(axis=(2, 3))},
        "masks": {"intensity": np.einsum("abyx,kyx->abk", wide, detectors)},
        "com": {"raw_shifts": _com_shifts(wide, centre, side / 4, 0.0)},
        "stddev": {
            "mean": wide.mean(axis=(0, 1)),
            "var": wide.var(axis=(0, 1)),
            "std": wide.std(axis=(0, 1)),
            "num_frames": np.array([data.shape[0] * data.shape[1]]),
        },
    }


#: The pictures each --udf draws, by file name after STEM-UDF-.
PICTURES = {
    "sum": ["intensity"],
    "sumsig": ["intensity"],
    "masks": ["intensity-bright-field", "intensity-annular-dark-field"],
    "com": [
        *(f"{name}-{axis}" for name in ("raw_com", "raw_shifts", "field") for axis in "yx"),
        *("field_y", "field_x", "magnitude", "divergence", "curl"),
    ],
    "stddev": ["varsum", "sum", "var", "std", "mean"],
}


@pytest.mark.parametrize("udf", list(cli_run.UDF_CHOICES))
@pytest.mark.parametrize("kind", ["npy", "hdf5"])
def test_run_writes_every_result_buffer_equal_to_numpy_and_its_pictures(
    udf: str,
    kind: str,
    tmp_path: Path,
    data_file: Callable[..., tuple[Path, dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _scan()
    path, _ = data_file(kind, data, name="scan")
    out = tmp_path / "results"
    assert cli.main(_run(path, "--udf", udf, "--out", str(out))) == 0
    printed = capsys.readouterr().out
    for name, reference in _references(data)[udf].items():
        written = np.load(out / f"scan-{udf}-{name}.npy")
        np.testing.assert_allclose(written, reference, rtol=1e-5, atol=1e-4)
    pictures = sorted(out.glob("*.png"))
    assert sorted(p.name for p in pictures) == sorted(f"scan-{udf}-{name}.png" for name in PICTURES[udf])
    for picture in pictures:
        assert str(picture) in printed
        image = matplotlib.image.imread(picture)
        assert image.ndim == 3
        assert image[..., :3].std() > 0.05  # drawn, not blank
    for array in out.glob("*.npy"):
        assert str(array) in printed


def test_run_reads_a_raw_file_given_its_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _scan()
    path = tmp_path / "scan.bin"
    data.tofile(path)
    layout = ["--nav-shape", "6,7", "--sig-shape", "12x14", "--dtype", "uint16"]
    assert cli.main(_run(path, "--udf", "sum", "--out", str(tmp_path), *layout)) == 0
    np.testing.assert_allclose(np.load(tmp_path / "scan-sum-intensity.npy"), data.sum(axis=(0, 1)), rtol=1e-6)
    assert "nav (6, 7), sig (12, 14), uint16; 42 frames" in capsys.readouterr().out


def test_run_writes_into_the_current_folder_by_default(in_tmp_path: Path) -> None:
    np.save(in_tmp_path / "scan.npy", _scan())
    assert cli.main(_run(in_tmp_path / "scan.npy", "--udf", "sumsig")) == 0
    assert (in_tmp_path / "scan-sumsig-intensity.npy").is_file()
    assert (in_tmp_path / "scan-sumsig-intensity.png").is_file()


def test_run_with_several_udfs_runs_them_in_one_pass_and_writes_each(tmp_path: Path) -> None:
    data = _scan()
    np.save(tmp_path / "scan.npy", data)
    assert cli.main(_run(tmp_path / "scan.npy", "--udf", "sum", "--udf", "com", "--out", str(tmp_path))) == 0
    references = _references(data)
    np.testing.assert_allclose(np.load(tmp_path / "scan-sum-intensity.npy"), references["sum"]["intensity"], rtol=1e-6)
    np.testing.assert_allclose(
        np.load(tmp_path / "scan-com-raw_shifts.npy"), references["com"]["raw_shifts"], rtol=1e-5, atol=1e-5
    )


def test_run_shows_a_progress_bar_unless_told_not_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "scan.npy", _scan())
    command = ["run", str(tmp_path / "scan.npy"), "--udf", "sum", "--device", "cpu", "--out", str(tmp_path)]
    assert cli.main(command) == 0
    assert "42/42" in capsys.readouterr().err
    assert cli.main([*command, "--no-progress"]) == 0
    assert not capsys.readouterr().err


def test_run_geometry_options_move_the_detectors(tmp_path: Path) -> None:
    data = _scan((5, 6, 16, 16))
    np.save(tmp_path / "scan.npy", data)
    geometry = ["--cy", "6", "--cx", "9", "--r", "3", "--ri", "4", "--ro", "7"]
    assert cli.main(_run(tmp_path / "scan.npy", "--udf", "masks", "--out", str(tmp_path), *geometry)) == 0
    detectors = np.stack(
        [
            masks.bright_field((16, 16), (6, 9), 3, dtype=np.float64),
            masks.annular_dark_field((16, 16), (6, 9), 4, 7, dtype=np.float64),
        ]
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "scan-masks-intensity.npy"), np.einsum("abyx,kyx->abk", data, detectors), rtol=1e-6
    )
    geometry = ["--cy", "6", "--cx", "9", "--r", "5", "--ri", "1"]
    assert cli.main(_run(tmp_path / "scan.npy", "--udf", "com", "--out", str(tmp_path), *geometry)) == 0
    np.testing.assert_allclose(
        np.load(tmp_path / "scan-com-raw_shifts.npy"),
        _com_shifts(data.astype(np.float64), (6.0, 9.0), 5.0, 1.0),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("rois", "selected"),
    [
        pytest.param(["1:3,2:5"], (slice(1, 3), slice(2, 5)), id="rectangle"),
        pytest.param(["-2:,:"], (slice(-2, None), slice(None)), id="last-rows"),
        pytest.param(["4,::2"], (4, slice(None, None, 2)), id="one-row-every-other-column"),
    ],
)
def test_run_roi_selects_a_rectangle_of_the_scan_and_leaves_nan_outside(
    rois: list[str], selected: tuple[Any, ...], tmp_path: Path
) -> None:
    data = _scan()
    np.save(tmp_path / "scan.npy", data)
    options = [f"--roi={roi}" for roi in rois]  # "=": argparse would take "-2:,:" for an option
    assert cli.main(_run(tmp_path / "scan.npy", "--udf", "sumsig", "--out", str(tmp_path), *options)) == 0
    written = np.load(tmp_path / "scan-sumsig-intensity.npy")
    inside = np.zeros(data.shape[:2], dtype=bool)
    inside[selected] = True
    np.testing.assert_allclose(written[inside], data.sum(axis=(2, 3))[inside])
    assert np.isnan(written[~inside]).all()
    assert matplotlib.image.imread(tmp_path / "scan-sumsig-intensity.png").ndim == 3


def test_run_roi_repeated_selects_the_union_of_its_rectangles(tmp_path: Path) -> None:
    data = _scan()
    np.save(tmp_path / "scan.npy", data)
    roi = ["--roi", "0,:", "--roi", ":,0"]
    assert cli.main(_run(tmp_path / "scan.npy", "--udf", "sum", "--out", str(tmp_path), *roi)) == 0
    expected = data[0].sum(axis=0) + data[1:, 0].sum(axis=0)
    np.testing.assert_allclose(np.load(tmp_path / "scan-sum-intensity.npy"), expected, rtol=1e-6)


def test_parse_roi_reads_python_slices_and_indices() -> None:
    assert cli_run.parse_roi("1:3, 2:").axes == (slice(1, 3), slice(2, None))
    assert cli_run.parse_roi("-1,::2").axes == (-1, slice(None, None, 2))


@pytest.mark.parametrize("text", ["", "a:b,1:2", "1:2:3:4,:", "1:2:0,:", "1,,2", "1.5,2"])
def test_parse_roi_refuses_what_is_not_a_rectangle(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a ROI"):
        cli_run.parse_roi(text)


# ---------------------------------------------------------------- errors: one line, exit status 2

#: The "no GPU" error paths need a machine where CuPy sees no GPU (this suite's usual one).
NEEDS_NO_GPU = pytest.mark.skipif(cupy_usable(), reason="CuPy sees a GPU here: cuda:0 works")


def _assert_one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("gpuudf: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in err


@pytest.fixture
def scan_npy(tmp_path: Path) -> Path:
    path = tmp_path / "scan.npy"
    np.save(path, _scan())
    return path


@pytest.mark.parametrize(
    ("options", "words"),
    [
        pytest.param(["--udf", "nosuch"], ["--udf", "invalid choice", "nosuch"], id="bad-udf"),
        pytest.param([], ["--udf", "required"], id="no-udf"),
        pytest.param(["--udf", "sum", "--device", "cuda:0"], ["cuda:0"], id="no-gpu", marks=NEEDS_NO_GPU),
        pytest.param(["--udf", "sum", "--device", "gpu"], ["unknown device 'gpu'"], id="unknown-device"),
        pytest.param(["--udf", "sum", "--roi", "1-3,2"], ["--roi", "not a ROI"], id="roi-syntax"),
        pytest.param(["--udf", "sum", "--roi", "1:3"], ["--roi", "1 axis given", "(6, 7)"], id="roi-axes"),
        pytest.param(["--udf", "sum", "--roi", "9:12,:"], ["--roi", "selects no scan position"], id="roi-empty"),
        pytest.param(["--udf", "sum", "--roi", "6,0"], ["--roi", "index 6 is outside"], id="roi-outside"),
        pytest.param(["--udf", "sum", "--r", "3"], ["--r", "masks", "com"], id="geometry-for-sum"),
        pytest.param(["--udf", "masks", "--ri", "5", "--ro", "4"], ["--ri 5", "--ro"], id="rings-out-of-order"),
        pytest.param(["--udf", "com", "--cy", "40"], ["cy", "outside the frame"], id="centre-outside"),
        pytest.param(["--udf", "sum", "--dtype", "uint8"], ["--dtype", "raw files"], id="dtype-for-npy"),
        pytest.param(["--udf", "sum", "--nav-shape", "3,-1"], ["--nav-shape", "not a shape"], id="bad-shape"),
    ],
)
def test_run_mistakes_are_one_line_on_stderr_and_exit_2(
    options: list[str], words: list[str], scan_npy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(_run(scan_npy, *options)) == 2
    _assert_one_line_error(capsys, *words)


def test_run_on_a_missing_file_is_one_line_on_stderr_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(_run(tmp_path / "nosuch.h5", "--udf", "sum")) == 2
    _assert_one_line_error(capsys, "no such file", "nosuch.h5")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        pytest.param("scan.dat", b"not a scan at all", ["neither .npy nor HDF5", "--nav-shape"], id="unknown"),
        pytest.param("scan.npy", b"\x93NUMPY garbage", ["scan.npy", "npy"], id="broken-npy"),
        pytest.param("scan.h5", b"garbage", ["scan.h5", "not an HDF5 file"], id="not-hdf5"),
    ],
)
def test_run_on_a_file_it_cannot_read_is_one_line_on_stderr_and_exits_2(
    name: str, content: bytes, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / name).write_bytes(content)
    assert cli.main(_run(tmp_path / name, "--udf", "sum")) == 2
    _assert_one_line_error(capsys, *words)


def test_run_raw_file_without_its_full_layout_names_the_missing_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "scan.raw").write_bytes(bytes(100))
    assert cli.main(_run(tmp_path / "scan.raw", "--udf", "sum", "--dtype", "uint8")) == 2
    _assert_one_line_error(capsys, "--nav-shape, --sig-shape")


def test_run_into_a_folder_it_cannot_make_fails_before_the_run(
    scan_npy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(_run(scan_npy, "--udf", "sum", "--out", str(scan_npy))) == 2
    _assert_one_line_error(capsys, "--out", "cannot make this folder")


@NEEDS_NO_GPU
def test_demo_on_cuda_0_without_a_gpu_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--nav", "4", "--sig", "8", "--device", "cuda:0"]) == 2
    _assert_one_line_error(capsys, "cuda:0", "CuPy")


def test_an_unknown_command_is_one_line_on_stderr_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["nosuch"]) == 2
    _assert_one_line_error(capsys, "invalid choice", "--help")


def test_errors_in_a_fresh_interpreter_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpuudf", "run", "nosuch.h5", "--udf", "sum", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("gpuudf: error: auto dataset: no such file")
    assert done.stderr.count("\n") == 1
    assert not done.stdout


def test_run_in_a_fresh_interpreter_writes_and_lists_its_files(tmp_path: Path) -> None:
    np.save(tmp_path / "scan.npy", _scan())
    done = subprocess.run(
        [sys.executable, "-m", "gpuudf", "run", "scan.npy", "--udf", "masks", "--device", "cpu", "--out", "out"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for name in ("scan-masks-intensity.npy", "scan-masks-intensity-bright-field.png"):
        assert str(Path("out") / name) in done.stdout
        assert (tmp_path / "out" / name).is_file()


# ---------------------------------------------------------------- gpuudf demo --out keeps the scan


@pytest.mark.parametrize("source", ["hdf5", "npy", "raw"])
def test_demo_with_out_keeps_its_scan_there_and_says_how_to_run_on_it(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert (
        cli.main(["demo", "--nav", "5", "--sig", "12", "--device", "cpu", "--source", source, "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    scan = out / {"hdf5": "scan.h5", "npy": "scan.npy", "raw": "scan.raw"}[source]
    assert scan.is_file()
    line = next(line for line in printed.splitlines() if line.startswith("kept the scan"))
    command = [*line.split("try: gpuudf ", 1)[1].split(), "--device", "cpu", "--no-progress"]
    assert cli.main(command) == 0
    data = cli.synthetic_4dstem(nav_shape=(5, 5), sig_shape=(12, 12))
    written = np.load(out / "scan-masks-intensity.npy")
    np.testing.assert_allclose(written, _references(data)["masks"]["intensity"], rtol=1e-5)


def test_demo_without_out_leaves_no_scan_behind(in_tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--nav", "4", "--sig", "8", "--device", "cpu"]) == 0
    assert "kept the scan" not in capsys.readouterr().out
    assert sorted(p.name for p in in_tmp_path.iterdir()) == ["gpuudf-demo.png"]
