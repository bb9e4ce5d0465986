"""Sum of log-scaled frames (LiberTEM's ``LogsumUDF``).

Policy
------
- LiberTEM's semantics: every frame is shifted by its own minimum and
  log-scaled as ``log(frame - min(frame) + 1)`` (computed here as ``log1p``,
  the same values to rounding), and the results are summed over the frames
  into one frame-shaped float32 ``logsum``.  Every term is >= 0, so frames
  with negative values work too.
- Per tile, a handful of array operations on ``self.xp`` (per-frame minimum,
  subtract, ``log1p`` in place, sum over the frames); nothing per frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.errors import UDFDefinitionError
from gpuudf.results import BufferWrapper
from gpuudf.udf import UDF, RunsUDFs

__all__ = ["LogsumUDF", "run_logsum"]


class LogsumUDF(UDF):
    """Sum over the frames of ``log(frame - min(frame) + 1)``: one frame-shaped float32 ``logsum``.

    Compared with log-scaling the sum, this brings out features of
    slightly higher intensity that appear in many frames against very high
    intensity in a few frames.  Real data only; frames are read as float32
    at least.

    Raises
    ------
    UDFDefinitionError
        At the start of a run over complex data.
    """

    def __init__(self) -> None:
        super().__init__()

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        if self.meta.input_dtype.kind == "c":
            msg = (
                f"LogsumUDF needs real data, the dataset's dtype is {self.meta.dataset_dtype}: "
                "run it on the magnitude (abs) of the data instead"
            )
            raise UDFDefinitionError(msg)
        return {"logsum": self.buffer(kind="sig", dtype="float32")}

    def process_tile(self, tile: Any) -> None:
        xp = self.xp
        sig_axes = tuple(range(1, tile.ndim))
        shifted = tile - xp.min(tile, axis=sig_axes, keepdims=True)
        xp.log1p(shifted, out=shifted)
        self.results.logsum[...] += xp.sum(shifted, axis=0)

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        dest.logsum[...] += src.logsum


def run_logsum(ctx: RunsUDFs, dataset: DataSet, roi: Any = None) -> dict[str, BufferWrapper]:
    """Run :class:`LogsumUDF` over ``dataset`` and return its results, as LiberTEM's ``run_logsum``.

    Parameters
    ----------
    ctx
        A :class:`gpuudf.Context`.
    dataset
        From ``ctx.load``.
    roi
        Frames to include; any ROI ``run_udf`` accepts.

    Returns
    -------
    dict
        ``{"logsum": BufferWrapper}``.
    """
    results: dict[str, BufferWrapper] = ctx.run_udf(dataset=dataset, udf=LogsumUDF(), roi=roi)
    return results
