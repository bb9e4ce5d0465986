"""The local executor: worker processes, their life cycle, failures and the hybrid mix."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import UDF, UDFRunCancelled, WorkerError
from gpuudf.datasets.shared import SHARED_MEMORY_DIR
from gpuudf.executors import InlineExecutor, LocalExecutor
from gpuudf.executors.local import RemoteTraceback
from gpuudf.udfs import SumSigUDF, SumUDF
from tests.udfs_for_tests import (
    BlockingUDF,
    DeviceClassUDF,
    DeviceOOMUDF,
    DieUDF,
    RaiseUDF,
    SlowFrameUDF,
    in_thread,
    process_alive,
    wait_for,
)


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 100, size=(8, 9, 10, 11)).astype(np.float32)


@pytest.fixture
def hybrid() -> Iterator[gpuudf.Context]:
    with gpuudf.Context(executor=LocalExecutor(cpus=1, cudas=["sim:0"])) as ctx:
        yield ctx


@pytest.fixture
def two_cpus() -> Iterator[gpuudf.Context]:
    with gpuudf.Context(executor=LocalExecutor(cpus=2, cudas=[])) as ctx:
        yield ctx


def gpuudf_shm_files() -> set[str]:
    return {p.name for p in Path(SHARED_MEMORY_DIR).glob("gpuudf-*")}


alive = process_alive


def test_workers_start_at_the_first_run_and_are_reused(two_cpus: gpuudf.Context, data: np.ndarray) -> None:
    executor = two_cpus.executor
    assert isinstance(executor, LocalExecutor)
    assert executor.worker_pids == []
    ds = two_cpus.load("memory", data=data)
    two_cpus.run_udf(dataset=ds, udf=SumUDF())
    pids = executor.worker_pids
    assert len(pids) == 2
    two_cpus.run_udf(dataset=ds, udf=SumSigUDF())
    assert executor.worker_pids == pids


def test_closing_leaves_no_worker_process_and_no_shared_memory(data: np.ndarray) -> None:
    before = gpuudf_shm_files()
    ctx = gpuudf.Context(executor=LocalExecutor(cpus=2, cudas=[]))
    ds = ctx.load("memory", data=data)
    ctx.run_udf(dataset=ds, udf=SumUDF())
    pids = ctx.executor.worker_pids  # type: ignore[attr-defined]
    assert gpuudf_shm_files() - before  # the dataset went to shared memory once
    ctx.close()
    del ds
    gc.collect()
    assert not any(alive(pid) for pid in pids)
    assert gpuudf_shm_files() <= before


def test_hybrid_results_match_the_inline_executor_and_both_kinds_of_worker_take_part(
    hybrid: gpuudf.Context, data: np.ndarray
) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=12)
    result = hybrid.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF(), DeviceClassUDF()])
    reference = gpuudf.Context(executor=InlineExecutor()).run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF()])
    np.testing.assert_allclose(result[0]["intensity"].data, reference[0]["intensity"].data, rtol=1e-6)
    np.testing.assert_allclose(result[1]["intensity"].data, reference[1]["intensity"].data, rtol=1e-6)
    assert set(np.unique(result[2]["on_cuda"].data)) == {0, 1}


@pytest.mark.parametrize(("backends", "expected"), [(("numpy",), 0), (("cupy",), 1)])
def test_tasks_go_only_to_workers_of_an_array_backend_the_udf_accepts(
    hybrid: gpuudf.Context, data: np.ndarray, backends: tuple[str, ...], expected: int
) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=12)
    result = hybrid.run_udf(dataset=ds, udf=DeviceClassUDF(backends=backends))
    assert set(np.unique(result["on_cuda"].data)) == {expected}


def test_a_partition_out_of_device_memory_is_retried_on_a_cpu_worker(hybrid: gpuudf.Context, data: np.ndarray) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=6)
    result = hybrid.run_udf(dataset=ds, udf=DeviceOOMUDF())
    np.testing.assert_allclose(result["total"].data, data.sum(axis=(2, 3)))


def test_an_exception_in_a_worker_arrives_as_the_same_type_with_the_worker_traceback(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    ds = two_cpus.load("memory", data=data)
    with pytest.raises(ArithmeticError, match="raised in a worker") as excinfo:
        two_cpus.run_udf(dataset=ds, udf=RaiseUDF())
    cause = excinfo.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "process_frame" in cause.text
    assert two_cpus.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_a_worker_that_dies_raises_worker_error_naming_the_partition_and_is_replaced(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    ds = two_cpus.load("memory", data=data)
    two_cpus.run_udf(dataset=ds, udf=SumUDF())
    started = time.monotonic()
    with pytest.raises(WorkerError, match=r"died \(exit code 3\) while processing Partition"):
        two_cpus.run_udf(dataset=ds, udf=DieUDF())
    assert time.monotonic() - started < 5
    result = two_cpus.run_udf(dataset=ds, udf=SumUDF())
    np.testing.assert_allclose(result["intensity"].data, data.sum(axis=(0, 1)), rtol=1e-6)
    assert len(two_cpus.executor.worker_pids) == 2  # type: ignore[attr-defined]


def test_cancelling_reaches_the_workers_and_the_next_run_succeeds(two_cpus: gpuudf.Context, data: np.ndarray) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=2)
    handle = gpuudf.CancelHandle()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        handle.cancel()

    with pytest.raises(UDFRunCancelled):
        two_cpus.run_udf(dataset=ds, udf=SlowFrameUDF(), progress=progress, cancel=handle)
    assert seen[-1] < 72 / 2  # stopped long before either partition was done
    assert two_cpus.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_keyboard_interrupt_in_the_main_process_stops_the_workers_and_leaves_the_context_usable(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=2)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        two_cpus.run_udf(dataset=ds, udf=SlowFrameUDF(), progress=interrupt)
    assert two_cpus.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_leaving_a_loop_early_lets_the_next_run_start_at_once(two_cpus: gpuudf.Context, data: np.ndarray) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=4)
    for _ in two_cpus.run_udf_iter(dataset=ds, udf=SlowFrameUDF()):
        break
    result = two_cpus.run_udf(dataset=ds, udf=SumUDF())
    np.testing.assert_allclose(result["intensity"].data, data.sum(axis=(0, 1)), rtol=1e-6)


def test_a_plain_script_without_a_main_guard_runs_a_udf_defined_in_it(tmp_path: Path) -> None:
    script = tmp_path / "analysis.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import gpuudf

            class DoubleSum(gpuudf.UDF):
                def get_result_buffers(self):
                    return {"total": self.buffer(kind="nav")}

                def process_frame(self, frame):
                    self.results.total[:] = 2 * frame.sum()

            ctx = gpuudf.Context.make_with("local", cpus=2, cudas=[])
            data = np.ones((4, 5, 6, 7), dtype=np.float32)
            result = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=DoubleSum())
            print("total", int(result["total"].data.sum()))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"total {2 * 4 * 5 * 6 * 7}"
    assert "Traceback" not in done.stderr


def test_progress_arrives_during_a_partition_and_adds_up(two_cpus: gpuudf.Context, data: np.ndarray) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=1)
    calls: list[int] = []
    two_cpus.run_udf(dataset=ds, udf=SlowFrameUDF(), progress=lambda done, total: calls.append(done))
    assert calls[-1] == 72
    assert any(done < 72 for done in calls)  # 72 frames of 2 ms: several reports before the end


def test_cuda_workers_without_cupy_are_refused_before_any_process_starts(
    monkeypatch: pytest.MonkeyPatch, data: np.ndarray
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cupy" else real_find_spec(name, *a)
    )
    executor = LocalExecutor(cpus=1, cudas=[0])
    ctx = gpuudf.Context(executor=executor)
    with pytest.raises(gpuudf.BackendUnavailableError, match="CuPy is not installed"):
        ctx.run_udf(dataset=ctx.load("memory", data=data), udf=SumUDF())
    assert executor.worker_pids == []


def test_a_run_whose_workers_were_taken_over_does_not_pass_for_finished(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=8)
    first = two_cpus.run_udf_iter(dataset=ds, udf=SumUDF())
    next(first)
    two_cpus.run_udf(dataset=ds, udf=SumSigUDF())  # closes the abandoned first run
    with pytest.raises(UDFRunCancelled, match="took its workers over"):
        list(first)


def test_workers_unmap_datasets_that_no_run_uses_any_more(two_cpus: gpuudf.Context, data: np.ndarray) -> None:
    def mapped_shared_files() -> set[str]:
        files = set()
        for pid in two_cpus.executor.worker_pids:  # type: ignore[attr-defined]
            for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                if "/gpuudf-" in line:
                    files.add(line.split("/gpuudf-")[1].split()[0])
        return files

    first = two_cpus.load("memory", data=data)
    two_cpus.run_udf(dataset=first, udf=SumUDF())
    first_files = mapped_shared_files()
    assert first_files
    second = two_cpus.load("memory", data=data + 1)
    two_cpus.run_udf(dataset=second, udf=SumUDF())
    assert not first_files & mapped_shared_files()


class _LoadsOnlyHere:
    """A parameter that refuses to be unpickled in any other process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (_load_only_in, (self.pid,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _LoadsOnlyHere) and other.pid == self.pid

    __hash__ = None  # type: ignore[assignment]


def _load_only_in(pid: int) -> _LoadsOnlyHere:
    if os.getpid() != pid:
        msg = "this parameter cannot be loaded in a worker"
        raise LookupError(msg)
    return _LoadsOnlyHere(pid)


class ParamUDF(UDF):
    def __init__(self, param: Any = None) -> None:
        super().__init__(param=param)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        self.results.x[:] = 1


def test_a_plan_that_cannot_be_loaded_in_a_worker_raises_the_real_error(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    ds = two_cpus.load("memory", data=data)
    with pytest.raises(LookupError, match="cannot be loaded in a worker"):
        two_cpus.run_udf(dataset=ds, udf=ParamUDF(param=_LoadsOnlyHere(os.getpid())))
    assert two_cpus.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_object_results_holding_instances_of_local_classes_come_home(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    class Peak:  # defined in a function: plain pickle cannot send it, cloudpickle can
        def __init__(self, value: float) -> None:
            self.value = value

    class PeakUDF(UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"peak": self.buffer(kind="nav", dtype=object)}

        def process_frame(self, frame: Any) -> None:
            self.results.peak[0] = Peak(float(frame.max()))

    result = two_cpus.run_udf(dataset=two_cpus.load("memory", data=data), udf=PeakUDF())
    values = np.vectorize(lambda p: p.value)(result["peak"].data)
    np.testing.assert_array_equal(values, data.max(axis=(2, 3)))


def test_a_cuda_worker_that_cannot_use_its_gpu_raises_backend_unavailable_not_worker_error(
    monkeypatch: pytest.MonkeyPatch, data: np.ndarray
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    # the main process believes CuPy is there; the worker finds out it is not
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "cupy" else real_find_spec(name, *a)
    )
    executor = LocalExecutor(cpus=1, cudas=[0])
    with gpuudf.Context(executor=executor) as ctx:
        with pytest.raises(gpuudf.BackendUnavailableError, match="cuda:0"):
            ctx.run_udf(dataset=ctx.load("memory", data=data), udf=SumUDF())
        assert executor.worker_pids == []


def test_progress_stays_exact_when_a_partition_falls_back_from_the_gpu_to_a_cpu(
    hybrid: gpuudf.Context, data: np.ndarray
) -> None:
    ds = hybrid.load("memory", data=data, num_partitions=6)
    seen: list[int] = []
    hybrid.run_udf(dataset=ds, udf=DeviceOOMUDF(), progress=lambda done, total: seen.append(done))
    assert seen[-1] == 72
    assert max(seen) <= 72


class ValuePidUDF(UDF):
    """Per frame: its parameter ``value`` and the process id of the worker that saw it."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__(value=value)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"value": self.buffer(kind="nav", dtype="float64"), "pid": self.buffer(kind="nav", dtype="int64")}

    def process_frame(self, frame: Any) -> None:
        time.sleep(0.002)  # even partitions: both workers keep taking them
        self.results.value[:] = self.params.value
        self.results.pid[:] = os.getpid()


def test_a_parameter_update_pickles_the_new_plan_once_and_every_worker_runs_its_later_tasks_with_it(
    two_cpus: gpuudf.Context, data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cloudpickle

    from gpuudf.task import PartitionTask

    pickled_plans: list[Any] = []
    dumps = cloudpickle.dumps

    def recording_dumps(obj: Any, *args: Any, **kwargs: Any) -> bytes:
        if isinstance(obj, tuple) and obj and obj[0] is PartitionTask:
            pickled_plans.append(obj[1])
        return dumps(obj, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(cloudpickle, "dumps", recording_dumps)
    ds = two_cpus.load("memory", data=data, num_partitions=24)
    two_cpus.run_udf(dataset=ds, udf=ValuePidUDF())  # both workers warm: neither lags behind with old tasks
    pickled_plans.clear()
    results = two_cpus.run_udf_iter(dataset=ds, udf=ValuePidUDF(value=1.0))
    next(results)
    results.update_parameters_experimental([{"value": 2.0}])
    *_, last = results
    values = last.buffers[0]["value"].data.ravel()
    pids = last.buffers[0]["pid"].data.ravel()
    # the first plan and the updated one, each pickled once for both workers
    assert [dict(plan.udfs[0].kwargs) for plan in pickled_plans] == [{"value": 1.0}, {"value": 2.0}]
    assert set(np.unique(values)) == {1.0, 2.0}
    executor = two_cpus.executor
    assert isinstance(executor, LocalExecutor)
    assert set(pids[values == 2.0].tolist()) == set(executor.worker_pids)


class LockedUDF(UDF):
    """Takes a parameter that cannot travel to a worker process."""

    def __init__(self, lock: Any = None) -> None:
        super().__init__(lock=lock)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"per_frame": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        self.results.per_frame[:] = frame.sum()


def test_an_unpicklable_udf_parameter_is_named_with_its_udf_class_before_any_task_runs(
    two_cpus: gpuudf.Context, data: np.ndarray
) -> None:
    ds = two_cpus.load("memory", data=data)
    with pytest.raises(gpuudf.UnpicklableParameterError, match=r"LockedUDF parameter 'lock' \(lock\) cannot be sent"):
        two_cpus.run_udf(dataset=ds, udf=LockedUDF(lock=threading.Lock()))
    with pytest.raises(TypeError, match=r"cannot pickle '_thread\.lock' object"):  # pickle's own type and words
        two_cpus.run_udf(dataset=ds, udf=LockedUDF(lock=threading.Lock()))
    assert two_cpus.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == data.shape[2:]


# ---------------------------------------------------------------- cancellation that always lands, clean close


@pytest.fixture
def impatient() -> Iterator[gpuudf.Context]:
    """One CPU worker, which has half a second to answer a cancellation."""
    with gpuudf.Context(executor=LocalExecutor(cpus=1, cudas=[], cancel_grace_s=0.5)) as ctx:
        yield ctx


def blocked_run(ctx: gpuudf.Context, data: np.ndarray, tmp_path: Path) -> tuple[Any, Path, int]:
    """A dataset on ``ctx``, its worker's pid after a first run, and the marker a BlockingUDF will touch."""
    ds = ctx.load("memory", data=data, num_partitions=1)
    ctx.run_udf(dataset=ds, udf=SumUDF())
    (pid,) = ctx.executor.worker_pids  # type: ignore[attr-defined]
    return ds, tmp_path / "blocking", pid


def test_a_cancel_lands_while_the_udf_blocks_and_the_stuck_worker_is_killed_and_replaced(
    impatient: gpuudf.Context, data: np.ndarray, tmp_path: Path
) -> None:
    ds, marker, pid = blocked_run(impatient, data, tmp_path)
    handle = gpuudf.CancelHandle()
    thread, outcome = in_thread(lambda: impatient.run_udf(dataset=ds, udf=BlockingUDF(str(marker)), cancel=handle))
    wait_for(marker)
    handle.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the cancelled run still waits for its worker"
    assert isinstance(outcome[0], UDFRunCancelled)
    assert not alive(pid)
    np.testing.assert_allclose(impatient.run_udf(dataset=ds, udf=SumUDF())["intensity"].data, data.sum(axis=(0, 1)))
    assert impatient.executor.worker_pids not in ([], [pid])  # type: ignore[attr-defined]


def test_cancelling_a_run_udf_iter_from_another_thread_lands_while_the_udf_blocks(
    impatient: gpuudf.Context, data: np.ndarray, tmp_path: Path
) -> None:
    ds, marker, _ = blocked_run(impatient, data, tmp_path)
    steps = impatient.run_udf_iter(dataset=ds, udf=BlockingUDF(str(marker)))
    thread, outcome = in_thread(lambda: next(steps))
    wait_for(marker)
    steps.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], UDFRunCancelled)


def test_cancelling_the_asyncio_task_of_a_sync_false_run_stops_a_blocked_worker(
    impatient: gpuudf.Context, data: np.ndarray, tmp_path: Path
) -> None:
    ds, marker, pid = blocked_run(impatient, data, tmp_path)

    async def cancel_while_blocked() -> None:
        task = asyncio.ensure_future(impatient.run_udf(dataset=ds, udf=BlockingUDF(str(marker)), sync=False))
        while not marker.exists():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)

    asyncio.run(cancel_while_blocked())
    assert not alive(pid)
    assert impatient.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_ctrl_c_while_the_udf_blocks_stops_the_run_and_a_second_one_does_not_wait_for_the_grace_period(
    data: np.ndarray, tmp_path: Path
) -> None:
    with gpuudf.Context(executor=LocalExecutor(cpus=1, cudas=[], cancel_grace_s=600)) as ctx:
        ds, marker, pid = blocked_run(ctx, data, tmp_path)

        def press_ctrl_c_twice() -> None:
            wait_for(marker)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)

        presser = threading.Thread(target=press_ctrl_c_twice)
        presser.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            ctx.run_udf(dataset=ds, udf=BlockingUDF(str(marker)))
        presser.join()
        assert time.monotonic() - started < 60  # not the 600 s grace period
        assert not alive(pid)
        assert ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.shape == (10, 11)


def test_resuming_a_half_consumed_iterator_after_close_raises_udf_run_cancelled(data: np.ndarray) -> None:
    ctx = gpuudf.Context(executor=LocalExecutor(cpus=2, cudas=[]))
    ds = ctx.load("memory", data=data, num_partitions=4)
    steps = ctx.run_udf_iter(dataset=ds, udf=SumUDF())
    next(steps)
    pids = ctx.executor.worker_pids  # type: ignore[attr-defined]
    ctx.close()
    with pytest.raises(UDFRunCancelled, match="closed"):
        next(steps)
    assert not any(alive(pid) for pid in pids)


def test_closing_from_another_thread_stops_a_blocked_run_which_raises_udf_run_cancelled(
    data: np.ndarray, tmp_path: Path
) -> None:
    ctx = gpuudf.Context(executor=LocalExecutor(cpus=1, cudas=[], cancel_grace_s=0.5))
    ds, marker, pid = blocked_run(ctx, data, tmp_path)
    thread, outcome = in_thread(lambda: ctx.run_udf(dataset=ds, udf=BlockingUDF(str(marker))))
    wait_for(marker)
    ctx.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], UDFRunCancelled)
    assert "closed" in str(outcome[0])
    assert not alive(pid)


def test_a_new_run_takes_over_from_a_run_blocked_in_another_thread(
    impatient: gpuudf.Context, data: np.ndarray, tmp_path: Path
) -> None:
    ds, marker, _ = blocked_run(impatient, data, tmp_path)
    thread, outcome = in_thread(lambda: impatient.run_udf(dataset=ds, udf=BlockingUDF(str(marker))))
    wait_for(marker)
    np.testing.assert_allclose(impatient.run_udf(dataset=ds, udf=SumUDF())["intensity"].data, data.sum(axis=(0, 1)))
    thread.join(timeout=30)
    assert isinstance(outcome[0], UDFRunCancelled)
    assert "took its workers over" in str(outcome[0])


def test_a_grace_period_that_is_not_a_number_of_seconds_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cancel_grace_s"):
        LocalExecutor(cancel_grace_s=-1)


# ---------------------------------------------------------------- the executor on raw tasks: sends that never block


@dataclasses.dataclass
class RawTask:
    """A task as an executor sees it (the ``Task`` protocol), without UDFs: sleeps, returns ``result_nbytes``."""

    shared: Any
    index: int
    sleep_s: float = 0.0
    result_nbytes: int = 8
    backends: tuple[str, ...] = ("numpy",)

    @property
    def own(self) -> tuple[int, float, int]:
        return (self.index, self.sleep_s, self.result_nbytes)

    @classmethod
    def rebuild(cls, shared: Any, own: tuple[int, float, int]) -> RawTask:
        return cls(shared, *own)

    @classmethod
    def enter_worker(cls, shared: Any) -> None:
        pass

    @classmethod
    def clean_up_after(cls, parent_pid: int) -> None:
        pass

    def failure_cause(self) -> Exception | None:
        return None

    def pickling_failure(self, exc: Exception) -> Exception:
        return TypeError(f"the plan does not pickle: {exc}")

    def run(self, backend: Any, on_tile: Any = None) -> np.ndarray:
        time.sleep(self.sleep_s)  # no tile boundary: the worker does not look at its connection meanwhile
        return np.ones(self.result_nbytes // 8)


def raw_tasks(shared: Any, count: int, sleep_s: float = 0.0, result_nbytes: int = 8) -> list[Any]:
    return [RawTask(shared, i, sleep_s, result_nbytes) for i in range(count)]


def test_a_large_new_plan_sent_while_the_worker_sends_a_large_result_does_not_deadlock() -> None:
    executor = LocalExecutor(cpus=1, cudas=[], cancel_grace_s=1.0)
    try:
        tasks = raw_tasks({"p": 1}, 3, sleep_s=0.5, result_nbytes=4 * 2**20)
        results = []

        def consume() -> None:
            for index, result in enumerate(executor.run_tasks(tasks)):
                results.append(result.nbytes)
                if index == 0:  # as a parameter update does: a new, large shared part for the last task
                    tasks[2] = dataclasses.replace(tasks[2], shared={"p": np.zeros(4 * 2**20 // 8)})

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the main process and the worker block sending to each other"
        assert results == [4 * 2**20] * 3
    finally:
        executor.close()


def test_a_new_plan_that_does_not_pickle_fails_the_run_at_once_and_spares_the_worker() -> None:
    executor = LocalExecutor(cpus=1, cudas=[], cancel_grace_s=30.0)
    try:
        tasks = raw_tasks({"p": 1}, 4, sleep_s=0.05)
        steps = executor.run_tasks(tasks)
        next(steps)
        (pid,) = executor.worker_pids
        tasks[2] = dataclasses.replace(tasks[2], shared={"p": threading.Lock()})
        started = time.monotonic()
        with pytest.raises(TypeError, match="does not pickle"):
            next(steps)
        assert time.monotonic() - started < 25  # not the 30 s grace period: the worker owed nothing for it
        assert executor.worker_pids == [pid]
    finally:
        executor.close()


def test_runs_started_from_several_threads_take_over_one_after_another_without_mixing_answers() -> None:
    executor = LocalExecutor(cpus=1, cudas=[], cancel_grace_s=5.0)
    log: list[tuple[str, Any]] = []

    def consume(name: str, tasks: list[Any], pause_s: float = 0.0) -> None:
        try:
            for result in executor.run_tasks(tasks):
                log.append((name, result.nbytes))
                time.sleep(pause_s)
            log.append((name, "done"))
        except UDFRunCancelled:
            log.append((name, "taken over"))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            log.append((name, repr(exc)))

    try:
        # A pauses between its steps; B takes over (waiting for the worker's answer), C comes while B waits
        a = threading.Thread(target=consume, args=("A", raw_tasks({}, 4, 1.0, 8), 30.0), daemon=True)
        a.start()
        while not log:
            time.sleep(0.01)
        b = threading.Thread(target=consume, args=("B", raw_tasks({}, 2, 0.1, 16)), daemon=True)
        b.start()
        time.sleep(0.3)
        c = threading.Thread(target=consume, args=("C", raw_tasks({}, 2, 0.1, 24)), daemon=True)
        c.start()
        for thread in (b, c):
            thread.join(timeout=60)
        assert [entry for entry in log if entry[0] == "C"] == [("C", 24), ("C", 24), ("C", "done")]
        *b_results, b_end = [outcome for name, outcome in log if name == "B"]
        assert b_end in ("done", "taken over")
        assert all(nbytes == 16 for nbytes in b_results)  # B's answers only: none of A's or C's
    finally:
        executor.close()


def test_closing_while_the_workers_start_stops_the_run_with_udf_run_cancelled(data: np.ndarray) -> None:
    ctx = gpuudf.Context(executor=LocalExecutor(cpus=1, cudas=[]))
    ds = ctx.load("memory", data=data)
    thread, outcome = in_thread(lambda: ctx.run_udf(dataset=ds, udf=SumUDF()))
    time.sleep(0.05)  # the run has begun to start its worker, a fresh interpreter that takes longer
    ctx.close()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(outcome[0], UDFRunCancelled), repr(outcome[0])
    assert "closed" in str(outcome[0])
    assert ctx.executor.worker_pids == []  # type: ignore[attr-defined]
