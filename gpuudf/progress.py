"""Progress of a run, counted in frames, for a bar or a callback.

Policy: progress counts frames *processed* (reported per tile, so it moves
during a partition), out of the frames the ROI selects.  The bar is
``tqdm.auto``: a widget in notebooks, text elsewhere; tqdm is imported only
when a bar is asked for.  In a notebook without ipywidgets the bar is text,
without tqdm's "IProgress not found" warning (the docs name the ``jupyter``
extra instead).  A bar is always closed, also when the run fails or
is cancelled.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["ProgressCallback", "RunProgress", "check_progress"]

#: ``callback(frames_done, frames_total)``, called after every tile.
ProgressCallback = Callable[[int, int], Any]


def check_progress(progress: object) -> None:
    """Reject a ``progress=`` argument that is neither a bool nor a callable."""
    if isinstance(progress, bool) or progress is None or callable(progress):
        return
    msg = (
        f"progress={progress!r}: use True for a progress bar, or a callable "
        "callback(frames_done, frames_total) for the numbers"
    )
    raise TypeError(msg)


class RunProgress:
    """Counts frames and shows them on a bar or hands them to a callback.

    Parameters
    ----------
    progress
        ``True`` for a ``tqdm.auto`` bar, a :data:`ProgressCallback`, or
        ``False``/``None`` for nothing.
    total_frames
        Frames the run will process.
    """

    def __init__(self, progress: bool | ProgressCallback | None, total_frames: int) -> None:
        check_progress(progress)
        self.total_frames = total_frames
        self.frames_done = 0
        self._callback: ProgressCallback | None = None
        self._bar: Any = None
        if progress is True:
            self._bar = _auto_tqdm()(total=total_frames, unit="frame", desc="gpuudf", leave=True)
        elif callable(progress):
            self._callback = progress

    def advance(self, frames: int) -> None:
        """Count ``frames`` more (negative when a retried partition starts over)."""
        self.frames_done += frames
        if self._bar is not None:
            self._bar.update(frames)
        if self._callback is not None:
            self._callback(self.frames_done, self.total_frames)

    def close(self) -> None:
        """Close the bar; safe to call more than once."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _auto_tqdm() -> Any:
    """``tqdm.auto.tqdm``, imported now: only runs that show a bar pay for tqdm."""
    from tqdm import TqdmWarning  # noqa: PLC0415

    with warnings.catch_warnings():
        # tqdm falls back to the text bar by itself; its warning would only put a red box
        # in the cell, once per kernel, pointing at Jupyter rather than at the jupyter extra
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm
