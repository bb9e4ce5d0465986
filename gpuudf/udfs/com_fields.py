"""The field helpers of :mod:`gpuudf.udfs.com`: scan-rotation corrections, gradients, and guessing them.

Policy: pure NumPy functions of nav-shaped ``(y, x)`` fields, with the names,
arguments and sign conventions of LiberTEM 0.16 (``libertem.udf.com`` and
``libertem.corrections.coordinates``); :mod:`gpuudf.udfs.com` re-exports
them under the names LiberTEM code imports.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "GuessResult",
    "apply_correction",
    "coordinate_check",
    "curl_2d",
    "divergence",
    "guess_corrections",
    "magnitude",
]

FloatArray = np.ndarray[Any, np.dtype[np.floating[Any]]]


class GuessResult(NamedTuple):
    """What :func:`guess_corrections` infers; ``CoMUDF.with_params(**guess._asdict())`` applies it."""

    scan_rotation: int
    flip_y: bool
    cy: float
    cx: float


# ---------------------------------------------------------------- field helpers


def _transform(scan_rotation: float, flip_y: bool) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The (y, x) matrix ``rotate(scan_rotation) @ flip_y`` of LiberTEM's ``apply_correction``."""
    angle = np.pi / 180 * scan_rotation
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]])
    flip = np.diag([-1.0, 1.0]) if flip_y else np.eye(2)
    matrix: np.ndarray[Any, np.dtype[np.float64]] = rotation @ flip
    return matrix


def apply_correction(
    y_centers: npt.ArrayLike,
    x_centers: npt.ArrayLike,
    scan_rotation: float,
    flip_y: bool,
    forward: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Rotate (and flip) CoM shifts from detector into scan coordinates.

    Parameters
    ----------
    y_centers, x_centers
        The y and x components of the shifts, any (equal) shape.
    scan_rotation
        In degrees; a positive angle rotates the shift vectors clockwise.
    flip_y
        Negate y before rotating.
    forward
        ``False`` applies the inverse transformation.

    Returns
    -------
    tuple of numpy.ndarray
        The transformed ``(y, x)`` components, in the input's shape.
    """
    y = np.asarray(y_centers)
    x = np.asarray(x_centers)
    matrix = _transform(scan_rotation, flip_y)
    if not forward:
        matrix = np.linalg.inv(matrix)
    y_out, x_out = matrix @ np.stack((y.reshape(-1), x.reshape(-1)))
    return y_out.reshape(y.shape), x_out.reshape(x.shape)


def divergence(y_centers: npt.ArrayLike, x_centers: npt.ArrayLike) -> FloatArray:
    """Discrete divergence ``dFy/dy + dFx/dx`` of a 2D field (``numpy.gradient``; axis 0 is y)."""
    result: FloatArray = np.gradient(y_centers, axis=0) + np.gradient(x_centers, axis=1)
    return result


def curl_2d(y_centers: npt.ArrayLike, x_centers: npt.ArrayLike) -> FloatArray:
    """Discrete curl ``dFy/dx - dFx/dy`` of a 2D field (``numpy.gradient``; axis 0 is y)."""
    result: FloatArray = np.gradient(y_centers, axis=1) - np.gradient(x_centers, axis=0)
    return result


def magnitude(y_centers: npt.ArrayLike, x_centers: npt.ArrayLike) -> FloatArray:
    """Length of each field vector."""
    result: FloatArray = np.hypot(y_centers, x_centers)
    return result


_ROIType = npt.ArrayLike | tuple[slice, ...] | None

#: The default statistics region of LiberTEM: the last row and column hold gradient artefacts.
_DEFAULT_GUESS_ROI = (slice(0, -1), slice(0, -1))


def coordinate_check(
    y_centers: npt.ArrayLike, x_centers: npt.ArrayLike, roi: _ROIType = None
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """RMS curl of the corrected field for each whole-degree ``scan_rotation``, without and with ``flip_y``.

    A purely electrostatic field has no curl, so the right corrections
    minimise it.

    Parameters
    ----------
    y_centers, x_centers
        2D arrays of the y and x CoM shifts per scan position.
    roi
        Selects the positions the statistics use (a boolean array or a tuple
        of slices); by default all but the last row and column.

    Returns
    -------
    tuple of numpy.ndarray
        ``(straight, flipped)``: 360 RMS curls each, for 0 to 359 degrees,
        with ``flip_y=False`` and ``flip_y=True``.
    """
    selection: Any = _DEFAULT_GUESS_ROI if roi is None else roi
    y = np.asarray(y_centers, dtype=np.float64)
    x = np.asarray(x_centers, dtype=np.float64)
    # The curl is linear in the field: for the corrected field T @ (y, x),
    # curl = T00 dy/dX + T01 dx/dX - T10 dy/dY - T11 dx/dY (X, Y: the scan axes).
    # The mean squared curl is then a quadratic form in T over four gradients.
    gradients = np.stack(
        [
            np.gradient(y, axis=1)[selection].reshape(-1),
            np.gradient(x, axis=1)[selection].reshape(-1),
            -np.gradient(y, axis=0)[selection].reshape(-1),
            -np.gradient(x, axis=0)[selection].reshape(-1),
        ]
    )
    gram = gradients @ gradients.T / gradients.shape[1]
    results = []
    for flip in (False, True):
        coefficients = np.array([_transform(angle, flip).reshape(-1) for angle in range(360)])
        mean_square = np.einsum("ki,ij,kj->k", coefficients, gram, coefficients)
        results.append(np.sqrt(np.maximum(mean_square, 0.0)))
    return results[0], results[1]


def guess_corrections(
    y_centers: npt.ArrayLike,
    x_centers: npt.ArrayLike,
    roi: _ROIType = None,
) -> GuessResult:
    """Guess ``scan_rotation``, ``flip_y`` and the centre ``(cy, cx)`` from CoM data, as LiberTEM does.

    Assumes atomic-resolution 4D STEM of a purely electrostatic field: the
    right corrections minimise the RMS curl; of the two angles 180 degrees
    apart that do, the right one makes the divergence histogram's negative
    tail (at the atom columns) the stronger one; the mean deflection is zero,
    so ``(cy, cx)`` is the mean of the inputs.

    Parameters
    ----------
    y_centers, x_centers
        2D arrays of the y and x CoM per scan position (``raw_com`` of a
        :class:`CoMUDF` result, for example).  If they are shifts relative to
        some centre, the guessed ``(cy, cx)`` are relative to it too.
    roi
        Selects the positions the statistics use (a boolean array or a tuple
        of slices); by default all but the last row and column, which hold
        gradient artefacts.

    Returns
    -------
    GuessResult
        ``scan_rotation`` (whole degrees in (-180, 180]), ``flip_y``, ``cy``
        and ``cx``: pass ``**result._asdict()`` to :meth:`CoMUDF.with_params`.
    """
    selection: Any = _DEFAULT_GUESS_ROI if roi is None else roi
    y = np.asarray(y_centers, dtype=np.float64)
    x = np.asarray(x_centers, dtype=np.float64)
    straight, flipped = coordinate_check(y, x, roi=selection)
    flip_y = bool(np.min(flipped) < np.min(straight))
    angle = int(np.argmin(flipped if flip_y else straight))
    corrected_y, corrected_x = apply_correction(y, x, scan_rotation=angle, flip_y=flip_y)
    div = divergence(corrected_y, corrected_x)[selection]
    extent = max(-float(np.min(div)), float(np.max(div)))
    hist, _ = np.histogram(div, range=(-extent, extent), bins=5)
    if hist[0] < hist[-1]:  # the positive tail is stronger: the polarity is off by 180 degrees
        angle += 180
    if angle > 180:
        angle -= 360
    return GuessResult(
        scan_rotation=angle,
        flip_y=flip_y,
        cy=float(np.mean(y[selection])),
        cx=float(np.mean(x[selection])),
    )
