"""Fixtures shared by the whole test suite.

Executors
---------
Every behaviour test that runs a UDF asks for the ``ctx`` fixture, which is
parametrised over :data:`EXECUTOR_PARAMS`.  A new executor or backend (a
simulated GPU device, worker processes, ...) joins every behaviour test by
appending one ``ExecutorCase`` (from ``tests.udfs_for_tests``) to that list; the case also says what a
UDF running there must see in ``self.meta``.

Partitions
----------
Tests that load data through ``load_partitioned`` run once per entry of
:data:`PARTITION_PARAMS` (1, 3 and 7 partitions, and one partition per frame);
their expected values never depend on the count.

LiberTEM
--------
``pytest --libertem-python PATH`` (an interpreter with LiberTEM 0.16) runs
the tests that compare gpuudf's built-in UDFs with LiberTEM's own on the
same file; without it they are skipped.

GPU tests
---------
Tests marked ``gpu`` are skipped here, and only here, where CuPy sees no
usable CUDA device; ``pytest -m gpu`` runs them on a machine with one.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf.datasets import DataSet
from gpuudf.executors import DaskExecutor, Executor, InlineExecutor, LocalExecutor
from tests.udfs_for_tests import ExecutorCase, save_data_file

#: Tests of the dask executor need dask.distributed (the ``dask`` extra, which ``.ci/run`` installs).
NEEDS_DASK = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="needs dask.distributed (pip install gpuudf[dask])"
)

#: Executors every behaviour test runs on; append to add one.
EXECUTOR_PARAMS = [
    pytest.param(
        ExecutorCase(make=InlineExecutor, device_class="cpu", device_id=None, array_backend="numpy"),
        id="inline",
    ),
    pytest.param(
        ExecutorCase(make=lambda: InlineExecutor("sim:0"), device_class="cuda", device_id=0, array_backend="cupy"),
        id="inline-sim",
    ),
    pytest.param(
        ExecutorCase(make=lambda: InlineExecutor("cuda:0"), device_class="cuda", device_id=0, array_backend="cupy"),
        id="inline-cuda",
        marks=pytest.mark.gpu,
    ),
    pytest.param(
        ExecutorCase(
            make=lambda: LocalExecutor(cpus=2, cudas=[]),
            device_class="cpu",
            device_id=None,
            array_backend="numpy",
            in_processes=True,
        ),
        id="local-2cpu",
    ),
    pytest.param(
        ExecutorCase(
            make=lambda: LocalExecutor(cpus=1, cudas=[]),
            device_class="cpu",
            device_id=None,
            array_backend="numpy",
            in_processes=True,
        ),
        id="local-1cpu",
    ),
    pytest.param(
        ExecutorCase(
            make=lambda: LocalExecutor(cpus=0, cudas=["sim:0"]),
            device_class="cuda",
            device_id=0,
            array_backend="cupy",
            in_processes=True,
        ),
        id="local-sim",
    ),
    pytest.param(
        ExecutorCase(
            make=lambda: LocalExecutor(cpus=0, cudas=[0]),
            device_class="cuda",
            device_id=0,
            array_backend="cupy",
            in_processes=True,
        ),
        id="local-cuda",
        marks=pytest.mark.gpu,
    ),
    pytest.param(
        ExecutorCase(
            make=lambda: DaskExecutor.make_local(cpus=2, cudas=[]),
            device_class="cpu",
            device_id=None,
            array_backend="numpy",
            in_processes=True,
        ),
        id="dask-2cpu",
        marks=NEEDS_DASK,
    ),
]

_SESSION_EXECUTORS: dict[ExecutorCase, Executor] = {}

#: Marks "one partition per frame" in :data:`PARTITION_PARAMS`.
PER_FRAME = "per-frame"

#: Partition counts every partition-sensitive test runs with.
PARTITION_PARAMS = [
    pytest.param(1, id="1-partition"),
    pytest.param(3, id="3-partitions"),
    pytest.param(7, id="7-partitions"),
    pytest.param(PER_FRAME, id="partition-per-frame"),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--libertem-python PATH``: compare the built-in UDFs with LiberTEM's, run by that interpreter."""
    parser.addoption(
        "--libertem-python",
        default=None,
        help="an interpreter with LiberTEM 0.16: compare gpuudf's built-in UDFs with LiberTEM's",
    )


@pytest.fixture(scope="session")
def libertem_python(pytestconfig: pytest.Config) -> str:
    """The interpreter ``--libertem-python`` names; the test is skipped without one."""
    python = pytestconfig.getoption("--libertem-python")
    if python is None:
        pytest.skip("needs --libertem-python PATH (an interpreter with LiberTEM 0.16)")
    if not Path(python).exists():
        pytest.fail(f"--libertem-python {python}: no such interpreter")
    return str(python)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked tests where no CUDA GPU is usable: the one place that decides.

    Also skips ``in_process`` tests on executors with worker processes: those
    tests watch a UDF's side effects (a shared list, a handle it cancels)
    that cannot cross into a worker process.
    """
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("executor_case")
        if item.get_closest_marker("in_process") is not None and case is not None and case.in_processes:
            item.add_marker(pytest.mark.skip(reason="watches UDF side effects in the caller's process"))
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    from gpuudf.backends.cuda import cupy_usable

    if cupy_usable():
        return
    skip = pytest.mark.skip(reason="needs a usable CUDA GPU with CuPy")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(params=EXECUTOR_PARAMS)
def executor_case(request: pytest.FixtureRequest) -> ExecutorCase:
    """The executor the current test runs on."""
    case: ExecutorCase = request.param
    return case


@pytest.fixture
def ctx(executor_case: ExecutorCase) -> Iterator[gpuudf.Context]:
    """A Context on the executor under test, closed after the test (worker processes: at the end)."""
    if not executor_case.in_processes:
        with gpuudf.Context(executor=executor_case.make()) as context:
            yield context
        return
    executor = _SESSION_EXECUTORS.get(executor_case)
    if executor is None:
        executor = _SESSION_EXECUTORS[executor_case] = executor_case.make()
    yield gpuudf.Context(executor=executor)


@pytest.fixture(scope="session", autouse=True)
def _close_session_executors() -> Iterator[None]:
    yield
    for executor in _SESSION_EXECUTORS.values():
        executor.close()


@pytest.fixture(params=PARTITION_PARAMS)
def num_partitions(request: pytest.FixtureRequest) -> int | str:
    """A partition count, or :data:`PER_FRAME`."""
    value: int | str = request.param
    return value


@pytest.fixture
def load_partitioned(ctx: gpuudf.Context, num_partitions: int | str) -> Callable[..., DataSet]:
    """``load_partitioned(data, sig_dims=2, **kwargs)``: a memory dataset split as the test is parametrised."""

    def load(data: np.ndarray[Any, Any], sig_dims: int = 2, **kwargs: Any) -> DataSet:
        frames = math.prod(data.shape[: data.ndim - sig_dims])
        count = frames if num_partitions == PER_FRAME else int(num_partitions)
        return ctx.load("memory", data=data, sig_dims=sig_dims, num_partitions=count, **kwargs)

    return load


@pytest.fixture
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in ``tmp_path``: what a command writes to the current folder lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every run of the suite sees the same data."""
    return np.random.default_rng(20240611)


@pytest.fixture
def random_counts(rng: np.random.Generator) -> Callable[..., np.ndarray[Any, Any]]:
    """``random_counts(shape, dtype="float32", high=10)``: random small integers in ``dtype``."""

    def make(shape: tuple[int, ...], dtype: Any = "float32", high: int = 10) -> np.ndarray[Any, Any]:
        return rng.integers(0, high, size=shape).astype(dtype)

    return make


@pytest.fixture
def data_file(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, Any]]]:
    """``data_file(kind, data, sig_dims=2, name="data")``: ``data`` saved as a ``kind`` file under ``tmp_path``.

    ``kind`` is one of ``FILE_KINDS`` (``tests.udfs_for_tests``); returns the
    file and the ``load`` arguments that read ``data`` back.
    """

    def write(
        kind: str, data: np.ndarray[Any, Any], sig_dims: int = 2, name: str = "data"
    ) -> tuple[Path, dict[str, Any]]:
        return save_data_file(tmp_path, kind, data, sig_dims=sig_dims, name=name)

    return write


@pytest.fixture
def sync_shifted() -> Callable[[np.ndarray[Any, Any], int], np.ndarray[Any, Any]]:
    """``sync_shifted(frames, sync_offset)``: what LiberTEM's ``sync_offset`` makes of ``(frames, *sig)``.

    Frame ``k`` becomes stored frame ``k + sync_offset``; frames before the
    first or after the last stored one are zeros.  The NumPy reference of
    every kind's ``sync_offset``.
    """

    def shift(frames: np.ndarray[Any, Any], sync_offset: int) -> np.ndarray[Any, Any]:
        out = np.zeros_like(frames)
        count = len(frames)
        if sync_offset >= 0:
            out[: count - sync_offset] = frames[sync_offset:]
        else:
            out[-sync_offset:] = frames[: count + sync_offset]
        return out

    return shift


@pytest.fixture
def agg_full_draws(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every full draw of an Agg canvas from now on (the canvas drawn), for tests of what plots draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # only plot tests need Matplotlib

    draws: list[object] = []
    draw = FigureCanvasAgg.draw

    def counted(canvas: FigureCanvasAgg) -> None:
        draws.append(canvas)
        draw(canvas)

    monkeypatch.setattr(FigureCanvasAgg, "draw", counted)
    return draws
