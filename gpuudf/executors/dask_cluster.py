"""The dask cluster :meth:`DaskExecutor.make_local` starts: a loopback ``LocalCluster`` and one worker per device.

Policy
------
- The scheduler is a ``distributed.LocalCluster`` in this process, bound to
  127.0.0.1, without a dashboard unless one is asked for.
- Its workers are ``dask worker`` processes (each a nanny and its worker),
  one per device, started here as fresh interpreters, never by
  multiprocessing's ``spawn`` (which re-runs the user's script: a script
  without a ``__main__`` guard would start clusters without end).  Each has
  one thread, dask resources ``{"CPU": 1}`` or ``{"CUDA": 1}``, a name that
  says its device (:func:`worker_name`), no memory limit (a dataset's frames
  must not be spilled to disk) and this process's ``sys.path``.
- A CUDA worker sees only its GPU (``CUDA_VISIBLE_DEVICES``, the dask-cuda
  convention), so it runs on ``cuda:0``; CPU workers get one BLAS/OpenMP
  thread.  dask's ``MALLOC_TRIM_THRESHOLD_`` setting is not passed on (it
  made per-frame UDFs several times slower).
- Their output goes to a log file per worker, in a temporary directory
  removed at close; a worker that does not come up fails the start with
  the end of its log.
- A killed worker is restarted by its nanny (under the same name); a worker
  whose scheduler went away (this process died) ends after
  :data:`DEATH_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpuudf.backends import parse_device
from gpuudf.errors import UDFRunCancelled, WorkerError
from gpuudf.executors.process import START_POLL_S, START_TIMEOUT_S, STOP_TIMEOUT_S

__all__ = ["DEATH_TIMEOUT_S", "DeviceCluster", "device_of_worker_name", "worker_name"]

#: Seconds a worker of :class:`DeviceCluster` lives on without its scheduler.
DEATH_TIMEOUT_S = 10
_PREFIX = "gpuudf-"


def worker_name(device: str, index: int) -> str:
    """The dask worker name of the ``index``-th worker, on ``device`` (``"gpuudf-cpu-0"``, ``"gpuudf-cuda:1"``)."""
    return f"{_PREFIX}cpu-{index}" if device == "cpu" else f"{_PREFIX}{device}"


def device_of_worker_name(name: object) -> str | None:
    """The device a :func:`worker_name` stands for, as the worker sees it; ``None`` for another name."""
    if not isinstance(name, str) or not name.startswith(_PREFIX):
        return None
    device = name.removeprefix(_PREFIX)
    if device.startswith("cpu-"):
        return "cpu"
    with contextlib.suppress(ValueError):
        kind, _ = parse_device(device)
        return "cuda:0" if kind == "cuda" else device  # CUDA_VISIBLE_DEVICES shows a CUDA worker its GPU alone
    return None


def _worker_environment(device: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(Path(p).resolve()) if p else str(Path.cwd()) for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if Path(p).is_dir()))
    # existing variables win over dask's pre-spawn settings: the nanny's would make malloc trim at 64 KiB
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    env["DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"] = "{'MALLOC_TRIM_THRESHOLD_': None}"
    env.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    kind, index = parse_device(device)
    if kind == "cpu":
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
            env[name] = "1"
    elif kind == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = str(index)
    return env


def _start_scheduler(dashboard_address: str | None) -> Any:
    """A ``LocalCluster`` without workers: the scheduler, on 127.0.0.1."""
    import dask  # noqa: PLC0415 - dask loads only for the dask executor
    from distributed import LocalCluster  # noqa: PLC0415

    # each worker keeps the copy of a memory dataset it fetched: dask's active memory manager would drop
    # all copies but one within seconds, and the other workers would fetch the frames again at the next run
    with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
        return LocalCluster(
            n_workers=0,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=dashboard_address,
            # without a dashboard the scheduler still serves health checks: on a free loopback port
            scheduler_kwargs=None if dashboard_address is not None else {"dashboard_address": "127.0.0.1:0"},
            silence_logs=40,  # logging.ERROR
        )


class DeviceCluster:
    """A loopback scheduler and one ``dask worker`` process per device.

    Parameters
    ----------
    devices
        One device per worker (``"cpu"``, ``"cuda:1"``, ``"sim:0"``).
    dashboard_address
        Where the scheduler's dashboard listens (``":8787"``); ``None`` for none.
    """

    def __init__(self, devices: Sequence[str], dashboard_address: str | None = None) -> None:
        self.devices = list(devices)
        self.names = [worker_name(device, index) for index, device in enumerate(self.devices)]
        self._log_dir = Path(tempfile.mkdtemp(prefix="gpuudf-dask-"))
        self.cluster = _start_scheduler(dashboard_address)
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for name, device in zip(self.names, self.devices, strict=True):
                self.processes.append(self._spawn(name, device))
        except BaseException:
            self.close()
            raise

    @property
    def scheduler_address(self) -> str:
        """The scheduler's ``tcp://127.0.0.1:port``."""
        address: str = self.cluster.scheduler_address
        return address

    def _spawn(self, name: str, device: str) -> subprocess.Popen[bytes]:
        kind, _ = parse_device(device)
        resource = "CPU=1" if kind == "cpu" else "CUDA=1"
        command = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            self.scheduler_address,
            "--name",
            name,
            "--nthreads",
            "1",
            "--nworkers",
            "1",
            "--resources",
            resource,
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--dashboard-address",
            "127.0.0.1:0",
            "--memory-limit",
            "0",
            "--death-timeout",
            str(DEATH_TIMEOUT_S),
            "--local-directory",
            str(self._log_dir / name),
        ]
        with (self._log_dir / f"{name}.log").open("wb") as log:
            return subprocess.Popen(  # noqa: S603 - our own interpreter and dask's worker module
                command,
                env=_worker_environment(device),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to this process, which cancels the run
            )

    def log_tail(self, name: str, nbytes: int = 2000) -> str:
        """The end of what worker ``name`` printed."""
        with contextlib.suppress(OSError):
            return (self._log_dir / f"{name}.log").read_bytes()[-nbytes:].decode(errors="replace")
        return ""

    def wait_for_workers(self, present: Callable[[], set[str]], should_stop: Callable[[], str | None]) -> None:
        """Until every worker is connected (``present()``: the names the scheduler knows).

        Raises
        ------
        WorkerError
            When one is not within ``START_TIMEOUT_S``, or its process ended.
        UDFRunCancelled
            As soon as ``should_stop()`` gives a reason.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            missing = [name for name in self.names if name not in present()]
            if not missing:
                return
            for name, process in zip(self.names, self.processes, strict=True):
                if name in missing and process.poll() is not None:
                    msg = f"dask worker {name} ended (exit code {process.returncode}):\n{self.log_tail(name)}"
                    raise WorkerError(msg)
            if (reason := should_stop()) is not None:
                raise UDFRunCancelled(reason)
            if time.monotonic() > deadline:
                tails = "\n".join(f"{name}: {self.log_tail(name)}" for name in missing)
                msg = f"dask workers {missing} did not connect within {START_TIMEOUT_S:.0f} s:\n{tails}"
                raise WorkerError(msg)
            time.sleep(START_POLL_S)

    def close(self) -> None:
        """Stop the workers (asked, then killed after ``STOP_TIMEOUT_S``), the scheduler, and remove the logs."""
        for process in self.processes:
            with contextlib.suppress(OSError):
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)  # the nanny and the worker it started
                process.wait(timeout=STOP_TIMEOUT_S)
        self.processes = []
        with contextlib.suppress(Exception):
            self.cluster.close()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"DeviceCluster({self.scheduler_address}, workers={dict(zip(self.names, self.devices, strict=True))})"
