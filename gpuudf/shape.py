"""The shape of a dataset: navigation axes first, signal axes last."""

from __future__ import annotations

import functools
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
    tuples, ``np.zeros(shape.nav)``) and adds what LiberTEM's ``Shape``
    offers: ``nav`` and ``sig`` (shapes themselves), ``size``, ``dims``,
    ``to_tuple()``, ``flatten_nav()`` and ``flatten_sig()``.

    Parameters
    ----------
    dims
        All axis lengths, navigation first.
    sig_dims
        How many trailing axes form one frame: from 0 (a nav-only shape, as
        ``shape.nav`` is) to all of them (a sig-only shape, as ``shape.sig``
        is).
    """

    sig_dims: int

    def __new__(cls, dims: Iterable[int], sig_dims: int) -> Shape:  # noqa: D102 - documented on the class
        values = tuple(int(d) for d in dims)
        if not 0 <= sig_dims <= len(values):
            msg = f"sig_dims={sig_dims} does not fit a shape of rank {len(values)}: need 0 <= sig_dims <= {len(values)}"
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
    def nav_dims(self) -> int:
        """Number of navigation axes."""
        return len(self) - self.sig_dims

    @property
    def dims(self) -> int:
        """Number of axes."""
        return len(self)

    # cached: the engine reads them per partition and per result; a Shape never changes
    @functools.cached_property
    def nav(self) -> Shape:
        """The navigation (scan) axes, as a shape without signal axes."""
        return Shape(self[: self.nav_dims], sig_dims=0)

    @functools.cached_property
    def sig(self) -> Shape:
        """The signal (frame) axes, as a shape without navigation axes."""
        return Shape(self[self.nav_dims :], sig_dims=self.sig_dims)

    @property
    def size(self) -> int:
        """Number of elements the shape spans (``0`` for no axes, as in LiberTEM)."""
        return math.prod(self) if self else 0

    @property
    def nav_size(self) -> int:
        """Number of frames."""
        return math.prod(self[: self.nav_dims])

    @property
    def sig_size(self) -> int:
        """Number of pixels in one frame."""
        return math.prod(self[self.nav_dims :])

    @property
    def flat_nav(self) -> tuple[int, ...]:
        """The shape with the navigation axes flattened into one, as a tuple."""
        return (self.nav_size, *self[self.nav_dims :])

    def flatten_nav(self) -> Shape:
        """The shape with the navigation axes flattened into one."""
        return Shape(self.flat_nav, sig_dims=self.sig_dims)

    def flatten_sig(self) -> Shape:
        """The shape with the signal axes flattened into one."""
        return Shape((*self[: self.nav_dims], self.sig_size), sig_dims=1)

    def to_tuple(self) -> tuple[int, ...]:
        """The axis lengths as a plain tuple."""
        return tuple(self)

    def __repr__(self) -> str:
        if self.sig_dims in (0, len(self)):  # a nav or sig part: messages read it as the tuple it is
            return repr(tuple(self))
        return f"Shape(nav={tuple(self[: self.nav_dims])}, sig={tuple(self[self.nav_dims :])})"
