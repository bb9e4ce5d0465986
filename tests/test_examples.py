"""The example notebook runs from top to bottom in a Jupyter kernel, and shows what it promises.

The notebook is executed once, with nbclient, in a kernel of this very
interpreter (a kernel spec written for the test, so no other ``python3``
kernel on the machine is picked up), on the default ``Context()``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "examples" / "virtual-detector-and-com.ipynb"
KERNEL_NAME = "gpuudf-test-python"
CELL_TIMEOUT_S = 100
#: Lines the notebook's printing UDF prints: one per frame of its 32 x 32 scan.
PRINTED_LINES = 1024

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook after running it; a failing cell leaves its error among its outputs."""
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gpuudf tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(jupyter_dir))
        env.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's warning about its paths' move
        # ipykernel leaves file descriptors 1 and 2 alone under pytest: the kernel is to be a notebook's
        env.delenv("PYTEST_CURRENT_TEST", raising=False)
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT_S,
            allow_errors=True,  # every cell runs, so each test below judges its own cells
            resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook-cwd"))}},
        )
        client.execute()
    return notebook


def cell(notebook: nbformat.NotebookNode, cell_id: str) -> Any:
    return next(c for c in notebook.cells if c.get("id") == cell_id)


def errors(code_cell: Any) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in code_cell.outputs if o.output_type == "error"]


def stream_text(code_cell: Any, name: str) -> str:
    return "".join(o.text for o in code_cell.outputs if o.output_type == "stream" and o.name == name)


def test_every_cell_but_the_live_plots_runs_without_error(executed: nbformat.NotebookNode) -> None:
    failed = {c.id: errors(c) for c in executed.cells if c.cell_type == "code" and c.id != "live-plots" and errors(c)}
    assert failed == {}


@pytest.mark.parametrize("cell_id", ["images", "fields"])
def test_the_images_are_shown_inline(executed: nbformat.NotebookNode, cell_id: str) -> None:
    images = [o for o in cell(executed, cell_id).outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1


def test_the_progress_bar_is_a_widget_with_ipywidgets_and_text_without_and_never_a_warning(
    executed: nbformat.NotebookNode,
) -> None:
    run = cell(executed, "run-udfs")
    widgets = [o for o in run.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if importlib.util.find_spec("ipywidgets") is not None:
        assert len(widgets) == 1
    else:
        assert widgets == []
        assert "1024/1024" in stream_text(run, "stderr")
    assert "Warning" not in stream_text(run, "stderr")


def test_every_line_a_udf_prints_in_the_workers_reaches_its_cell(executed: nbformat.NotebookNode) -> None:
    printing = cell(executed, "worker-print")
    lines = stream_text(printing, "stdout").splitlines()
    assert len([line for line in lines if line.startswith("frame with ")]) == PRINTED_LINES
    assert len(lines) == PRINTED_LINES
    assert "dropped" not in stream_text(printing, "stderr")


def test_the_live_plots_cell_runs_and_shows_its_plots(executed: nbformat.NotebookNode) -> None:
    live = cell(executed, "live-plots")
    assert errors(live) == []
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in live.outputs)
    assert "PlotWarning" not in stream_text(live, "stderr")
