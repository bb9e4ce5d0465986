"""The dask executor: a loopback cluster's workers, routing by resources, data sent once, failures and cancellation.

The behaviour suite runs on it too (``dask-2cpu`` and ``dask-sim`` in
``tests/conftest.py``); these tests are about what only a cluster does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import DataSetError, UDFRunCancelled, WorkerError
from gpuudf.executors import DaskExecutor
from gpuudf.executors.dask_cluster import device_of_worker_name, worker_name
from gpuudf.executors.dask_executor import slots_of
from gpuudf.executors.local import RemoteTraceback
from gpuudf.udfs import SumUDF
from tests.conftest import NEEDS_DASK
from tests.udfs_for_tests import (
    BlockingUDF,
    DeviceClassUDF,
    DeviceOOMUDF,
    DieUDF,
    RaiseUDF,
    SlowFrameUDF,
    in_thread,
    save_data_file,
    wait_for,
)

pytestmark = NEEDS_DASK


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 100, size=(8, 9, 10, 11)).astype(np.float32)


@pytest.fixture(scope="module")
def hybrid() -> Iterator[gpuudf.Context]:
    """A CPU worker and a simulated GPU worker on one loopback cluster, for the whole module."""
    with gpuudf.Context(executor=DaskExecutor.make_local(cpus=1, cudas=["sim:0"], cancel_grace_s=1.0)) as ctx:
        yield ctx


# ---------------------------------------------------------------- slots: what the run's state calls a worker


def test_worker_names_say_the_device_each_worker_runs_on() -> None:
    assert device_of_worker_name(worker_name("cpu", 3)) == "cpu"
    assert device_of_worker_name(worker_name("cuda:1", 0)) == "cuda:0"  # it sees its GPU alone
    assert device_of_worker_name(worker_name("sim:0", 0)) == "sim:0"
    assert device_of_worker_name("my-worker") is None
    assert device_of_worker_name(None) is None


def test_slots_follow_names_then_resources_then_threads_cpu_first() -> None:
    workers = {
        "tcp://a:1": {"name": "gpu-box", "resources": {"CUDA": 1}, "nthreads": 1},
        "tcp://b:1": {"name": "big", "resources": {"CPU": 3}, "nthreads": 4},
        "tcp://c:1": {"name": "plain", "resources": {}, "nthreads": 2},
        "tcp://d:1": {"name": worker_name("sim:0", 0), "resources": {"CUDA": 1}, "nthreads": 1},
    }
    slots = slots_of(workers)
    assert [(s.name, s.device, s.resources) for s in slots] == [
        ("big", "cpu", (("CPU", 1.0),)),
        ("big", "cpu", (("CPU", 1.0),)),
        ("big", "cpu", (("CPU", 1.0),)),
        ("plain", "cpu", ()),
        ("plain", "cpu", ()),
        ("gpu-box", "cuda:0", (("CUDA", 1.0),)),
        (worker_name("sim:0", 0), "sim:0", (("CUDA", 1.0),)),
    ]


# ---------------------------------------------------------------- the local cluster


def test_make_local_listens_on_loopback_only_and_closing_ends_every_worker_process(data: np.ndarray) -> None:
    executor = DaskExecutor.make_local(cpus=1, cudas=[])
    assert executor.cluster is not None
    processes = list(executor.cluster.processes)
    try:
        assert executor.client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert all(slot.address.startswith("tcp://127.0.0.1:") for slot in executor.slots())
        with gpuudf.Context(executor=executor) as ctx:
            result = ctx.run_udf(ctx.load("memory", data=data), SumUDF())
            np.testing.assert_allclose(result["intensity"].data, data.sum(axis=(0, 1)))
    finally:
        executor.close()
    assert all(process.poll() is not None for process in processes)


def test_make_with_dask_starts_a_local_cluster_with_the_workers_asked_for() -> None:
    with gpuudf.Context.make_with("dask", cpus=1, cudas=["sim:0"]) as ctx:
        assert isinstance(ctx.executor, DaskExecutor)
        assert sorted(slot.device for slot in ctx.executor.slots()) == ["cpu", "sim:0"]
        assert set(ctx.executor.array_backends()) == {"numpy", "cupy"}


def test_make_with_dask_takes_libertems_keywords() -> None:
    with gpuudf.Context.make_with("dask", cpus=range(1), gpus=0) as ctx:
        assert [slot.device for slot in ctx.executor.slots()] == ["cpu"]  # type: ignore[attr-defined]
    with pytest.raises(gpuudf.ExecutorSpecException, match="not both"):
        gpuudf.Context.make_with("dask", cudas=[0], gpus=1)


def test_bad_worker_counts_are_refused_before_a_cluster_starts() -> None:
    with pytest.raises(gpuudf.ExecutorSpecException, match="cpus=-1"):
        gpuudf.Context.make_with("dask", cpus=-1)
    with pytest.raises(ValueError, match="needs at least one worker"):
        DaskExecutor.make_local(cpus=0, cudas=[])


# ---------------------------------------------------------------- routing and results


def test_tasks_go_only_to_workers_of_an_array_backend_the_udf_accepts(hybrid: gpuudf.Context, data: np.ndarray) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=6)
    for backends, expected in ((("numpy",), {0}), (("cupy",), {1})):
        result = hybrid.run_udf(dataset=ds, udf=DeviceClassUDF(backends=backends))
        assert set(np.unique(result["on_cuda"].data)) == expected


def test_a_partition_out_of_device_memory_is_retried_on_a_cpu_worker(hybrid: gpuudf.Context, data: np.ndarray) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=6)
    result = hybrid.run_udf(dataset=ds, udf=DeviceOOMUDF())
    np.testing.assert_allclose(result["total"].data, data.sum(axis=(2, 3)))


def test_an_exception_arrives_as_the_same_type_with_a_traceback_naming_the_dask_worker(
    hybrid: gpuudf.Context, data: np.ndarray
) -> None:
    ds = hybrid.load("memory", data=data)
    with pytest.raises(ArithmeticError, match="raised in a worker") as excinfo:
        hybrid.run_udf(dataset=ds, udf=RaiseUDF())
    cause = excinfo.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "process_frame" in cause.text
    assert "dask worker 'gpuudf-cpu-0' at tcp://127.0.0.1:" in cause.text


# ---------------------------------------------------------------- data


def loopback_bytes_sent() -> int:
    """Bytes sent over the loopback interface so far, by every process of this machine (Linux)."""
    import psutil

    return int(psutil.net_io_counters(pernic=True)["lo"].bytes_sent)


@pytest.mark.skipif(not Path("/proc/net/dev").exists(), reason="counts loopback bytes (Linux)")
def test_a_memory_dataset_is_sent_to_the_cluster_once_whatever_the_runs_and_partitions(
    hybrid: gpuudf.Context,
) -> None:
    data = np.random.default_rng(3).random((32, 32, 32, 32), dtype=np.float32)  # 4 MiB
    ds = hybrid.load("memory", data=data, num_partitions=8)
    executor = hybrid.executor
    assert isinstance(executor, DaskExecutor)
    scattered_before = executor.transport.scattered_nbytes
    sent_before = loopback_bytes_sent()
    for _ in range(3):
        result = hybrid.run_udf(dataset=ds, udf=SumUDF(), backends=("numpy",))
        np.testing.assert_allclose(result["intensity"].data, data.sum(axis=(0, 1)), rtol=1e-5)
    sent = loopback_bytes_sent() - sent_before
    assert executor.transport.scattered_nbytes - scattered_before == data.nbytes
    # the frames go to one worker, and at most once on to the other; 24 tasks carrying them would send 96 MiB
    assert data.nbytes <= sent < 3 * data.nbytes


def test_each_worker_keeps_its_copy_of_a_memory_dataset_between_runs(hybrid: gpuudf.Context, data: np.ndarray) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=8)
    hybrid.run_udf(dataset=ds, udf=SumUDF())  # both workers take partitions, and fetch the frames
    executor = hybrid.executor
    assert isinstance(executor, DaskExecutor)
    time.sleep(2.5)  # dask's active memory manager, were it on, drops extra copies every 2 s
    key = executor.transport.key_of(ds)
    assert key is not None
    assert len(executor.client.who_has()[key]) == 2


def test_the_frames_a_worker_holds_start_on_a_page_boundary(hybrid: gpuudf.Context, data: np.ndarray) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=8)
    hybrid.run_udf(dataset=ds, udf=SumUDF())
    executor = hybrid.executor
    assert isinstance(executor, DaskExecutor)
    key = executor.transport.key_of(ds)

    def offsets(dask_worker: Any) -> int | None:
        array = dask_worker.data.get(key)
        return None if array is None else array.ctypes.data % 4096

    held = {address: offset for address, offset in executor.client.run(offsets).items() if offset is not None}
    assert held
    assert set(held.values()) == {0}  # dask's own copy sits where it landed in the buffer it received


def test_a_file_a_worker_cannot_read_is_a_dataset_error_naming_the_worker(
    hybrid: gpuudf.Context, data: np.ndarray, tmp_path: Path
) -> None:
    path, arguments = save_data_file(tmp_path, "raw", data)
    ds = hybrid.load("raw", **arguments)
    path.unlink()  # readable where it was loaded, not where the workers open it
    with pytest.raises(DataSetError) as excinfo:
        hybrid.run_udf(dataset=ds, udf=SumUDF())
    assert str(path) in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, RemoteTraceback)
    assert "dask worker 'gpuudf-" in excinfo.value.__cause__.text


# ---------------------------------------------------------------- failures and cancellation


def test_a_worker_that_dies_raises_worker_error_naming_the_partition_and_the_next_run_succeeds(
    hybrid: gpuudf.Context, data: np.ndarray
) -> None:
    ds = hybrid.load("memory", data=data)
    started = time.monotonic()
    with pytest.raises(WorkerError, match=r"dask worker 'gpuudf-cpu-0' .* died \(.*\) while processing Partition"):
        hybrid.run_udf(dataset=ds, udf=DieUDF(), backends=("numpy",))
    assert time.monotonic() - started < 10
    result = hybrid.run_udf(dataset=ds, udf=SumUDF())
    np.testing.assert_allclose(result["intensity"].data, data.sum(axis=(0, 1)), rtol=1e-6)


def test_cancelling_reaches_the_workers_within_a_tile_and_the_next_run_succeeds(
    hybrid: gpuudf.Context, data: np.ndarray
) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=2)
    handle = gpuudf.CancelHandle()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        handle.cancel()

    with pytest.raises(UDFRunCancelled):
        hybrid.run_udf(dataset=ds, udf=SlowFrameUDF(), progress=progress, cancel=handle)
    assert seen[-1] < 72 / 2  # stopped long before either partition was done
    assert hybrid.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_a_worker_stuck_in_a_tile_is_restarted_after_the_grace_period_and_the_next_run_succeeds(
    hybrid: gpuudf.Context, data: np.ndarray, tmp_path: Path
) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=1)
    marker = tmp_path / "blocking"
    handle = gpuudf.CancelHandle()
    udf = BlockingUDF(str(marker))
    thread, outcome = in_thread(lambda: hybrid.run_udf(dataset=ds, udf=udf, cancel=handle, backends=("numpy",)))
    wait_for(marker)
    handle.cancel()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the cancelled run still waits for its worker"
    assert isinstance(outcome[0], UDFRunCancelled)
    np.testing.assert_allclose(hybrid.run_udf(dataset=ds, udf=SumUDF())["intensity"].data, data.sum(axis=(0, 1)))


def test_progress_of_a_run_adds_up_to_its_frames(hybrid: gpuudf.Context, data: np.ndarray) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=3)
    seen: list[tuple[int, int]] = []
    hybrid.run_udf(dataset=ds, udf=SlowFrameUDF(), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (72, 72)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


# ---------------------------------------------------------------- an existing cluster


def test_connect_runs_on_a_cluster_with_tls_given_as_distributed_security(data: np.ndarray) -> None:
    pytest.importorskip("cryptography", reason="Security.temporary() makes certificates with cryptography")
    from distributed import LocalCluster, Security

    security = Security.temporary()
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tls://",
        host="127.0.0.1",
        security=security,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:
        executor = DaskExecutor.connect(cluster.scheduler_address, security=security)
        with gpuudf.Context(executor=executor) as ctx:
            assert cluster.scheduler_address.startswith("tls://")
            assert [slot.device for slot in executor.slots()] == ["cpu", "cpu"]  # a slot per thread
            result = ctx.run_udf(ctx.load("memory", data=data, num_partitions=4), SumUDF())
            np.testing.assert_allclose(result["intensity"].data, data.sum(axis=(0, 1)))


def test_a_script_without_a_main_guard_starts_a_local_cluster_and_runs_a_udf_defined_in_it(tmp_path: Path) -> None:
    script = tmp_path / "analysis.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import gpuudf

            class Double(gpuudf.UDF):
                def get_result_buffers(self):
                    return {"total": self.buffer(kind="sig", dtype="float64")}

                def process_frame(self, frame):
                    self.results.total[:] += 2 * frame

                def merge(self, dest, src):
                    dest.total[:] += src.total

            with gpuudf.Context.make_with("dask", cpus=1) as ctx:
                data = np.ones((4, 4, 3, 3), dtype=np.float32)
                print(ctx.run_udf(ctx.load("memory", data=data), Double())["total"].data.sum())
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "288.0"
