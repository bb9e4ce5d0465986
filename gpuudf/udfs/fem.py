"""Fluctuation electron microscopy: the standard deviation in a ring of every frame (LiberTEM's ``FEMUDF``).

Policy
------
- LiberTEM's semantics: the ring holds the pixels whose squared distance
  ``d2`` from ``center`` has ``rad_in**2 < d2 <= rad_out**2``, and
  ``intensity`` (``nav``, float32) is the population standard deviation
  (``numpy.std``) of those pixels in each frame.
- LiberTEM's docstring calls ``center`` ``(x, y)``, but its code measures
  ``center[0]`` along the first signal axis (rows) and ``center[1]`` along
  the second (columns): gpuudf does what the code does, so that results
  match, and documents it as ``(row, column)``.
- The ring's pixel indices are computed once per worker in
  ``get_task_data`` and moved to the device with ``self.xp``; per tile one
  gather and one ``std`` over the ring's pixels.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gpuudf.buffers import BufferDeclaration
from gpuudf.datasets import DataSet
from gpuudf.errors import UDFDefinitionError
from gpuudf.results import BufferWrapper
from gpuudf.udf import UDF, RunsUDFs

__all__ = ["FEMUDF", "ring_mask", "run_fem"]


def ring_mask(
    sig_shape: tuple[int, int], center: Sequence[float], rad_in: float, rad_out: float
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The ring of :class:`FEMUDF`: ``rad_in**2 < d2 <= rad_out**2`` around ``center``.

    Parameters
    ----------
    sig_shape
        ``(rows, columns)`` of a frame.
    center
        ``(row, column)`` of the ring's centre; need not be integers.
    rad_in, rad_out
        Inner (excluded) and outer (included) radius, in pixels.

    Returns
    -------
    numpy.ndarray
        Booleans of shape ``sig_shape``, ``True`` in the ring.
    """
    rows = np.arange(sig_shape[0], dtype=np.float64)[:, np.newaxis] - float(center[0])
    columns = np.arange(sig_shape[1], dtype=np.float64)[np.newaxis, :] - float(center[1])
    d2 = rows * rows + columns * columns
    mask: np.ndarray[Any, np.dtype[np.bool_]] = (d2 <= float(rad_out) ** 2) & ~(d2 <= float(rad_in) ** 2)
    return mask


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class FEMUDF(UDF):
    """Standard deviation of the pixels in a ring, per frame: ``intensity`` (``nav``, float32).

    Parameters
    ----------
    center
        ``(row, column)`` of the ring's centre in the frame, in pixels (what
        LiberTEM's code does with its "``(x, y)``").
    rad_in
        Inner radius: pixels at this distance or closer are left out.
    rad_out
        Outer radius: pixels farther away are left out.

    Raises
    ------
    TypeError
        If ``center`` is not two numbers, or a radius is not a number.
    ValueError
        If a radius is negative.
    UDFDefinitionError
        At the start of a run over frames that are not 2-D, or whose ring
        holds no pixel.
    """

    def __init__(self, center: Sequence[float], rad_in: float, rad_out: float) -> None:
        try:
            valid_center = len(center) == 2 and all(_is_real(c) for c in center)
        except TypeError:
            valid_center = False
        if not valid_center:
            msg = f"FEMUDF center must be two numbers (row, column), got {center!r}"
            raise TypeError(msg)
        for name, value in (("rad_in", rad_in), ("rad_out", rad_out)):
            if not _is_real(value):
                msg = f"FEMUDF {name} must be a number, got {value!r}"
                raise TypeError(msg)
            if value < 0:
                msg = f"FEMUDF {name} must not be negative, got {value!r}"
                raise ValueError(msg)
        super().__init__(center=center, rad_in=rad_in, rad_out=rad_out)

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def _sig_shape(self) -> tuple[int, int]:
        sig = tuple(self.meta.dataset_shape.sig)
        if len(sig) != 2:
            msg = f"FEMUDF needs 2-D frames (a center and radii in the frame), the dataset's frames are {sig}"
            raise UDFDefinitionError(msg)
        return sig[0], sig[1]

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        self._sig_shape()
        return {"intensity": self.buffer(kind="nav", dtype="float32")}

    def get_task_data(self) -> Mapping[str, Any]:
        sig = self._sig_shape()
        mask = ring_mask(sig, self.params.center, self.params.rad_in, self.params.rad_out)
        if not mask.any():
            msg = (
                f"FEMUDF's ring (center={self.params.center!r}, rad_in={self.params.rad_in!r}, "
                f"rad_out={self.params.rad_out!r}) holds no pixel of the {sig} frames: "
                "rad_out must exceed rad_in, and the ring must overlap the frame"
            )
            raise UDFDefinitionError(msg)
        return {"ring": self.xp.asarray(np.flatnonzero(mask))}

    def process_tile(self, tile: Any) -> None:
        pixels = tile.reshape((tile.shape[0], -1))[:, self.task_data.ring]
        self.results.intensity[...] = self.xp.std(pixels, axis=1)


def run_fem(  # noqa: PLR0917 - LiberTEM's signature: center, rad_in, rad_out are positional there
    ctx: RunsUDFs,
    dataset: DataSet,
    center: Sequence[float],
    rad_in: float,
    rad_out: float,
    roi: Any = None,
) -> dict[str, BufferWrapper]:
    """Run :class:`FEMUDF` over ``dataset`` and return its results, as LiberTEM's ``run_fem``.

    Parameters
    ----------
    ctx
        A :class:`gpuudf.Context`.
    dataset
        From ``ctx.load``; 2-D frames.
    center, rad_in, rad_out
        As for :class:`FEMUDF`.
    roi
        Frames to include; any ROI ``run_udf`` accepts.

    Returns
    -------
    dict
        ``{"intensity": BufferWrapper}``: the ring's standard deviation per frame.
    """
    udf = FEMUDF(center=center, rad_in=rad_in, rad_out=rad_out)
    results: dict[str, BufferWrapper] = ctx.run_udf(dataset=dataset, udf=udf, roi=roi)
    return results
