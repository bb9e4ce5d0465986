"""Mean, variance and standard deviation of every pixel over the frames (LiberTEM's ``StdDevUDF``).

Policy
------
- One pass over the data, numerically stable: each tile is reduced to its
  frame count, its sum and its *varsum* (the sum of squared deviations from
  the tile's own mean), and these moments are combined with the running
  totals by Chan et al.'s parallel formula (:func:`combine_moments`).  Nothing
  ever subtracts two large sums of squares, so a large mean with a small
  variance keeps its precision over millions of frames.
- The same pure function combines a tile into a partition's totals on the
  worker (with ``self.xp``, no host round trip) and a partition into the
  run's totals in ``merge``.
- Names, kinds, shapes and dtypes of the results are LiberTEM 0.16's:
  ``varsum``, ``sum`` (``sig``), ``num_frames`` (``single``, int64) and the
  ``result_only`` ``var``, ``std``, ``mean``, which ``get_results`` divides by
  an int64 frame count as LiberTEM does (so with NumPy 2 they are float64
  even for ``dtype="float32"``).  ``use_numba`` is accepted and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gpuudf.buffers import BufferDeclaration, BufferViews
from gpuudf.datasets import DataSet
from gpuudf.results import BufferWrapper
from gpuudf.udf import UDF, RunsUDFs

__all__ = ["Moments", "StdDevUDF", "combine_moments", "consolidate_result", "run_stddev", "tile_moments"]


#: Bytes of the buffer a CPU worker converts frames into: several frames, and within the CPU's cache.
_CPU_CHUNK_NBYTES = 4 * 2**20

#: ``(n, sum, varsum)`` of a set of frames: their count, their sum and their varsum over axis 0.
Moments = tuple[int, Any, Any]


def _abs2(values: Any) -> Any:
    """``|values|**2``, real for complex values too; operators only, for any array module."""
    if values.dtype.kind == "c":
        return values.real * values.real + values.imag * values.imag
    return values * values


def tile_moments(xp: Any, tile: Any, dtype: Any = None, shift: Any = None, work: Any = None) -> Moments:
    """The frame count, sum and varsum of a stack of frames.

    The deviations are taken from ``shift`` (a frame-shaped guess of the
    mean; default the first frame) in one pass that also converts to
    ``dtype``: ``varsum = sum(|x - shift|**2) - |sum(x - shift)|**2 / n``,
    which is exact in exact arithmetic and keeps its digits in floating
    point as long as ``shift`` lies within a few standard deviations of the
    mean (the running mean of the frames before, or any one frame).

    Parameters
    ----------
    xp
        The array module of ``tile`` (``self.xp``).
    tile
        Frames along axis 0, at least one.
    dtype
        Of the results; default ``tile``'s.
    shift
        Frame-shaped, in ``dtype``.
    work
        A buffer of ``dtype`` of the frame shape with at least one frame:
        the tile goes through it in chunks of that many frames (default: a
        fresh buffer for the whole tile).

    Returns
    -------
    tuple
        ``(n, sum, varsum)``: the number of frames, their sum over axis 0
        and the sum over axis 0 of squared deviations from their mean
        (real for complex frames).
    """
    dtype = tile.dtype if dtype is None else np.dtype(dtype)
    count = int(tile.shape[0])
    if shift is None:
        shift = tile[0].astype(dtype)
    if work is None:
        work = xp.empty(tile.shape, dtype=dtype)
    chunk = int(work.shape[0])
    offset = xp.zeros(shift.shape, dtype=dtype)
    squares = xp.zeros(shift.shape, dtype=np.zeros(0, dtype).real.dtype)  # real for complex frames too
    # chunks of frames through a reused buffer, which stays in the CPU's cache between the passes over it
    for start in range(0, count, chunk):
        frames = tile[start : start + chunk]
        deviations = work[: frames.shape[0]]
        deviations[...] = (
            frames  # a converting copy and an in-place subtraction: faster than one converting subtraction
        )
        xp.subtract(deviations, shift, out=deviations)
        flat = deviations.reshape(frames.shape[0], -1)
        offset += (xp.ones(frames.shape[0], dtype=dtype) @ flat).reshape(shift.shape)  # a BLAS sum
        if dtype.kind == "c":
            part = xp.einsum("ij,ij->j", flat.real, flat.real) + xp.einsum("ij,ij->j", flat.imag, flat.imag)
        else:
            part = xp.einsum("ij,ij->j", flat, flat)
        squares += part.reshape(shift.shape)
    return count, offset + shift * count, squares - _abs2(offset) / count


def combine_moments(a: Moments, b: Moments) -> Moments:
    """Combine the moments of two disjoint sets of frames (Chan et al.'s parallel formula).

    A pure function over arrays of any array module (or scalars): it only
    uses arithmetic operators.  With ``delta`` the difference of the two
    means, the combined varsum is ``varsum_a + varsum_b + |delta|**2 * n_a *
    n_b / (n_a + n_b)``.

    Parameters
    ----------
    a, b
        ``(n, sum, varsum)`` of each set, as :func:`tile_moments` gives them;
        either ``n`` may be 0.

    Returns
    -------
    tuple
        ``(n, sum, varsum)`` of the union; the other input as it is when one
        set is empty.
    """
    n_a, sum_a, varsum_a = a
    n_b, sum_b, varsum_b = b
    n_a, n_b = int(n_a), int(n_b)
    if n_a == 0:
        return n_b, sum_b, varsum_b
    if n_b == 0:
        return n_a, sum_a, varsum_a
    count = n_a + n_b
    delta = sum_b / n_b - sum_a / n_a
    return count, sum_a + sum_b, varsum_a + varsum_b + _abs2(delta) * (n_a * n_b / count)


class StdDevUDF(UDF):
    """Per-pixel sum, mean, variance and standard deviation over the frames (LiberTEM's ``StdDevUDF``).

    Results: ``sum`` and ``varsum`` (sum of squared deviations from the
    mean; ``var`` times ``num_frames``) as ``sig`` buffers, ``num_frames``
    (``single``, int64, shape ``(1,)``), and ``var``, ``std`` and ``mean``
    (``sig``, computed by :meth:`get_results`).  The variance is the
    population variance (``numpy.var`` with ``ddof=0``).

    Parameters
    ----------
    dtype
        Base dtype of the accumulation, a floating (or complex) dtype;
        ``None`` for float64, as in LiberTEM.  ``varsum`` has this dtype,
        ``sum`` the result type of it and the frames' input dtype (at least
        float32).
    use_numba
        Accepted for LiberTEM compatibility and ignored.

    Raises
    ------
    TypeError
        If ``dtype`` is not a NumPy dtype.
    ValueError
        If ``dtype`` is not a floating or complex dtype.
    """

    def __init__(self, dtype: Any = None, use_numba: bool = True) -> None:
        if dtype is not None:
            try:
                base = np.dtype(dtype)
            except TypeError:
                msg = f"StdDevUDF dtype={dtype!r} is not a NumPy dtype"
                raise TypeError(msg) from None
            if base.kind not in "fc":
                msg = f"StdDevUDF dtype={dtype!r} must be a floating or complex dtype, such as 'float64'"
                raise ValueError(msg)
        super().__init__(dtype=dtype, use_numba=use_numba)

    def _base_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float64 if self.params.dtype is None else self.params.dtype)

    def get_preferred_input_dtype(self) -> Any:
        # frames arrive as float32 (as in LiberTEM); the one pass over a tile converts them to the accumulation dtype
        return np.float32

    def get_backends(self) -> tuple[str, ...]:
        return ("numpy", "cupy")

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        base = self._base_dtype()
        accumulation = np.result_type(self.meta.input_dtype, base)
        # LiberTEM divides by the int64 frame count: var, std and mean come out in these dtypes
        spread = np.result_type(base, np.int64)
        mean = np.result_type(accumulation, np.int64)
        return {
            "varsum": self.buffer(kind="sig", dtype=base),
            "num_frames": self.buffer(kind="single", dtype="int64"),
            "sum": self.buffer(kind="sig", dtype=accumulation),
            "var": self.buffer(kind="sig", dtype=spread, use="result_only"),
            "std": self.buffer(kind="sig", dtype=spread, use="result_only"),
            "mean": self.buffer(kind="sig", dtype=mean, use="result_only"),
        }

    def preprocess(self) -> None:
        # per partition: the frames combined so far (frames without data are never processed)
        self._frames = 0
        self._work: Any = None

    def process_tile(self, tile: Any) -> None:
        accumulation = self.results.sum.dtype
        chunk = self._chunk_frames(tile)
        if self._work is None or self._work.shape[0] < chunk:
            self._work = self.xp.empty((chunk, *tile.shape[1:]), dtype=accumulation)
        # deviations from the running mean: small numbers, whatever the frames' offset
        shift = self.results.sum / self._frames if self._frames else None
        moments = tile_moments(self.xp, tile, accumulation, shift, self._work)
        count, total, varsum = combine_moments((self._frames, self.results.sum, self.results.varsum), moments)
        self.results.sum[...] = total
        self.results.varsum[...] = varsum
        self._frames = count

    def _chunk_frames(self, tile: Any) -> int:
        """Frames per chunk of :func:`tile_moments`: a cache-sized buffer on a CPU, the whole tile on a GPU."""
        frames = int(tile.shape[0])
        if self.meta.device_class != "cpu":
            return frames  # one pass over the tile: the fewest kernels
        frame_nbytes = math.prod(tile.shape[1:]) * self.results.sum.dtype.itemsize
        return max(1, min(frames, _CPU_CHUNK_NBYTES // int(frame_nbytes)))

    def postprocess(self) -> None:
        self.results.num_frames[...] = self._frames

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        count, total, varsum = combine_moments(
            (int(dest.num_frames[0]), dest.sum, dest.varsum), (int(src.num_frames[0]), src.sum, src.varsum)
        )
        dest.sum[...] = total
        dest.varsum[...] = varsum
        dest.num_frames[...] = count

    def get_results(self) -> Mapping[str, Any]:
        count = self.results.num_frames[0]  # an int64, as LiberTEM divides by
        with np.errstate(divide="ignore", invalid="ignore"):  # no frame merged yet: NaN
            var = self.results.varsum / count
            mean = self.results.sum / count
        return {"var": var, "std": np.sqrt(var), "mean": mean}


def consolidate_result(udf_result: Mapping[str, BufferWrapper]) -> dict[str, Any]:
    """The results of :class:`StdDevUDF` as plain arrays, as LiberTEM's ``consolidate_result`` gives them.

    Parameters
    ----------
    udf_result
        What ``run_udf`` returned for a :class:`StdDevUDF`.

    Returns
    -------
    dict
        ``num_frames`` as a NumPy int64 scalar; ``varsum``, ``sum``,
        ``var``, ``std`` and ``mean`` as frame-shaped NumPy arrays.
    """
    return {
        "num_frames": udf_result["num_frames"].data[0],
        "varsum": udf_result["varsum"].data,
        "sum": udf_result["sum"].data,
        "var": udf_result["var"].data,
        "std": udf_result["std"].data,
        "mean": udf_result["mean"].data,
    }


def run_stddev(
    ctx: RunsUDFs,
    dataset: DataSet,
    roi: Any = None,
    progress: bool = False,
    use_numba: bool = True,
) -> dict[str, Any]:
    """Run :class:`StdDevUDF` over ``dataset`` and return :func:`consolidate_result` of it (as in LiberTEM).

    Parameters
    ----------
    ctx
        A :class:`gpuudf.Context`.
    dataset
        From ``ctx.load``.
    roi
        Frames to include; any ROI ``run_udf`` accepts.
    progress
        Show a progress bar.
    use_numba
        Accepted for LiberTEM compatibility and ignored.

    Returns
    -------
    dict
        ``num_frames``, ``varsum``, ``sum``, ``var``, ``std`` and ``mean``.
    """
    results = ctx.run_udf(dataset=dataset, udf=StdDevUDF(use_numba=use_numba), roi=roi, progress=progress)
    return consolidate_result(results)
