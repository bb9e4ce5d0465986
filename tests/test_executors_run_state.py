"""The run's scheduling state (``gpuudf.executors.run_state``), driven by events alone: no process, no clock."""

from __future__ import annotations

from gpuudf.executors.run_state import (
    CancelRequested,
    CancelWorker,
    CountFrames,
    Deliver,
    Dispatch,
    Dropped,
    Ending,
    Failed,
    Finished,
    GraceExpired,
    KillWorker,
    NotSent,
    Progressed,
    RunState,
    WorkerLost,
)
from gpuudf.executors.scheduling import QUEUE_DEPTH

BOTH = ("numpy", "cupy")
CPU, GPU = 0, 1


def hybrid(tasks: int, accepts: tuple[str, ...] = BOTH) -> RunState:
    """A CPU worker (0) and a CUDA worker (1), ``tasks`` tasks."""
    return RunState({CPU: "numpy", GPU: "cupy"}, [accepts] * tasks)


def test_each_worker_gets_queue_depth_tasks_in_order() -> None:
    state = hybrid(6)
    sent = state.dispatch()
    assert sent == [Dispatch(CPU, 0), Dispatch(GPU, 1), Dispatch(CPU, 2), Dispatch(GPU, 3)]
    assert all(len(held) == QUEUE_DEPTH for held in state.queued.values())
    assert state.dispatch() == []  # no room until a worker answers


def test_a_result_is_delivered_and_frees_room_for_the_next_task() -> None:
    state = hybrid(6)
    state.dispatch()
    assert state.handle(Finished(CPU, 0, frames=5, seconds=1.0)) == [CountFrames(5), Deliver(0)]
    assert state.dispatch() == [Dispatch(CPU, 4)]
    assert state.remaining == 5


def test_progress_is_counted_and_a_result_without_unreported_frames_counts_none() -> None:
    state = hybrid(2)
    state.dispatch()
    assert state.handle(Progressed(GPU, 1, frames=3)) == [CountFrames(3)]
    assert state.handle(Finished(GPU, 1, frames=0, seconds=0.1)) == [Deliver(1)]


def test_the_run_is_complete_when_every_result_is_delivered() -> None:
    state = hybrid(2)
    state.dispatch()
    state.handle(Finished(CPU, 0, 1, 0.1))
    assert not state.complete
    state.handle(Finished(GPU, 1, 1, 0.1))
    assert state.complete
    assert not state.settled


def test_a_task_out_of_device_memory_goes_back_for_cpu_workers_and_its_frames_are_taken_back() -> None:
    state = hybrid(2)
    state.dispatch()
    state.handle(Progressed(GPU, 1, frames=4))
    assert state.handle(Failed(GPU, 1, out_of_memory=True)) == [CountFrames(-4)]
    assert state.pending[0].index == 1
    assert state.pending[0].cpu_only
    state.handle(Finished(CPU, 0, 1, 0.1))
    assert Dispatch(CPU, 1) in state.dispatch()
    assert state.ending is None


def test_out_of_memory_without_a_cpu_worker_ends_the_run_with_that_task() -> None:
    state = RunState({GPU: "cupy"}, [BOTH])
    state.dispatch()
    state.handle(Failed(GPU, 0, out_of_memory=True))
    assert state.ending == Ending(task=0, worker=GPU)
    assert state.settled


def test_a_failure_cancels_the_busy_workers_and_settles_once_each_answered() -> None:
    state = hybrid(6)
    state.dispatch()
    assert state.handle(Failed(CPU, 0)) == [CancelWorker(CPU), CancelWorker(GPU)]
    assert state.ending == Ending(task=0, worker=CPU)
    assert state.dispatch() == []
    assert state.handle(Dropped(CPU, 2)) == []
    assert state.handle(Finished(GPU, 1, 3, 0.1)) == []  # a result while stopping is dropped, not delivered
    assert not state.settled
    state.handle(Dropped(GPU, 3))
    assert state.settled


def test_the_first_reason_to_end_a_run_wins() -> None:
    state = hybrid(4)
    state.dispatch()
    state.handle(Failed(CPU, 0))
    assert state.handle(Failed(GPU, 1)) == []
    assert state.handle(CancelRequested()) == []
    assert state.ending == Ending(task=0, worker=CPU)


def test_a_cancellation_tells_only_busy_workers() -> None:
    state = RunState({CPU: "numpy", GPU: "cupy"}, [("numpy",)])
    state.dispatch()
    assert state.handle(CancelRequested()) == [CancelWorker(CPU)]
    assert state.ending == Ending(cancelled=True)
    assert state.busy_workers() == [CPU]  # the answers still owed


def test_a_cancellation_with_no_busy_worker_is_settled_at_once() -> None:
    state = hybrid(1)
    assert state.handle(CancelRequested()) == []
    assert state.settled


def test_workers_that_do_not_answer_in_time_are_killed_and_lost() -> None:
    state = hybrid(4)
    state.dispatch()
    state.handle(CancelRequested())
    state.handle(Dropped(CPU, 0))
    state.handle(Dropped(CPU, 2))
    assert state.handle(GraceExpired()) == [KillWorker(GPU)]
    assert state.settled
    assert state.lost == {GPU}
    assert GPU not in state.backends


def test_a_worker_that_dies_ends_the_run_naming_the_task_it_was_running() -> None:
    state = hybrid(6)
    state.dispatch()
    assert state.handle(WorkerLost(GPU)) == [CancelWorker(CPU)]
    assert state.ending == Ending(task=1, worker=GPU, worker_lost=True)
    assert state.lost == {GPU}
    state.handle(Finished(GPU, 1, 1, 0.1))  # late news from the lost worker is ignored
    assert state.remaining == 6


def test_a_worker_dropping_a_task_nobody_cancelled_ends_the_run() -> None:
    state = hybrid(2)
    state.dispatch()
    state.handle(Dropped(CPU, 0))
    assert state.ending == Ending(task=0, worker=CPU, unasked_drop=True)


def test_messages_about_tasks_a_worker_does_not_hold_are_ignored() -> None:
    state = hybrid(4)
    state.dispatch()
    assert state.handle(Finished(CPU, 1, 1, 0.1)) == []  # task 1 is the GPU's
    assert state.handle(Progressed(7, 0, 1)) == []  # no such worker
    assert state.remaining == 4


def test_tasks_no_live_worker_may_run_leave_the_run_stuck() -> None:
    state = RunState({GPU: "cupy"}, [("numpy",)])
    assert state.dispatch() == []
    assert state.stuck


def test_a_slow_worker_does_not_take_the_last_task_from_a_much_faster_one() -> None:
    state = hybrid(8)
    state.dispatch()
    state.handle(Finished(CPU, 0, 1, seconds=10.0))
    state.handle(Finished(GPU, 1, 1, seconds=0.1))
    sent = state.dispatch()
    assert Dispatch(GPU, 4) in sent
    assert all(d.worker == GPU for d in sent if d.task > 4)
    assert [d.worker for d in sent].count(CPU) == 0  # its pace would finish later than the GPU's


def test_out_of_memory_on_a_cpu_worker_ends_the_run_instead_of_retrying_it_forever() -> None:
    state = hybrid(2)
    state.dispatch()
    state.handle(Failed(CPU, 0, out_of_memory=True))
    assert state.ending == Ending(task=0, worker=CPU)


def test_a_task_that_ran_out_of_memory_on_a_gpu_and_then_on_a_cpu_is_not_retried_again() -> None:
    state = RunState({GPU: "cupy", CPU: "numpy"}, [BOTH])
    assert state.dispatch() == [Dispatch(GPU, 0)]
    state.handle(Failed(GPU, 0, out_of_memory=True))
    assert state.dispatch() == [Dispatch(CPU, 0)]
    state.handle(Failed(CPU, 0, out_of_memory=True))
    assert state.ending == Ending(task=0, worker=CPU)


def test_a_task_that_was_not_sent_goes_back_and_its_worker_owes_nothing_for_it() -> None:
    state = hybrid(2)
    state.dispatch()
    assert state.handle(NotSent(GPU, 1)) == []
    assert state.pending[0].index == 1
    state.handle(CancelRequested())
    assert state.busy_workers() == [CPU]  # the answers still owed
