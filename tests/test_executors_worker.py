"""The worker process (``gpuudf.executors.worker``): it never outlives the process that started it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gpuudf.datasets.shared import SHARED_MEMORY_DIR
from tests.udfs_for_tests import process_alive

USER_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    import numpy as np
    import gpuudf
    import gpuudf.udfs
    from gpuudf import UDF
    from gpuudf.executors import LocalExecutor

    class Stuck(UDF):
        def __init__(self, marker):
            super().__init__(marker=marker)

        def get_result_buffers(self):
            return {"x": self.buffer(kind="nav")}

        def process_frame(self, frame):
            open(self.params.marker, "w").close()
            time.sleep(600)

    ctx = gpuudf.Context(executor=LocalExecutor(cpus=1, cudas=[]))
    ds = ctx.load("memory", data=np.ones((4, 4, 8, 8), dtype=np.float32))
    if sys.argv[2] != "idle":
        threading.Thread(target=lambda: ctx.run_udf(dataset=ds, udf=Stuck(sys.argv[1])), daemon=True).start()
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.01)
    if sys.argv[2] == "idle":  # the run is over: the worker waits for its next message
        ctx.run_udf(dataset=ds, udf=gpuudf.udfs.SumUDF())
    print(ctx.executor.worker_pids[0], flush=True)
    if sys.argv[2] in ("exit", "idle"):
        os._exit(0)
    time.sleep(600)
    """
)


def files_of(pid: int) -> list[Path]:
    return list(Path(SHARED_MEMORY_DIR).glob(f"gpuudf-{pid}-*"))


@pytest.mark.parametrize("death", ["exit", "kill", "idle"])
def test_a_user_process_that_dies_mid_run_leaves_no_worker_and_no_shared_memory(tmp_path: Path, death: str) -> None:
    script = tmp_path / "analysis.py"
    script.write_text(USER_SCRIPT)
    with subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "stuck"), death], stdout=subprocess.PIPE, text=True
    ) as user:
        try:
            assert user.stdout is not None
            worker_pid = int(user.stdout.readline())
            assert files_of(user.pid), "the dataset's frames should be in shared memory while the run goes on"
            if death == "kill":
                user.send_signal(signal.SIGKILL)
            user.wait(timeout=30)
        finally:
            if user.poll() is None:  # the test failed before the user process died: it must not linger
                user.kill()
    deadline = time.monotonic() + 30
    while process_alive(worker_pid) or files_of(user.pid):
        assert time.monotonic() < deadline, "an orphaned worker or its parent's shared memory is left"
        time.sleep(0.05)
