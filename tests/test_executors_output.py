"""What UDFs print in worker processes reaches the main process's streams, rate-limited."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import gpuudf
from gpuudf import UDF
from gpuudf.executors import LocalExecutor, output
from gpuudf.executors.output import RateLimit, WorkerOutput

FRAMES = 1024
PARTITIONS = 8
PER_PARTITION = FRAMES // PARTITIONS


class PrintingUDF(UDF):
    """Prints one line per frame (the frame's number, which is its value) and one per partition end."""

    def __init__(self, stream: str = "stdout") -> None:
        super().__init__(stream=stream)

    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_frame(self, frame: Any) -> None:
        print(f"frame {int(frame.flat[0])}", file=getattr(sys, self.params.stream))
        self.results.x[:] = 1

    def postprocess(self) -> None:
        # the last thing a task does before its result goes home
        print(f"partition ending at {int(self.results.x.shape[0])}", file=getattr(sys, self.params.stream))


#: Lines the thread of LatePrintUDF prints: 200 KB, more than a pipe holds, so nobody reading would block it.
LATE_LINES = 2000


def print_late_lines() -> None:
    for number in range(LATE_LINES):
        print(f"printed between runs {number:5d} " + "." * 72)


class LatePrintUDF(UDF):
    """Leaves a thread in the worker that prints after the run has ended."""

    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_partition(self, partition: Any) -> None:
        threading.Timer(0.3, print_late_lines).start()


class UnfinishedLineUDF(UDF):
    def get_result_buffers(self) -> dict[str, Any]:
        return {"x": self.buffer(kind="nav")}

    def process_partition(self, partition: Any) -> None:
        print("no end of line", end="")


@pytest.fixture
def data() -> np.ndarray:
    """Frame ``k`` holds ``k`` everywhere, so a UDF can say which frame it prints about."""
    return np.repeat(np.arange(FRAMES, dtype=np.float32), 4).reshape(32, 32, 2, 2)


@pytest.fixture
def two_cpus() -> Iterator[gpuudf.Context]:
    with gpuudf.Context(executor=LocalExecutor(cpus=2, cudas=[])) as ctx:
        yield ctx


def frame_numbers(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("frame ")]


def assert_partitions_in_order(numbers: list[int]) -> None:
    """Each partition's lines, wherever they sit among the others', come in frame order and in full."""
    by_partition: dict[int, list[int]] = {}
    for number in numbers:
        by_partition.setdefault(number // PER_PARTITION, []).append(number)
    assert sorted(by_partition) == list(range(PARTITIONS))
    for partition, seen in by_partition.items():
        start = partition * PER_PARTITION
        assert seen == list(range(start, start + PER_PARTITION))


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_1024_lines_printed_in_workers_all_arrive_in_the_main_process_in_order(
    two_cpus: gpuudf.Context, data: np.ndarray, capsys: pytest.CaptureFixture[str], stream: str
) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=PARTITIONS)
    two_cpus.run_udf(dataset=ds, udf=PrintingUDF(stream=stream))
    captured = capsys.readouterr()
    text, other = (captured.out, captured.err) if stream == "stdout" else (captured.err, captured.out)
    numbers = frame_numbers(text)
    assert len(numbers) == FRAMES
    assert_partitions_in_order(numbers)
    assert text.count("partition ending at") == PARTITIONS
    assert "dropped" not in captured.err
    assert other == ""


def test_the_lines_of_a_task_arrive_before_its_result(
    two_cpus: gpuudf.Context, data: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = two_cpus.load("memory", data=data, num_partitions=PARTITIONS)
    ends = 0
    with two_cpus.run_udf_iter(dataset=ds, udf=PrintingUDF()) as steps:
        for merged, _ in enumerate(steps, start=1):
            ends += capsys.readouterr().out.count("partition ending at")
            assert ends >= min(merged, PARTITIONS)
    assert ends == PARTITIONS


def test_output_beyond_the_rate_limit_is_dropped_and_counted_once_at_the_end_of_the_run(
    data: np.ndarray, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "BURST_LINES", 100)
    monkeypatch.setattr(output, "LINES_PER_S", 1.0)
    with gpuudf.Context(executor=LocalExecutor(cpus=2, cudas=[])) as ctx:
        ds = ctx.load("memory", data=data, num_partitions=PARTITIONS)
        ctx.run_udf(dataset=ds, udf=PrintingUDF())
        captured = capsys.readouterr()
        passed = captured.out.count("\n")
        assert 100 <= passed < 150  # the burst, and the trickle of one a second while it ran
        summaries = [line for line in captured.err.splitlines() if "worker output dropped" in line]
        dropped = FRAMES + PARTITIONS - passed
        assert summaries == [
            f"gpuudf: {dropped} lines of worker output dropped (more than 100 lines a run, then 1 a second)"
        ]
        # the next run starts with a full burst again
        ctx.run_udf(dataset=ds, udf=PrintingUDF())
        assert capsys.readouterr().out.count("\n") >= 100


def test_output_between_runs_reaches_the_main_process_too(
    two_cpus: gpuudf.Context, data: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    two_cpus.run_udf(dataset=two_cpus.load("memory", data=data, num_partitions=1), udf=LatePrintUDF())
    deadline = time.monotonic() + 10.0
    lines: list[str] = []
    while len(lines) < LATE_LINES and time.monotonic() < deadline:
        time.sleep(0.05)
        lines += capsys.readouterr().out.splitlines()
    assert [int(line.split()[3]) for line in lines] == list(range(LATE_LINES))


def test_an_unfinished_last_line_arrives_at_the_end_of_the_run(
    two_cpus: gpuudf.Context, data: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    two_cpus.run_udf(dataset=two_cpus.load("memory", data=data, num_partitions=1), udf=UnfinishedLineUDF())
    assert capsys.readouterr().out == "no end of line\n"


def test_a_failing_task_prints_before_its_exception_arrives(
    two_cpus: gpuudf.Context, data: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    class PrintThenRaise(UDF):
        def get_result_buffers(self) -> dict[str, Any]:
            return {"x": self.buffer(kind="nav")}

        def process_partition(self, partition: Any) -> None:
            print("about to fail")
            raise ArithmeticError

    with pytest.raises(ArithmeticError):
        two_cpus.run_udf(dataset=two_cpus.load("memory", data=data, num_partitions=1), udf=PrintThenRaise())
    assert capsys.readouterr().out == "about to fail\n"


# ---------------------------------------------------------------- the parts on their own


def test_the_rate_limit_passes_its_burst_then_refills_at_its_rate() -> None:
    limit = RateLimit(lines_per_s=4.0, burst_lines=3)
    assert [limit.allow(100.0) for _ in range(4)] == [True, True, True, False]
    assert not limit.allow(100.125)  # half a token
    assert limit.allow(100.25)
    assert not limit.allow(100.25)
    assert [limit.allow(200.0) for _ in range(4)] == [True, True, True, False]  # refilled to the burst, no more
    limit.refill()
    assert [limit.allow(200.0) for _ in range(4)] == [True, True, True, False]


def test_a_watched_process_has_its_lines_forwarded_and_its_pipes_closed(capsys: pytest.CaptureFixture[str]) -> None:
    code = textwrap.dedent(
        """
        import sys
        for i in range(3):
            print("out", i)
        print("err line", file=sys.stderr)
        sys.stdout.write("tail")
        """
    )
    forwarder = WorkerOutput()
    process = forwarder.watch(
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    )
    process.wait(timeout=30)
    forwarder.end_run()
    forwarder.close()
    captured = capsys.readouterr()
    assert captured.out == "out 0\nout 1\nout 2\ntail\n"
    assert captured.err == "err line\n"
    assert process.stdout is not None
    assert process.stdout.closed
