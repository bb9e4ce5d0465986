"""The dask executor: the same runs on a dask.distributed cluster, for users who outgrow one workstation.

Policy
------
- **Workers are the cluster's.**  :meth:`DaskExecutor.connect` joins a
  running scheduler (with dask's own security settings, a
  ``distributed.Security``); :meth:`DaskExecutor.make_local` starts one on
  the loopback interface (:mod:`gpuudf.executors.dask_cluster`).  A worker
  that declares the dask resource ``CUDA`` is a CUDA worker and runs tasks
  on ``cuda:0`` (it sees only its GPU); any other is a CPU worker with one
  slot per ``CPU`` resource unit (else per thread).  The workers of
  ``make_local`` are named after their devices, and that name wins.
- **Scheduling is the local executor's**: each run has a
  :class:`~gpuudf.executors.run_state.RunState` whose workers are the
  cluster's slots, read from the scheduler when the run starts; its
  shell (:mod:`gpuudf.executors.dask_run`) turns futures into events.
- **Data**: a file dataset is opened by the workers, so its path must be
  readable there.  A memory dataset's frames are scattered to the cluster
  once per dataset (kept while the dataset lives, and sent again only if
  the cluster lost them); tasks name them, never carry them.
- **One run at a time**, as in the local executor: a new run, or
  :meth:`DaskExecutor.close`, stops the one in progress.
- dask is imported only when a ``DaskExecutor`` is made.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import queue
import uuid
import weakref
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.errors import WorkerError
from gpuudf.executors.executor import CancelSignal, Executor, Task, TileCallback
from gpuudf.executors.local import CANCEL_GRACE_S, check_workers_asked, devices_for
from gpuudf.executors.process import STOP_TIMEOUT_S, array_backend_of
from gpuudf.executors.run_turns import RunTurns
from gpuudf.executors.scheduling import DASK_QUEUE_DEPTH, min_partitions

if TYPE_CHECKING:
    from gpuudf.datasets.transport import ScatteredFrames
    from gpuudf.executors.dask_cluster import DeviceCluster
    from gpuudf.executors.dask_run import Slot
    from gpuudf.executors.run_shell import RunSteps

__all__ = ["DaskExecutor", "ScatterTransport", "slots_of"]

_LIVE_EXECUTORS: weakref.WeakSet[DaskExecutor] = weakref.WeakSet()


def slots_of(workers: Mapping[str, Mapping[str, Any]]) -> list[Slot]:
    """The slots of the workers the scheduler lists (``scheduler_info()["workers"]``), CPU slots first.

    A worker named by :func:`~gpuudf.executors.dask_cluster.worker_name` runs
    on the device its name says; else one with a ``CUDA`` resource is a CUDA
    worker (one slot, ``cuda:0``) and any other a CPU worker with a slot per
    ``CPU`` resource unit, or per thread where it declares none.
    """
    from gpuudf.executors.dask_cluster import device_of_worker_name  # noqa: PLC0415
    from gpuudf.executors.dask_run import Slot  # noqa: PLC0415

    slots = []
    for address, info in workers.items():
        resources = dict(info.get("resources") or {})
        name = str(info.get("name", address))
        device = device_of_worker_name(info.get("name")) or ("cuda:0" if resources.get("CUDA") else "cpu")
        backend = array_backend_of(device)
        if backend == "cupy":
            asked = (("CUDA", 1.0),) if resources.get("CUDA") else ()
            slots.append(Slot(address, name, device, backend, asked))
            continue
        count = int(resources.get("CPU", info.get("nthreads", 1)))
        asked = (("CPU", 1.0),) if "CPU" in resources else ()
        slots.extend(Slot(address, name, device, backend, asked) for _ in range(max(count, 1)))
    return sorted(slots, key=lambda slot: (slot.array_backend != "numpy", slot.name, slot.address))


class ScatterTransport:
    """Sends memory datasets' frames to the cluster, once per dataset, for the plans that name them.

    The frames stay on the cluster while the dataset lives; frames the
    cluster lost (their worker died) are sent again at the next run.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._sent: dict[int, Any] = {}  # id(owner) -> future of its frames
        self._recording: dict[str, Any] | None = None
        #: Bytes of frames scattered so far.
        self.scattered_nbytes = 0

    @contextlib.contextmanager
    def recording(self) -> Iterator[dict[str, Any]]:
        """Within the block, the futures of the frames published are collected in the dict given."""
        used: dict[str, Any] = {}
        self._recording = used
        try:
            yield used
        finally:
            self._recording = None

    def publish(self, owner: object, frames: np.ndarray[Any, Any]) -> ScatteredFrames:
        """A handle to ``owner``'s frames on the cluster, scattering them first if it has none."""
        from gpuudf.datasets.transport import ScatteredFrames  # noqa: PLC0415

        future = self._sent.get(id(owner))
        if future is None or future.status != "finished":
            future = self.client.scatter(frames, hash=False)
            self.scattered_nbytes += frames.nbytes
            self._sent[id(owner)] = future
            weakref.finalize(owner, self._sent.pop, id(owner), None)
        if self._recording is not None:
            self._recording[future.key] = future
        return ScatteredFrames(str(future.key), tuple(frames.shape), frames.dtype)

    def key_of(self, owner: object) -> str | None:
        """The cluster's key of ``owner``'s frames, if they were sent."""
        future = self._sent.get(id(owner))
        return None if future is None else str(future.key)

    def forget(self) -> None:
        """Release every dataset's frames on the cluster."""
        self._sent.clear()


class DaskExecutor(Executor):
    """Runs on a dask.distributed cluster's workers, fed by the device scheduler.

    Make one with :meth:`connect` (a running cluster) or :meth:`make_local`
    (a cluster on this machine).

    Parameters
    ----------
    client
        A ``distributed.Client``; the executor closes it with itself.
    cluster
        The cluster :meth:`make_local` started, closed with the executor.
    cancel_grace_s
        Seconds a worker has to stop after a cancellation (it stops at its
        next tile) before it is restarted.
    """

    #: Tasks each slot holds at once: its running task and those queued behind it.
    queue_depth = DASK_QUEUE_DEPTH

    def __init__(
        self, client: Any, *, cluster: DeviceCluster | None = None, cancel_grace_s: float = CANCEL_GRACE_S
    ) -> None:
        if not cancel_grace_s >= 0:
            msg = f"cancel_grace_s={cancel_grace_s}: give the seconds a worker has to stop, 0 or more"
            raise ValueError(msg)
        self.client = client
        self.cluster = cluster
        self.cancel_grace_s = float(cancel_grace_s)
        self.transport = ScatterTransport(client)
        self._token = uuid.uuid4().hex[:12]
        self._topic = f"gpuudf-progress-{self._token}"
        self._inboxes: dict[str, queue.SimpleQueue[Any]] = {}  # run key -> its shell's inbox
        self._run_ids = itertools.count()
        self._runs = RunTurns(type(self).__name__, lambda: self._stop_timeout_s)
        client.subscribe_topic(self._topic, self._progressed)
        if not _LIVE_EXECUTORS:
            # registered after distributed's own exit handlers, so it runs before them: the cluster
            # is closed in order instead of logging lost data and failed reconnections
            atexit.register(_close_all)
        _LIVE_EXECUTORS.add(self)

    # -- making one ----------------------------------------------------------------------
    @classmethod
    def connect(cls, address: str, *, security: Any = None, cancel_grace_s: float = CANCEL_GRACE_S) -> DaskExecutor:
        """An executor on the running cluster whose scheduler is at ``address`` (``"tcp://host:8786"``).

        Parameters
        ----------
        address
            The scheduler's address; ``tls://`` with ``security``.
        security
            A ``distributed.Security`` (TLS certificates and keys), or
            ``None`` for dask's configuration (``distributed.comm.tls``).
        """
        from distributed import Client  # noqa: PLC0415 - dask loads only for the dask executor

        client = Client(address, security=security, set_as_default=False)
        return cls(client, cancel_grace_s=cancel_grace_s)

    @classmethod
    def make_local(
        cls,
        cpus: int | None = None,
        cudas: Sequence[int | str] | None = None,
        *,
        dashboard_address: str | None = None,
        cancel_grace_s: float = CANCEL_GRACE_S,
    ) -> DaskExecutor:
        """An executor on a new dask cluster on this machine, listening on 127.0.0.1 only.

        Parameters
        ----------
        cpus
            CPU workers (one single-threaded process each); by default one
            per core, less one per CUDA worker.
        cudas
            GPUs, one worker process each, as indices or device names
            (``"sim:0"`` for the simulated device); by default every GPU
            :func:`gpuudf.detect` finds.
        dashboard_address
            Where dask's dashboard listens (``"127.0.0.1:8787"``); none by default.
        """
        from distributed import Client  # noqa: PLC0415

        from gpuudf.executors.dask_cluster import DeviceCluster  # noqa: PLC0415

        check_workers_asked(cpus, cudas, cls.__name__)
        cluster = DeviceCluster(devices_for(cpus, cudas, cls.__name__), dashboard_address)
        try:
            # results come straight from the workers, not through the scheduler
            client = Client(cluster.scheduler_address, set_as_default=False, direct_to_workers=True)
            executor = cls(client, cluster=cluster, cancel_grace_s=cancel_grace_s)
            cluster.wait_for_workers(executor._present_names, lambda: None)
        except BaseException:
            cluster.close()
            raise
        return executor

    @classmethod
    def make_with_spec(
        cls,
        cpus: int | Sequence[int] | None = None,
        cudas: Sequence[int | str] | None = None,
        *,
        gpus: int | Sequence[int] | None = None,
        dashboard_address: str | None = None,
    ) -> DaskExecutor:
        """:meth:`make_local` as ``Context.make_with("dask", ...)`` calls it, with LiberTEM's keywords too.

        ``cpus`` may be a sequence (of CPU ids, as LiberTEM takes it: one
        worker each), and ``gpus`` stands for ``cudas``: a number of GPUs
        (the first ones) or their indices.
        """
        if gpus is not None:
            if cudas is not None:
                msg = "give the GPUs as cudas= or as gpus= (LiberTEM's name), not both"
                raise ValueError(msg)
            cudas = list(range(gpus)) if isinstance(gpus, int) else list(gpus)
        if cpus is not None and not isinstance(cpus, int):
            cpus = len(list(cpus))
        return cls.make_local(cpus, cudas, dashboard_address=dashboard_address)

    # -- what the cluster has ------------------------------------------------------------
    def _workers(self) -> dict[str, Any]:
        workers: dict[str, Any] = self.client.scheduler_info(n_workers=-1)["workers"]
        return workers

    def _present_addresses(self) -> set[str]:
        return set(self._workers())

    def _present_names(self) -> set[str]:
        return {str(info.get("name")) for info in self._workers().values()}

    def slots(self) -> list[Slot]:
        """The cluster's slots now, CPU first."""
        return slots_of(self._workers())

    @property
    def devices(self) -> list[str]:
        """One device name per slot, ``"cpu"`` first (as :attr:`LocalExecutor.devices`)."""
        return [slot.device for slot in self.slots()]

    # -- the Executor interface ----------------------------------------------------------
    def _backends_of_workers(self) -> list[str]:
        # the cluster started here has its workers even while one is restarted; another has those it has now
        devices = self.cluster.devices if self.cluster is not None else self.devices
        return [array_backend_of(device) for device in devices]

    def array_backends(self) -> tuple[str, ...]:
        """``numpy`` with CPU workers, ``cupy`` with CUDA workers."""
        return tuple(dict.fromkeys(self._backends_of_workers()))

    def num_workers(self) -> int:
        """Partitions to aim for at least, from the worker mix."""
        backends = self._backends_of_workers()
        cpus = backends.count("numpy")
        return min_partitions(cpus, len(backends) - cpus)

    def run_tasks(
        self, tasks: Sequence[Task], on_tile: TileCallback | None = None, cancel: CancelSignal | None = None
    ) -> Iterator[Any]:
        """Run ``tasks`` on the cluster, yielding results in completion order (one run at a time)."""
        return self._runs.start(functools.partial(self._drive, tasks=tasks, on_tile=on_tile, cancel=cancel))

    @property
    def _stop_timeout_s(self) -> float:
        return self.cancel_grace_s + STOP_TIMEOUT_S

    def close(self) -> None:
        """Stop the run in progress, release the data on the cluster, close the client (and the cluster started)."""
        if not self._runs.close():
            return
        self.transport.forget()
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self._topic)
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __repr__(self) -> str:
        where = "local cluster" if self.cluster is not None else "cluster"
        return f"DaskExecutor({where} at {self.client.scheduler.address})"

    # -- a run -------------------------------------------------------------------------------
    def _progressed(self, event: tuple[float, Any]) -> None:
        """A worker's progress message (dask event ``[run_key, task, frames]``), to its run's shell."""
        from gpuudf.executors.dask_run import Progress  # noqa: PLC0415

        run_key, task, frames = event[1]
        inbox = self._inboxes.get(run_key)
        if inbox is not None:
            inbox.put(Progress(task, frames))

    def _drive(
        self, steps: RunSteps, *, tasks: Sequence[Task], on_tile: TileCallback | None, cancel: CancelSignal | None
    ) -> Generator[Any, None, None]:
        if not tasks:
            return
        from gpuudf.executors.dask_run import DaskRunShell  # noqa: PLC0415
        from gpuudf.executors.run_shell import stop_reason  # noqa: PLC0415

        def closed() -> bool:
            return self._runs.closed

        if self.cluster is not None:  # a worker killed in an earlier run comes back under its name
            self.cluster.wait_for_workers(self._present_names, lambda: stop_reason(steps, closed, cancel))
        slots = self.slots()
        if not slots:
            msg = f"the dask cluster at {self.client.scheduler.address} has no workers"
            raise WorkerError(msg)
        run_key = f"{self._token}-{next(self._run_ids)}"
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inboxes[run_key] = inbox
        shell = DaskRunShell(
            self.client,
            slots,
            tasks,
            run_key=run_key,
            inbox=inbox,
            topic=self._topic,
            transport=self.transport,
            workers_present=self._present_addresses,
            steps=steps,
            on_tile=on_tile,
            cancel=cancel,
            grace_s=self.cancel_grace_s,
            closed=closed,
        )
        try:
            yield from shell.drive()
        finally:
            del self._inboxes[run_key]


def _close_all() -> None:
    # the cluster make_local started, its workers and their log files go with this process
    for executor in list(_LIVE_EXECUTORS):
        with contextlib.suppress(Exception):
            executor.close()
