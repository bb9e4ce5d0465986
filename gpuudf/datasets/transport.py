"""How a dataset's in-memory frames travel to workers that do not share this machine's memory.

Policy
------
- By default the frames of an in-memory dataset go to worker processes
  through shared memory (:mod:`gpuudf.datasets.shared`).  An executor whose
  workers may be on other machines (the dask executor) pickles a run's plan
  inside :func:`frames_travel_by`: the dataset then hands its frames to that
  executor's :class:`FrameTransport`, which sends them once per dataset (it
  caches by owner) and returns a small handle, a :class:`ScatteredFrames`,
  that is all the plan carries.
- On a worker, the executor unpickles the plan inside :func:`frames_resolved`
  with the arrays its cluster delivered for those handles; a handle
  unpickled anywhere else says so, by name, instead of reading garbage.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gpuudf.errors import DataSetError

__all__ = [
    "FrameTransport",
    "ScatteredFrames",
    "current_frame_transport",
    "frames_resolved",
    "frames_travel_by",
]


class FrameTransport(Protocol):
    """Sends an in-memory dataset's frames to workers once, and names them for its plans."""

    def publish(self, owner: object, frames: np.ndarray[Any, Any]) -> ScatteredFrames:
        """A handle to ``frames`` on the workers, sending them only if ``owner``'s were not sent yet."""
        ...


_TRANSPORT: contextvars.ContextVar[FrameTransport | None] = contextvars.ContextVar("gpuudf_transport", default=None)
_RESOLVED: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("gpuudf_resolved", default=None)


def current_frame_transport() -> FrameTransport | None:
    """The transport of the plan being pickled, ``None`` for shared memory."""
    return _TRANSPORT.get()


@contextlib.contextmanager
def frames_travel_by(transport: FrameTransport) -> Iterator[None]:
    """Within the block, datasets pickled hand their frames to ``transport``."""
    token = _TRANSPORT.set(transport)
    try:
        yield
    finally:
        _TRANSPORT.reset(token)


@contextlib.contextmanager
def frames_resolved(arrays: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, handles unpickled find their frames in ``arrays`` (by key)."""
    token = _RESOLVED.set(arrays)
    try:
        yield
    finally:
        _RESOLVED.reset(token)


@dataclass(frozen=True)
class ScatteredFrames:
    """Frames a transport sent to the workers, by the key the cluster knows them by."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def array(self) -> np.ndarray[Any, Any]:
        """The frames, read-only, as the worker's cluster delivered them.

        Raises
        ------
        DataSetError
            Outside :func:`frames_resolved`, or when the frames delivered are not these.
        """
        arrays = _RESOLVED.get()
        if arrays is None or self.key not in arrays:
            msg = (
                f"the frames of a memory dataset (key {self.key!r}) were sent to the executor's workers "
                "and are not available in this process"
            )
            raise DataSetError(msg)
        frames = np.asarray(arrays[self.key])
        if frames.shape != self.shape or frames.dtype != self.dtype:
            msg = f"frames {self.key!r}: got {frames.shape} {frames.dtype}, expected {self.shape} {self.dtype}"
            raise DataSetError(msg)
        view = frames.view()
        view.flags.writeable = False
        return view
