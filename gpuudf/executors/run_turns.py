"""An executor's runs take turns: one at a time, and a new run, or closing, stops the one in progress.

Policy: starting a run and closing hold one lock, so runs started from
several threads take over one after another.  An earlier run that has not
ended (a ``run_udf_iter`` neither consumed nor closed, or a run in the middle
of a step in another thread) is stopped first, with a reason its consumer
gets as :class:`~gpuudf.errors.UDFRunCancelled` at its next step.  The run
machinery (:mod:`gpuudf.executors.run_shell`) loads at the first run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpuudf.executors.run_shell import RunSteps

__all__ = ["RunTurns"]


class RunTurns:
    """The runs of one executor.

    Parameters
    ----------
    executor
        Its name, for the error a run started after closing raises.
    stop_timeout_s
        Seconds a run in progress has to stop (the grace period, then killing).
    """

    def __init__(self, executor: str, stop_timeout_s: Callable[[], float]) -> None:
        self._executor = executor
        self._stop_timeout_s = stop_timeout_s
        self._lock = threading.Lock()
        self._active: RunSteps | None = None
        #: The executor was closed: no run may start.
        self.closed = False

    def start(
        self, drive: Callable[[RunSteps], Generator[Any, None, None]], prepare: Callable[[], None] = lambda: None
    ) -> RunSteps:
        """A new run driven by ``drive(steps)``, once the one in progress stopped; ``prepare()`` first, in turn.

        Raises
        ------
        RuntimeError
            After :meth:`close`, or when the run in progress does not stop in time.
        """
        from gpuudf.executors.run_shell import TAKEN_OVER, RunSteps  # noqa: PLC0415 - the run machinery loads now

        with self._lock:
            if self.closed:
                msg = f"this {self._executor} was closed"
                raise RuntimeError(msg)
            prepare()
            if self._active is not None:
                self._active.stop(TAKEN_OVER, self._stop_timeout_s())  # RuntimeError: it stays the active run
            steps = RunSteps()
            steps.start(drive(steps))
            self._active = steps
        return steps

    def close(self) -> bool:
        """No run may start any more; the one in progress is stopped.  ``False`` if it was closed already."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            active, self._active = self._active, None
            if active is not None:
                from gpuudf.executors.run_shell import CLOSED  # noqa: PLC0415

                with contextlib.suppress(RuntimeError):  # it did not stop in time: the executor stops its workers
                    active.stop(CLOSED, self._stop_timeout_s())
        return True
