"""Centre of mass (CoM) of every frame, as LiberTEM 0.16's ``libertem.udf.com``.

Policy
------
- **LiberTEM's semantics, exactly.**  Names, defaults, result buffers, signs
  and masks follow ``libertem.udf.com``: the mask is the disk ``r`` around
  ``(cy, cx)`` minus the disk ``ri`` (both borders by ``<=``, an ``ri`` close
  to 0 keeps the centre pixel); the centre defaults to ``sig_shape // 2``;
  ``raw_shifts = com - (cy, cx)``; ``field`` is ``raw_shifts`` transformed by
  ``rotate(scan_rotation) @ flip_y`` and then flattened by the regression; a
  frame with zero total intensity in the mask has zero shift.  Divergence and
  curl are ``numpy.gradient`` over the full nav grid, where frames outside the
  ROI (or not merged yet) are NaN, so a selected frame next to one of those
  gets a NaN divergence and curl, as in LiberTEM.
- **Declared dtypes.**  Every ``nav`` result has ``result_type(input dtype,
  float32)``, the dtype LiberTEM declares (LiberTEM itself returns some of
  them as ``float64`` when there is no ROI); ``regression`` is ``float64``.
- **One matmul per tile on the device.**  ``get_task_data`` builds the
  ``(pixels, 3)`` matrix ``[mask, mask * y, mask * x]`` once per worker with
  ``self.xp``, over the rows the mask touches; ``process_tile`` is a
  strided view of those rows and a matmul into a private ``nav`` buffer,
  so a small mask reads a fraction of each frame.  Everything derived (shifts, corrections, regression,
  gradients) is computed on the host in ``get_results`` with NumPy.
- **Fail before work.**  Parameters are checked when the UDF is made;
  what needs the dataset (a 2D nav and sig shape, a centre inside the frame,
  real-valued data) when the run starts, before a frame is read.  Every
  mistake raises :class:`~gpuudf.errors.UDFDefinitionError` (a ``ValueError``)
  naming the parameter.
- **Beyond LiberTEM**, where it would crash: a nav axis of length 1 gives
  NaN divergence and curl instead of an error from ``numpy.gradient``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from enum import IntEnum
from typing import Any, Literal, NamedTuple, TypeGuard

import numpy as np

from gpuudf.buffers import BufferDeclaration
from gpuudf.errors import UDFDefinitionError
from gpuudf.udf import UDF
from gpuudf.udfs.com_fields import (
    FloatArray,
    GuessResult,
    apply_correction,
    coordinate_check,
    curl_2d,
    divergence,
    guess_corrections,
    magnitude,
)

__all__ = [
    "CoMParams",
    "CoMUDF",
    "GuessResult",
    "RegressionOptions",
    "RegressionOptionsT",
    "apply_correction",
    "coordinate_check",
    "curl_2d",
    "divergence",
    "guess_corrections",
    "magnitude",
]


class RegressionOptions(IntEnum):
    """The regressions :class:`CoMUDF` can fit and subtract from its ``field``."""

    #: Subtract nothing.
    NO_REGRESSION = -1
    #: Subtract the mean field (a centre offset).
    SUBTRACT_MEAN = 0
    #: Subtract a plane fitted to the field (centre offset and linear descan error).
    SUBTRACT_LINEAR = 1


#: What ``regression`` takes: a :class:`RegressionOptions` (or -1, 0, 1), or a (3, 2) array.
RegressionOptionsT = RegressionOptions | Literal[-1, 0, 1] | np.ndarray[Any, Any]


class CoMParams(NamedTuple):
    """The parameters of :class:`CoMUDF`; see :meth:`CoMUDF.with_params` for each."""

    cy: float | None = None
    cx: float | None = None
    r: float = float("inf")
    ri: float | None = 0.0
    scan_rotation: float = 0.0
    flip_y: bool = False
    regression: RegressionOptionsT = RegressionOptions.NO_REGRESSION


# ---------------------------------------------------------------- parameter checks


def _is_real(value: object) -> TypeGuard[numbers.Real]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _check_finite(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not (_is_real(value) and math.isfinite(value)):
        allowed = "None or a finite number" if optional else "a finite number"
        msg = f"CoMUDF parameter {name} must be {allowed}, got {value!r}"
        raise UDFDefinitionError(msg)


def _regression_matrix(regression: object) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """``regression`` as a (3, 2) array, or ``None`` for an order to fit; raises when it is neither."""
    if isinstance(regression, numbers.Integral) and not isinstance(regression, bool | np.bool_):
        if int(regression) not in tuple(RegressionOptions):
            msg = (
                f"CoMUDF parameter regression must be one of {[int(o) for o in RegressionOptions]} "
                f"(RegressionOptions) or a (3, 2) array, got {regression!r}"
            )
            raise UDFDefinitionError(msg)
        return None
    try:
        matrix = np.array(regression, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.shape != (3, 2) or not np.isfinite(matrix).all():
        msg = (
            "CoMUDF parameter regression must be a RegressionOptions member (-1, 0, 1) or a finite (3, 2) "
            f"array [[y, x], [dy/dy, dx/dy], [dy/dx, dx/dx]], got {regression!r}"
        )
        raise UDFDefinitionError(msg)
    return matrix


def _check_params(params: object) -> None:
    """Check everything about ``params`` that does not need the dataset."""
    if not isinstance(params, CoMParams):
        msg = f"CoMUDF parameter com_params must be a CoMParams, got {type(params).__name__}"
        raise UDFDefinitionError(msg)
    _check_finite("cy", params.cy, optional=True)
    _check_finite("cx", params.cx, optional=True)
    if not _is_real(params.r) or not float(params.r) > 0:
        msg = f"CoMUDF parameter r (outer radius) must be a number > 0 (inf for the whole frame), got {params.r!r}"
        raise UDFDefinitionError(msg)
    if params.ri is not None:
        _check_finite("ri", params.ri)
        if params.ri < 0:
            msg = f"CoMUDF parameter ri (inner radius) must be >= 0, got {params.ri!r}"
            raise UDFDefinitionError(msg)
        if params.ri >= params.r:
            msg = f"CoMUDF parameter ri (inner radius, {params.ri!r}) must be less than r ({params.r!r})"
            raise UDFDefinitionError(msg)
    _check_finite("scan_rotation", params.scan_rotation)
    if not isinstance(params.flip_y, bool | np.bool_):
        msg = f"CoMUDF parameter flip_y must be True or False, got {params.flip_y!r}"
        raise UDFDefinitionError(msg)
    _regression_matrix(params.regression)


# ---------------------------------------------------------------- the UDF


class CoMUDF(UDF):
    """Centre of mass of every frame, and the field it implies (LiberTEM's ``CoMUDF``).

    Make one with :meth:`with_params`.  All results but ``regression`` are
    ``nav`` buffers in ``result_type(input dtype, float32)``:

    - ``raw_com`` (2,): the CoM ``(y, x)`` in pixel coordinates of the frame,
      within the mask.
    - ``raw_shifts`` (2,): ``raw_com - (cy, cx)``.
    - ``field`` (2,): ``raw_shifts`` rotated by ``scan_rotation`` (after
      ``flip_y``), minus the regression.
    - ``field_y``, ``field_x``: the components of ``field``.
    - ``magnitude``: the length of ``field``.
    - ``divergence``, ``curl``: of ``field`` over the scan, by
      ``numpy.gradient`` (axis 0 is y); NaN next to frames outside the ROI.
    - ``regression`` (``single``, (3, 2), float64): what was subtracted from
      the field, ``[[y, x], [dy/dy, dx/dy], [dy/dx, dx/dx]]``.

    A frame with no intensity inside the mask has a zero shift.  Needs a 2D
    scan and 2D frames.

    Parameters
    ----------
    com_params
        The parameters; by default whole-frame CoM relative to the frame
        centre without corrections.

    Raises
    ------
    UDFDefinitionError
        For a parameter out of range, naming it; see :meth:`with_params`.
    """

    def __init__(self, com_params: CoMParams = CoMParams()) -> None:  # noqa: B008 - an immutable NamedTuple
        _check_params(com_params)
        super().__init__(com_params=com_params)

    @classmethod
    def with_params(
        cls,
        *,
        cy: float | None = None,
        cx: float | None = None,
        r: float = float("inf"),
        ri: float = 0.0,
        scan_rotation: float = 0.0,
        flip_y: bool = False,
        regression: RegressionOptionsT = RegressionOptions.NO_REGRESSION,
    ) -> CoMUDF:
        """A :class:`CoMUDF` with the given parameters.

        Parameters
        ----------
        cy, cx
            Centre of the mask and reference point of the shifts, in pixels;
            ``None``: ``sig_shape // 2`` along that axis.  Must lie within
            the frame, ``0 <= cy <= sig_shape[0] - 1`` (likewise ``cx``).
        r
            Outer radius of the mask, ``> 0``; ``inf`` (the default) uses the
            whole frame.
        ri
            Inner radius, ``0 <= ri < r``: pixels at a distance ``<= ri`` are
            left out (an annulus).  0 (or close to it) keeps the full disk.
        scan_rotation
            In degrees, finite: rotates the shift vectors clockwise into the
            scan coordinates.  If the detector looks rotated to the right
            relative to the scan, use a negative value.
        flip_y
            Negate the y shift before rotating (detectors with pixel (0, 0)
            at the lower left, such as the Merlin).
        regression
            A :class:`RegressionOptions` member or -1, 0, 1: subtract nothing,
            the mean field, or a fitted plane (mean and linear descan
            error); or a (3, 2) array ``[[y, x], [dy/dy, dx/dy], [dy/dx,
            dx/dx]]`` to subtract as given.  Fitted on the selected frames.

        Returns
        -------
        CoMUDF
            The UDF with these parameters.

        Raises
        ------
        UDFDefinitionError
            For a parameter out of range, naming it.
        """
        return cls(
            com_params=CoMParams(
                cy=cy,
                cx=cx,
                r=r,
                ri=ri,
                scan_rotation=scan_rotation,
                flip_y=flip_y,
                regression=regression,
            )
        )

    def get_params(self) -> CoMParams:
        """The parameters with ``cy``/``cx`` resolved for the dataset; checks them against it.

        Raises
        ------
        UDFDefinitionError
            If the scan or the frames are not 2D, or the centre lies outside
            the frame.
        """
        params: CoMParams = self.params.com_params
        shape = self.meta.dataset_shape
        if len(shape.sig) != 2:
            msg = f"CoMUDF needs 2D frames, got a signal shape of {tuple(shape.sig)}"
            raise UDFDefinitionError(msg)
        if len(shape.nav) != 2:
            msg = f"CoMUDF needs a 2D scan, got a navigation shape of {tuple(shape.nav)}"
            raise UDFDefinitionError(msg)
        centre = []
        for name, given, size in (("cy", params.cy, shape.sig[0]), ("cx", params.cx, shape.sig[1])):
            value = size // 2 if given is None else given
            if not 0 <= value <= size - 1:
                msg = (
                    f"CoMUDF parameter {name}={value!r} lies outside the frame: "
                    f"frames are {tuple(shape.sig)}, so {name} must be within [0, {size - 1}]"
                )
                raise UDFDefinitionError(msg)
            centre.append(value)
        return params._replace(cy=centre[0], cx=centre[1])

    def _dtype(self) -> np.dtype[Any]:
        dtype = np.result_type(self.meta.input_dtype, np.float32)
        if dtype.kind != "f":
            msg = f"CoMUDF needs real-valued data, got data of dtype {self.meta.dataset_dtype}"
            raise UDFDefinitionError(msg)
        return dtype

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        self.get_params()  # the checks that need the dataset: before any worker starts
        dtype = self._dtype()

        def nav(extra_shape: tuple[int, ...] = ()) -> BufferDeclaration:
            return self.buffer(kind="nav", dtype=dtype, extra_shape=extra_shape, use="result_only")

        return {
            "raw_mask_result": self.buffer(kind="nav", dtype=dtype, extra_shape=(3,), where="device", use="private"),
            "raw_com": nav((2,)),
            "raw_shifts": nav((2,)),
            "field": nav((2,)),
            "field_y": nav(),
            "field_x": nav(),
            "magnitude": nav(),
            "divergence": nav(),
            "curl": nav(),
            "regression": self.buffer(kind="single", extra_shape=(3, 2), dtype=np.float64, use="result_only"),
        }

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def _mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """The selection mask on the host: ``ri < distance <= r`` (full disk for ``ri`` close to 0)."""
        params = self.get_params()
        assert params.cy is not None
        assert params.cx is not None
        sy, sx = self.meta.dataset_shape.sig
        dy = np.arange(sy)[:, np.newaxis] - params.cy
        dx = np.arange(sx)[np.newaxis, :] - params.cx
        distance_sq = dy * dy + dx * dx
        mask: np.ndarray[Any, np.dtype[np.bool_]] = distance_sq <= params.r * params.r
        if params.ri is not None and not np.isclose(params.ri, 0.0):
            mask &= ~(distance_sq <= params.ri * params.ri)
        return mask

    def get_task_data(self) -> Mapping[str, Any]:
        mask = self._mask()
        rows = np.flatnonzero(mask.any(axis=1))
        # rows outside the mask weigh nothing: the product never reads them
        band = slice(int(rows[0]), int(rows[-1]) + 1) if rows.size else slice(0, 0)
        y, x = np.indices(mask.shape)
        weights = np.stack([mask, mask * y, mask * x], axis=-1)[band].reshape(-1, 3).astype(self._dtype())
        return {"weights": self.xp.asarray(weights), "rows": band}

    def process_tile(self, tile: Any) -> None:
        # (frames, pixels) @ (pixels, 3) -> sum, sum * y, sum * x per frame; the band is a strided view, no copy
        frames = tile[:, self.task_data.rows].reshape((tile.shape[0], -1))
        self.xp.matmul(frames, self.task_data.weights, out=self.results.raw_mask_result)

    # -- host side ------------------------------------------------------------

    def get_field_results(self, field_y: FloatArray, field_x: FloatArray) -> dict[str, FloatArray]:
        """``magnitude``, ``divergence`` and ``curl`` from the nav-shaped field; override to add results.

        ``field_y`` and ``field_x`` are NaN at frames outside the ROI or not
        merged yet.
        """
        if min(field_y.shape) < 2:  # numpy.gradient needs two positions along each axis
            undefined = np.full(field_y.shape, np.nan)
            div, curl = undefined, undefined.copy()
        else:
            div, curl = divergence(field_y, field_x), curl_2d(field_y, field_x)
        return {"magnitude": magnitude(field_y, field_x), "divergence": div, "curl": curl}

    def _regression(
        self, params: CoMParams, field: FloatArray, valid: np.ndarray[Any, np.dtype[np.bool_]]
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The (3, 2) regression of ``params`` for ``field`` (nav-shaped, (2,) entries), fitted where ``valid``."""
        given = _regression_matrix(params.regression)
        if given is not None:
            return given
        result = np.zeros((3, 2))
        count = int(np.count_nonzero(valid))
        order = int(params.regression)  # an order, as _regression_matrix found
        if order == RegressionOptions.NO_REGRESSION or count == 0:
            return result
        if order == RegressionOptions.SUBTRACT_MEAN:
            result[0] = np.mean(field[valid], axis=0)
            return result
        y, x = np.nonzero(valid)
        design = np.stack([np.ones(count), y, x], axis=-1)
        result[:], *_ = np.linalg.lstsq(design, field[valid], rcond=None)
        return result

    def get_results(self) -> Mapping[str, Any]:
        params = self.get_params()
        assert params.cy is not None
        assert params.cx is not None
        shape = self.meta.dataset_shape
        nav_shape = tuple(shape.nav)
        nav_size = shape.nav_size
        selected = np.ones(nav_size, dtype=bool) if self.meta.roi is None else self.meta.roi.reshape(-1)
        valid_flat = self.meta.get_valid_nav_mask(full_nav=True)
        valid = (selected if valid_flat is None else valid_flat).reshape(nav_shape)

        # the masked sums on the full nav grid: NaN outside the ROI, as LiberTEM's raw buffer
        sums = np.full((nav_size, 3), np.nan)
        sums[selected] = self.results.raw_mask_result
        sums = sums.reshape((*nav_shape, 3))
        total = sums[..., 0:1]
        centre = np.array([params.cy, params.cx], dtype=np.float64)
        com = np.empty((*nav_shape, 2))
        com[...] = centre  # no intensity in the mask: zero shift
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(sums[..., 1:], total, out=com, where=total != 0)
        shifts = com - centre

        field = np.moveaxis(
            np.array(apply_correction(shifts[..., 0], shifts[..., 1], params.scan_rotation, bool(params.flip_y))),
            0,
            -1,
        )
        field[~valid] = np.nan  # frames not merged yet count as outside the ROI
        regression = self._regression(params, field, valid)
        y, x = np.indices(nav_shape)
        field -= regression[0] + y[..., np.newaxis] * regression[1] + x[..., np.newaxis] * regression[2]

        nav_results = {
            "raw_com": com,
            "raw_shifts": shifts,
            "field": field,
            "field_y": field[..., 0],
            "field_x": field[..., 1],
            **self.get_field_results(field[..., 0], field[..., 1]),
        }
        # one entry per selected frame, flat nav order
        results: dict[str, Any] = {
            name: value.reshape((nav_size, *value.shape[2:]))[selected] for name, value in nav_results.items()
        }
        results["regression"] = regression
        return results
