"""Regions of interest: every form a user may pass, turned into one flat mask.

Policy: a ROI is checked against the dataset's nav shape before a run starts;
anything ambiguous (wrong size, mixed truth values, coordinates outside the
scan) is a ``ValueError`` that says what was expected.  The engine only ever
sees a flat boolean mask, or ``None`` for "all frames".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["normalize_roi"]


def _is_coordinate(value: Any, nav_dims: int) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == nav_dims
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in value)
    )


def _flat_index(coordinate: Sequence[int], nav_shape: tuple[int, ...]) -> int:
    for axis, (index, length) in enumerate(zip(coordinate, nav_shape, strict=True)):
        if not -length <= index < length:
            msg = f"ROI coordinate {tuple(coordinate)} is outside the nav shape {nav_shape} (axis {axis})"
            raise ValueError(msg)
    return int(np.ravel_multi_index(tuple(int(c) % n for c, n in zip(coordinate, nav_shape, strict=True)), nav_shape))


def _from_pairs(pairs: Sequence[Any], nav_shape: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    values = set()
    indices = []
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and _is_coordinate(pair[0], len(nav_shape))):
            msg = f"ROI entry {pair!r} is not a (coordinate, bool) pair for nav shape {nav_shape}"
            raise ValueError(msg)
        values.add(bool(pair[1]))
        indices.append(_flat_index(pair[0], nav_shape))
    if len(values) != 1:
        msg = "ROI (coordinate, bool) pairs must all carry the same truth value; the rest of the nav gets the opposite"
        raise ValueError(msg)
    value = values.pop()
    mask = np.full(math.prod(nav_shape), not value, dtype=bool)
    mask[indices] = value
    return mask


def _dense(roi: Any) -> Any:
    """Sparse ROIs (scipy.sparse, pydata sparse) as dense arrays, without importing either."""
    if hasattr(roi, "toarray"):  # scipy.sparse matrices and arrays
        return roi.toarray()
    if hasattr(roi, "todense") and type(roi).__module__.split(".")[0] == "sparse":
        return roi.todense()
    return roi


def normalize_roi(roi: Any, nav_shape: tuple[int, ...]) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    """A flat boolean mask over the nav axes, or ``None`` for no ROI.

    Parameters
    ----------
    roi
        A coordinate tuple; a sequence of ``(coordinate, bool)`` pairs with
        equal bools; a mask shaped like nav or flat; a scipy.sparse or pydata
        sparse array of the nav shape.
    nav_shape
        The dataset's nav axes.

    Raises
    ------
    ValueError
        For a ROI that does not fit ``nav_shape`` or is ambiguous.
    """
    if roi is None:
        return None
    nav_size = math.prod(nav_shape)
    if _is_coordinate(roi, len(nav_shape)) and isinstance(roi, tuple):
        mask = np.zeros(nav_size, dtype=bool)
        mask[_flat_index(roi, nav_shape)] = True
        return mask
    if isinstance(roi, list | tuple) and roi and isinstance(roi[0], tuple | list):
        return _from_pairs(roi, nav_shape)
    array = np.asarray(_dense(roi))
    if array.size != nav_size or (array.shape != nav_shape and array.ndim != 1 and array.shape != (1, nav_size)):
        msg = f"ROI of shape {array.shape} does not fit the nav shape {nav_shape} (or {nav_size} flat)"
        raise ValueError(msg)
    if array.dtype != bool:
        if array.dtype.kind not in "biuf":
            msg = f"ROI of dtype {array.dtype} is not a mask"
            raise ValueError(msg)
        # LiberTEM's words, which its users' tests match
        msg = f"ROI dtype is {array.dtype}, expected bool. Attempting cast to bool (non-zero selects)."
        warnings.warn(msg, UserWarning, stacklevel=3)
        array = array != 0
    return np.ascontiguousarray(array.reshape(nav_size))
