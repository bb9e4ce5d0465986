"""Shifted masks: ApplyMasksUDF's ``shifts``, a mask moved against each frame.

Policy
------
- LiberTEM's convention: frame pixel ``p`` meets mask pixel ``p - shift``,
  so a positive shift moves the mask down (y) or right (x); pixels without
  a partner are dropped, and a shift past the frame gives 0.
- Shifts are integers; floats are truncated toward zero, as LiberTEM's
  ``astype(int)`` does.
- They are checked when the UDF is made (form, dtype, sparse mode) and when
  the run starts (one value per signal axis), never inside a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuudf.aux_data import AuxData
from gpuudf.errors import UDFDefinitionError

__all__ = ["checked_shifts", "host_ints", "overlap_windows", "shift_length"]


def checked_shifts(shifts: Any, use_sparse: bool | str | None) -> Any:
    """``shifts`` as ApplyMasksUDF keeps them: ``None``, nav aux data, or a 1-D integer-valued array.

    Raises
    ------
    UDFDefinitionError
        For sparse masks that cannot be sliced, aux data of another kind or
        shape, or shifts that are not numbers.
    """
    if shifts is None:
        return None
    if isinstance(use_sparse, str) and use_sparse.startswith("scipy.sparse"):
        msg = (
            f"shifts with use_sparse={use_sparse!r}: scipy.sparse masks are flat and cannot be shifted "
            "in the frame's shape; use use_sparse='sparse.pydata', True or None (as LiberTEM asks)"
        )
        raise UDFDefinitionError(msg)
    if isinstance(shifts, AuxData):
        if shifts.kind != "nav" or len(shifts.extra_shape) != 1 or shifts.dtype.kind not in "iuf":
            msg = f"shifts as aux data must be kind='nav' with extra_shape=(2,) and a numeric dtype, got {shifts!r}"
            raise UDFDefinitionError(msg)
        return shifts
    array = np.asarray(shifts)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iuf":
        msg = f"shifts must be a (y, x) pair of numbers or nav aux data, got {shifts!r}"
        raise UDFDefinitionError(msg)
    return array


def overlap_windows(
    shift: Sequence[int] | np.ndarray[Any, Any], sig_shape: Sequence[int]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The pixels of a frame and of a mask moved by ``shift`` that meet, or ``None`` when none do.

    Frame pixel ``p`` meets mask pixel ``p - shift``: per axis of size
    ``n`` the frame's window is ``max(s, 0) : n + min(s, 0)`` and the
    mask's the same window moved back by ``s``.
    """
    frame_window, mask_window = [], []
    for s, n in zip((int(v) for v in shift), sig_shape, strict=True):
        start, stop = max(s, 0), n + min(s, 0)
        if start >= stop:
            return None
        frame_window.append(slice(start, stop))
        mask_window.append(slice(start - s, stop - s))
    return tuple(frame_window), tuple(mask_window)


def shift_length(shifts: Any) -> int:
    """The number of values per frame: one per signal axis the shifts move."""
    if isinstance(shifts, AuxData):
        return int(shifts.extra_shape[0])
    return int(np.shape(shifts)[-1])  # a constant pair, or a view of aux data: (frames, values)


def host_ints(shifts: Any) -> np.ndarray[Any, Any]:
    """Shifts on the host as integers, truncated as LiberTEM's ``astype(int)`` does."""
    host = shifts.get() if hasattr(shifts, "get") else shifts  # a device view of aux data
    return np.asarray(host).astype(int)
