"""Mask factories for virtual detectors: disks, rings, points, rectangles, gradients.

Geometry policy
---------------
- Every factory takes the frame shape first (``sig_shape``, ``(height,
  width)`` in pixels) and returns a NumPy array of exactly that shape, or a
  stack ``(n, *sig_shape)`` for :func:`radial_bins`; with ``sparse=True`` a
  :class:`scipy.sparse.csr_matrix` of shape ``sig_shape`` (one mask) or
  ``(n, height * width)`` (a stack of flattened masks), the forms
  :class:`~gpuudf.udfs.ApplyMasksUDF` accepts.
- Coordinates are ``(y, x)`` in pixels and may be fractional. Pixel
  ``(i, j)`` has its centre at ``(i, j)``, so the middle of a frame is
  ``((height - 1) / 2, (width - 1) / 2)``.  Distances are from pixel
  centres, as LiberTEM's ``libertem.masks`` measures them.
- Hard-edged disks and rings select the pixels whose centre is inside:
  ``d <= radius`` (and ``d > radius_inner`` for a ring), so their totals
  jump as the radius crosses pixel centres.  ``antialiased=True`` gives a
  border pixel the weight ``clip(radius + 0.5 - d, 0, 1)`` (and the mirror
  ramp at an inner radius), a linear estimate of the pixel area covered;
  its total is within 2 % of the exact area ``pi * (r**2 - ri**2)`` for
  radii of 3 px and more, and varies smoothly with centre and radii.
- A :func:`point` at a fractional position splits its unit weight over the
  four nearest pixels (bilinear); a :func:`rectangle` weighs each pixel by
  the fraction of its area ``[i - 0.5, i + 0.5) x [j - 0.5, j + 0.5)`` the
  rectangle covers, so integer corners select whole pixels.
- Bad geometry (a negative radius, an inner radius not below the outer one,
  a shape that is not two positive sizes) raises :class:`ValueError` naming
  the parameter, when the factory is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse

__all__ = [
    "annular_dark_field",
    "bright_field",
    "disk",
    "gradient_x",
    "gradient_y",
    "point",
    "radial_bins",
    "rectangle",
    "ring",
]

Mask = np.ndarray[Any, Any] | scipy.sparse.csr_matrix


def _sig_shape(sig_shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(int(s) for s in sig_shape)
    if len(shape) != 2 or min(shape) < 1:
        msg = f"sig_shape must be two positive sizes (height, width), got {tuple(sig_shape)!r}"
        raise ValueError(msg)
    return shape[0], shape[1]


def _point(name: str, value: Sequence[float]) -> tuple[float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 2 or not all(np.isfinite(values)):
        msg = f"{name} must be two finite numbers (y, x), got {tuple(value)!r}"
        raise ValueError(msg)
    return values[0], values[1]


def _radius(name: str, value: float) -> float:
    radius = float(value)
    if not np.isfinite(radius) or radius < 0:
        msg = f"{name} must be a finite number >= 0 pixels, got {value!r}"
        raise ValueError(msg)
    return radius


def _distance(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    y = np.arange(shape[0], dtype=np.float64)[:, None] - centre[0]
    x = np.arange(shape[1], dtype=np.float64)[None, :] - centre[1]
    return np.hypot(y, x)


def _finish(mask: np.ndarray[Any, Any], dtype: npt.DTypeLike, *, sparse: bool) -> Mask:
    result = mask.astype(dtype, copy=False)
    if not sparse:
        return result
    if result.ndim == 3:
        return scipy.sparse.csr_matrix(result.reshape(result.shape[0], -1))
    return scipy.sparse.csr_matrix(result)


def disk(
    sig_shape: Sequence[int],
    centre: Sequence[float],
    radius: float,
    *,
    antialiased: bool = False,
    dtype: npt.DTypeLike = np.float32,
    sparse: bool = False,
) -> Mask:
    """A filled circle: 1 inside ``radius`` of ``centre``, 0 outside.

    Parameters
    ----------
    sig_shape
        ``(height, width)`` of a frame.
    centre
        ``(y, x)`` of the centre in pixels; it may lie outside the frame.
    radius
        In pixels; ``0`` selects the pixel at the centre when the centre is
        a pixel centre.
    antialiased
        Weigh border pixels by the estimated area covered (module policy).
    dtype
        Of the returned mask.
    sparse
        Return a :class:`scipy.sparse.csr_matrix`.
    """
    shape = _sig_shape(sig_shape)
    r = _radius("radius", radius)
    d = _distance(shape, _point("centre", centre))
    mask = np.clip(r + 0.5 - d, 0.0, 1.0) if antialiased else (d <= r)
    return _finish(mask, dtype, sparse=sparse)


def ring(
    sig_shape: Sequence[int],
    centre: Sequence[float],
    radius: float,
    radius_inner: float,
    *,
    antialiased: bool = False,
    dtype: npt.DTypeLike = np.float32,
    sparse: bool = False,
) -> Mask:
    """An annulus: 1 where ``radius_inner < d <= radius``, 0 elsewhere.

    Parameters
    ----------
    sig_shape, centre, antialiased, dtype, sparse
        As for :func:`disk`.
    radius
        Outer radius in pixels.
    radius_inner
        Inner radius in pixels, below ``radius``.
    """
    shape = _sig_shape(sig_shape)
    r = _radius("radius", radius)
    ri = _radius("radius_inner", radius_inner)
    if ri >= r:
        msg = f"radius_inner ({radius_inner!r}) must be below radius ({radius!r})"
        raise ValueError(msg)
    d = _distance(shape, _point("centre", centre))
    hard = (d <= r) & (d > ri)
    mask = np.clip(r + 0.5 - d, 0.0, 1.0) - np.clip(ri + 0.5 - d, 0.0, 1.0) if antialiased else hard
    return _finish(mask, dtype, sparse=sparse)


def bright_field(
    sig_shape: Sequence[int],
    centre: Sequence[float],
    radius: float,
    *,
    antialiased: bool = False,
    dtype: npt.DTypeLike = np.float32,
) -> np.ndarray[Any, Any]:
    """A bright-field detector: a disk over the direct beam.

    Parameters
    ----------
    sig_shape, antialiased, dtype
        As for :func:`disk`.
    centre
        ``(y, x)`` of the direct beam in pixels.
    radius
        Detector radius in pixels (typically the beam's, or less).
    """
    mask = disk(sig_shape, centre, radius, antialiased=antialiased, dtype=dtype)
    assert isinstance(mask, np.ndarray)
    return mask


def annular_dark_field(
    sig_shape: Sequence[int],
    centre: Sequence[float],
    radius_inner: float,
    radius_outer: float,
    *,
    antialiased: bool = False,
    dtype: npt.DTypeLike = np.float32,
) -> np.ndarray[Any, Any]:
    """An annular dark-field detector: a ring outside the direct beam.

    Parameters
    ----------
    sig_shape, antialiased, dtype
        As for :func:`disk`.
    centre
        ``(y, x)`` of the direct beam in pixels.
    radius_inner, radius_outer
        The detector's inner and outer radii in pixels.
    """
    mask = ring(sig_shape, centre, radius_outer, radius_inner, antialiased=antialiased, dtype=dtype)
    assert isinstance(mask, np.ndarray)
    return mask


def point(
    sig_shape: Sequence[int],
    position: Sequence[float],
    *,
    dtype: npt.DTypeLike = np.float32,
    sparse: bool = False,
) -> Mask:
    """A single-pixel detector at ``position``, bilinear between pixels.

    Parameters
    ----------
    sig_shape, dtype, sparse
        As for :func:`disk`.
    position
        ``(y, x)`` in pixels, inside the frame: ``0 <= y <= height - 1``.
    """
    shape = _sig_shape(sig_shape)
    y, x = _point("position", position)
    if not (0 <= y <= shape[0] - 1 and 0 <= x <= shape[1] - 1):
        msg = f"position {tuple(position)!r} lies outside the frame of shape {shape}"
        raise ValueError(msg)
    mask = np.zeros(shape, dtype=np.float64)
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    fy, fx = y - y0, x - x0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            if wy * wx > 0:
                mask[y0 + dy, x0 + dx] += wy * wx
    return _finish(mask, dtype, sparse=sparse)


def _coverage(size: int, start: float, stop: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Fraction of each pixel ``[i - 0.5, i + 0.5)`` that ``[start, stop)`` covers."""
    lower = np.arange(size, dtype=np.float64) - 0.5
    covered: np.ndarray[Any, np.dtype[np.float64]] = np.clip(
        np.minimum(lower + 1, stop) - np.maximum(lower, start), 0.0, 1.0
    )
    return covered


def rectangle(
    sig_shape: Sequence[int],
    top_left: Sequence[float],
    size: Sequence[float],
    *,
    dtype: npt.DTypeLike = np.float32,
    sparse: bool = False,
) -> Mask:
    """A rectangle of ``size`` pixels whose first pixel is ``top_left``.

    With integer values it selects the pixels ``top_left[0] <= i <
    top_left[0] + size[0]`` (and likewise for ``j``), as the slice
    ``mask[y:y + h, x:x + w]``; fractional values weigh the border pixels by
    the area covered.

    Parameters
    ----------
    sig_shape, dtype, sparse
        As for :func:`disk`.
    top_left
        ``(y, x)`` of the first pixel.
    size
        ``(height, width)`` in pixels, both positive.
    """
    shape = _sig_shape(sig_shape)
    y, x = _point("top_left", top_left)
    height, width = _point("size", size)
    if height <= 0 or width <= 0:
        msg = f"size must be a positive (height, width), got {tuple(size)!r}"
        raise ValueError(msg)
    rows = _coverage(shape[0], y - 0.5, y - 0.5 + height)
    cols = _coverage(shape[1], x - 0.5, x - 0.5 + width)
    return _finish(np.outer(rows, cols), dtype, sparse=sparse)


def _gradient(sig_shape: Sequence[int], axis: int, origin: float, dtype: npt.DTypeLike) -> np.ndarray[Any, Any]:
    shape = _sig_shape(sig_shape)
    coordinates = np.arange(shape[axis], dtype=np.float64) - float(origin)
    along = coordinates[None, :] if axis == 1 else coordinates[:, None]
    return np.broadcast_to(along, shape).astype(dtype)


def gradient_x(
    sig_shape: Sequence[int], *, origin: float = 0.0, dtype: npt.DTypeLike = np.float32
) -> np.ndarray[Any, Any]:
    """Each pixel's ``x`` coordinate minus ``origin``: a mask for the first moment along x.

    Parameters
    ----------
    sig_shape, dtype
        As for :func:`disk`.
    origin
        The ``x`` that weighs 0; LiberTEM's ``gradient_x`` has 0.
    """
    return _gradient(sig_shape, 1, origin, dtype)


def gradient_y(
    sig_shape: Sequence[int], *, origin: float = 0.0, dtype: npt.DTypeLike = np.float32
) -> np.ndarray[Any, Any]:
    """Each pixel's ``y`` coordinate minus ``origin``: a mask for the first moment along y.

    Parameters
    ----------
    sig_shape, dtype
        As for :func:`disk`.
    origin
        The ``y`` that weighs 0; LiberTEM's ``gradient_y`` has 0.
    """
    return _gradient(sig_shape, 0, origin, dtype)


def radial_bins(
    sig_shape: Sequence[int],
    centre: Sequence[float],
    radius: float,
    *,
    radius_inner: float = 0.0,
    n_bins: int | None = None,
    antialiased: bool = False,
    normalize: bool = False,
    dtype: npt.DTypeLike = np.float32,
    sparse: bool = False,
) -> Mask:
    """A stack of ``n_bins`` rings of equal width from ``radius_inner`` to ``radius``.

    Bin ``k`` selects ``edge[k] < d <= edge[k + 1]`` with ``edge =
    linspace(radius_inner, radius, n_bins + 1)``; with ``radius_inner=0``
    the first bin also holds the centre (``d == 0``).  The hard-edged bins
    add up to :func:`disk` (``radius_inner=0``) or :func:`ring`.

    Parameters
    ----------
    sig_shape, centre, antialiased, dtype, sparse
        As for :func:`disk`; antialiased bins overlap at their borders and
        still add up to the antialiased ring.
    radius, radius_inner
        Outer and inner radius of the whole stack, in pixels.
    n_bins
        Number of rings; default one ring per pixel of radius (at least 1).
    normalize
        Scale each bin to a sum of 1 (empty bins stay 0), for mean
        intensities instead of sums.

    Returns
    -------
    numpy.ndarray or scipy.sparse.csr_matrix
        ``(n_bins, *sig_shape)`` dense, or ``(n_bins, height * width)`` sparse.
    """
    shape = _sig_shape(sig_shape)
    r = _radius("radius", radius)
    ri = _radius("radius_inner", radius_inner)
    if ri >= r:
        msg = f"radius_inner ({radius_inner!r}) must be below radius ({radius!r})"
        raise ValueError(msg)
    count = max(1, round(r - ri)) if n_bins is None else int(n_bins)
    if count < 1:
        msg = f"n_bins must be at least 1, got {n_bins!r}"
        raise ValueError(msg)
    d = _distance(shape, _point("centre", centre))
    edges = np.linspace(ri, r, count + 1)
    bins = np.empty((count, *shape), dtype=np.float64)
    for k in range(count):
        low, high = edges[k], edges[k + 1]
        if antialiased:
            outer = np.clip(high + 0.5 - d, 0.0, 1.0)
            inner = np.clip(low + 0.5 - d, 0.0, 1.0) if (k > 0 or ri > 0) else 0.0
            bins[k] = outer - inner
        else:
            bins[k] = (d <= high) & ((d > low) if (k > 0 or ri > 0) else (d >= low))
    if normalize:
        totals = bins.sum(axis=(1, 2), keepdims=True)
        np.divide(bins, totals, out=bins, where=totals > 0)
    return _finish(bins, dtype, sparse=sparse)
