"""The shape of a dataset: navigation axes first, signal axes last."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["Positions", "Shape"]

#: Flat nav indices of frames: a ``range`` when contiguous, else an index array.
Positions = range | np.ndarray[Any, np.dtype[np.intp]]


class Shape(tuple[int, ...]):
    """A dataset shape that knows which trailing axes are the signal.

    Behaves as a plain tuple of ints (``len``, indexing, comparison with
    tuples) and adds ``nav`` and ``sig``.

    Parameters
    ----------
    dims
        All axis lengths, navigation first.
    sig_dims
        How many trailing axes form one frame.
    """

    sig_dims: int

    def __new__(cls, dims: Iterable[int], sig_dims: int) -> Shape:  # noqa: D102 - documented on the class
        values = tuple(int(d) for d in dims)
        if not 0 < sig_dims < len(values):
            msg = (
                f"sig_dims={sig_dims} does not fit a shape of rank {len(values)}: "
                f"need 1 <= sig_dims <= {len(values) - 1}"
            )
            raise ValueError(msg)
        if any(d < 0 for d in values):
            msg = f"shape {values} has a negative axis length"
            raise ValueError(msg)
        self = super().__new__(cls, values)
        self.sig_dims = sig_dims
        return self

    def __reduce__(self) -> tuple[type[Shape], tuple[tuple[int, ...], int]]:
        return (type(self), (tuple(self), self.sig_dims))

    @property
    def nav(self) -> tuple[int, ...]:
        """The navigation (scan) axes."""
        return tuple(self[: len(self) - self.sig_dims])

    @property
    def sig(self) -> tuple[int, ...]:
        """The signal (frame) axes."""
        return tuple(self[len(self) - self.sig_dims :])

    @property
    def nav_size(self) -> int:
        """Number of frames."""
        return math.prod(self.nav)

    @property
    def sig_size(self) -> int:
        """Number of pixels in one frame."""
        return math.prod(self.sig)

    @property
    def flat_nav(self) -> tuple[int, ...]:
        """The shape with the navigation axes flattened into one."""
        return (self.nav_size, *self.sig)

    def __repr__(self) -> str:
        return f"Shape(nav={self.nav}, sig={self.sig})"
