"""Where a UDF is in the data: a block of a dataset as an origin and a shape.

Policy: this is LiberTEM's ``Slice``, with the same attributes and the same
meaning, so that UDF code written against ``self.meta.slice`` and
``self.meta.sig_slice`` ports unchanged.  Inside a run, ``meta.slice`` is in
the coordinates LiberTEM uses: the navigation axes flattened into one and
compressed to the ROI (the n-th *selected* frame has nav origin ``n``),
followed by the signal axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from gpuudf.shape import Shape

__all__ = ["Slice"]


class Slice:
    """An n-dimensional block: ``origin`` (its first index per axis) and ``shape``.

    Parameters
    ----------
    origin
        Index of the block's first element along each axis.
    shape
        A :class:`~gpuudf.Shape` of the same rank; its ``sig_dims`` tells
        which trailing axes are the signal.
    """

    __slots__ = ("origin", "shape")

    def __init__(self, origin: Sequence[int], shape: Shape) -> None:
        if not isinstance(shape, Shape):
            msg = f"a Slice's shape must be a gpuudf.Shape (it knows its sig axes), got {type(shape).__name__}"
            raise TypeError(msg)
        self.origin: tuple[int, ...] = tuple(int(o) for o in origin)
        self.shape: Shape = shape
        if len(self.origin) != len(shape):
            msg = f"Slice origin {self.origin} and shape {tuple(shape)} differ in rank"
            raise ValueError(msg)

    @classmethod
    def from_shape(cls, shape: Sequence[int], sig_dims: int) -> Slice:
        """The block covering all of ``shape``, at origin zero."""
        return cls((0,) * len(shape), Shape(shape, sig_dims=sig_dims))

    @overload
    def get(self, arr: None = None, sig_only: bool = False, nav_only: bool = False) -> tuple[slice, ...]: ...
    @overload
    def get(self, arr: Any, sig_only: bool = False, nav_only: bool = False) -> Any: ...
    def get(self, arr: Any = None, sig_only: bool = False, nav_only: bool = False) -> Any:
        """Python slices for this block, or ``arr`` indexed with them.

        Parameters
        ----------
        arr
            When given, return ``arr[slices]``; with ``sig_only`` the slices
            apply to ``arr``'s trailing axes (``arr[..., slices]``).
        sig_only
            Only the signal axes (to cut masks or frames).
        nav_only
            Only the navigation axes (to cut nav-shaped arrays; axes of
            ``arr`` beyond them are kept whole).
        """
        nav_dims = self.shape.nav_dims
        pairs = list(zip(self.origin, self.shape, strict=True))
        if sig_only:
            pairs = pairs[nav_dims:]
        elif nav_only:
            pairs = pairs[:nav_dims]
        slices = tuple(slice(o, o + s) for o, s in pairs)
        if arr is None:
            return slices
        return arr[(Ellipsis, *slices)] if sig_only else arr[slices]

    @property
    def nav(self) -> Slice:
        """The navigation part alone."""
        return Slice(self.origin[: self.shape.nav_dims], self.shape.nav)

    @property
    def sig(self) -> Slice:
        """The signal part alone."""
        return Slice(self.origin[self.shape.nav_dims :], self.shape.sig)

    def shift(self, other: Slice) -> Slice:
        """The block with its origin relative to ``other``'s origin."""
        if len(self.origin) != len(other.origin):
            msg = f"cannot shift a Slice of rank {len(self.origin)} by one of rank {len(other.origin)}"
            raise ValueError(msg)
        return Slice(tuple(a - b for a, b in zip(self.origin, other.origin, strict=True)), self.shape)

    def shift_by(self, offset: Sequence[int]) -> Slice:
        """The block moved by ``offset``."""
        if len(self.origin) != len(offset):
            msg = f"cannot shift a Slice of rank {len(self.origin)} by an offset of rank {len(offset)}"
            raise ValueError(msg)
        return Slice(tuple(a + int(b) for a, b in zip(self.origin, offset, strict=True)), self.shape)

    def discard_nav(self) -> Slice:
        """The block with origin and length zero on the navigation axes."""
        nav_dims = self.shape.nav_dims
        zeros = (0,) * nav_dims
        return Slice(
            zeros + self.origin[nav_dims:],
            Shape(zeros + tuple(self.shape)[nav_dims:], sig_dims=self.shape.sig_dims),
        )

    def is_null(self) -> bool:
        """Whether the block spans no element."""
        return any(s == 0 for s in self.shape)

    def intersection_with(self, other: Slice) -> Slice:
        """The block both slices cover (zero-length axes where they do not overlap)."""
        starts = [max(a, b) for a, b in zip(self.origin, other.origin, strict=True)]
        stops = [
            min(a + n, b + m) for a, n, b, m in zip(self.origin, self.shape, other.origin, other.shape, strict=True)
        ]
        lengths = [max(0, stop - start) for start, stop in zip(starts, stops, strict=True)]
        return Slice(starts, Shape(lengths, sig_dims=self.shape.sig_dims))

    def adjust_for_roi(self, roi: np.ndarray[Any, Any] | None) -> Slice:
        """The flat-nav block in the coordinates of the frames ``roi`` selects."""
        if roi is None:
            return self
        flat = np.asarray(roi, dtype=bool).reshape(-1)
        start, length = self.origin[0], self.shape[0]
        origin = int(np.count_nonzero(flat[:start]))
        count = int(np.count_nonzero(flat[start : start + length]))
        sig = tuple(self.shape)[1:]
        return Slice((origin, *self.origin[1:]), Shape((count, *sig), sig_dims=self.shape.sig_dims))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Slice):
            return NotImplemented
        same_shape = tuple(self.shape) == tuple(other.shape) and self.shape.sig_dims == other.shape.sig_dims
        return self.origin == other.origin and same_shape

    def __hash__(self) -> int:
        return hash((self.origin, tuple(self.shape), self.shape.sig_dims))

    def __getstate__(self) -> tuple[tuple[int, ...], Shape]:
        return (self.origin, self.shape)

    def __setstate__(self, state: tuple[tuple[int, ...], Shape]) -> None:
        self.origin, self.shape = state

    def __repr__(self) -> str:
        return f"<Slice origin={self.origin!r} shape={tuple(self.shape)!r} sig_dims={self.shape.sig_dims}>"
