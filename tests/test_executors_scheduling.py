"""The device scheduler's decisions, as pure functions: no processes, no devices."""

from __future__ import annotations

import pytest

from gpuudf.executors.scheduling import (
    PendingTask,
    default_cpu_workers,
    min_partitions,
    pick_task,
    worker_accepts,
    worth_taking,
)

BOTH = ("numpy", "cupy")


def test_a_free_worker_takes_the_first_task_it_may_run() -> None:
    pending = [PendingTask(0, ("cupy",)), PendingTask(1, ("numpy",)), PendingTask(2, BOTH)]
    assert pick_task("numpy", pending) == 1
    assert pick_task("cupy", pending) == 0


def test_numpy_only_tasks_never_go_to_a_cuda_worker() -> None:
    assert pick_task("cupy", [PendingTask(0, ("numpy",)), PendingTask(1, ("numpy",))]) is None


def test_cupy_only_tasks_never_go_to_a_cpu_worker() -> None:
    assert pick_task("numpy", [PendingTask(0, ("cupy",))]) is None


def test_tasks_that_accept_both_go_to_whoever_asks() -> None:
    task = PendingTask(0, BOTH)
    assert worker_accepts("numpy", task)
    assert worker_accepts("cupy", task)


def test_a_task_that_ran_out_of_device_memory_goes_to_cpu_workers_only() -> None:
    retry = PendingTask(0, BOTH, cpu_only=True)
    assert not worker_accepts("cupy", retry)
    assert pick_task("cupy", [retry, PendingTask(1, BOTH)]) == 1
    assert pick_task("numpy", [retry, PendingTask(1, BOTH)]) == 0


@pytest.mark.parametrize(
    ("cores", "cudas", "expected"),
    [(2, 0, 2), (16, 1, 15), (16, 2, 14), (1, 1, 1), (2, 4, 1)],
)
def test_each_cuda_worker_takes_a_core_for_its_feeder_and_at_least_one_cpu_worker_remains(
    cores: int, cudas: int, expected: int
) -> None:
    assert default_cpu_workers(cores, cudas) == expected


def test_gpus_get_more_partitions_than_cpus_so_the_tail_is_short() -> None:
    assert min_partitions(2, 0) == 4
    assert min_partitions(1, 1) == 6
    assert min_partitions(0, 1) == 4
    assert min_partitions(0, 0) == 1


def test_workers_of_unknown_pace_take_tasks() -> None:
    assert worth_taking(None, 0, [0.1], pending=1)
    assert worth_taking(1.0, 0, [], pending=1)


def test_a_slow_worker_leaves_the_last_tasks_to_a_much_faster_one() -> None:
    # a CPU worker at 1 s per task, a GPU at 0.05 s: two tasks left take the GPU 0.1 s
    assert not worth_taking(1.0, 0, [0.05], pending=2)
    # with many tasks left the CPU worker still helps
    assert worth_taking(1.0, 0, [0.05], pending=40)


def test_a_worker_counts_the_tasks_it_already_holds() -> None:
    assert worth_taking(1.0, 0, [1.0], pending=1)
    assert not worth_taking(1.0, 1, [1.0], pending=1)


def test_the_faster_workers_queues_count_against_them() -> None:
    # two workers of nearly equal pace: the faster one still holds two tasks
    assert not worth_taking(1.02, 1, [1.0], pending=1)
    assert worth_taking(1.02, 1, [1.0], pending=1, others_queued=2)
