"""Sparse matrices on the device an array module computes on.

Policy: a UDF holds sparse constants (mask stacks) as SciPy CSR matrices on
the host and calls :func:`sparse_on_device` once per worker, with its
``self.xp``.  NumPy keeps the SciPy matrix; CuPy gets a
``cupyx.scipy.sparse.csr_matrix`` (imported by ``gpuudf.backends.cuda``
only); the simulated device gets a :class:`SimulatedSparseMatrix`, which
counts the copy and multiplies only with device arrays, as ``cupyx`` does.
In every case ``matrix @ dense`` with a 2-D device array gives a dense
device array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse

from gpuudf.backends.simulated import TRANSFERS, SimulatedArray, SimulatedArrayModule

__all__ = ["SPARSE_DEVICE_DTYPES", "SimulatedSparseMatrix", "sparse_on_device"]

#: The dtypes cuSPARSE multiplies; others are computed in float64.
SPARSE_DEVICE_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))


class SimulatedSparseMatrix:
    """A CSR matrix on the simulated device: SciPy underneath, ``cupyx``'s operand rules."""

    def __init__(self, matrix: scipy.sparse.csr_matrix) -> None:
        self._matrix = matrix
        TRANSFERS.h2d_copies += 1
        TRANSFERS.h2d_nbytes += matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns."""
        rows, cols = self._matrix.shape
        return int(rows), int(cols)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Of the stored values."""
        return np.dtype(self._matrix.dtype)

    def __matmul__(self, other: Any) -> SimulatedArray:
        if not isinstance(other, SimulatedArray):
            msg = f"a sparse matrix on the device multiplies device arrays only, got {type(other).__name__}"
            raise TypeError(msg)
        return SimulatedArray(np.asarray(self._matrix @ other._array))


def sparse_on_device(xp: Any, matrix: scipy.sparse.csr_matrix) -> Any:
    """``matrix`` where ``xp`` computes, copied there once.

    Parameters
    ----------
    xp
        ``numpy``, ``cupy`` or the simulated device's module (a UDF's ``self.xp``).
    matrix
        A SciPy CSR matrix; on a GPU its dtype must be in :data:`SPARSE_DEVICE_DTYPES`.
    """
    if xp is np:
        return matrix
    if isinstance(xp, SimulatedArrayModule):
        return SimulatedSparseMatrix(matrix)
    from gpuudf.backends.cuda import sparse_to_cupy  # noqa: PLC0415 - CuPy only where a UDF runs on it

    return sparse_to_cupy(matrix)
