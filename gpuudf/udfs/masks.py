"""Virtual detectors: a stack of masks applied to every frame.

Policy
------
- The masks are built from their factories once per worker and run, and
  moved to the device there (at the worker's first tile), never per
  partition or tile; the driver builds them once more, at the start of the
  run, to check them and to size the result, so a bad mask fails before any
  worker starts.  Nothing is copied that need not be: a stack of the
  compute dtype that the band plan keeps whole is multiplied as given.
- Dense masks: matrix products per tile, ``(frames, sig) @ (sig, masks)``
  (BLAS on a CPU, cuBLAS on a GPU); a single mask is a matrix-vector
  product.  Rows where every mask is zero are never read: the product runs
  over the bands of rows that hold non-zeros (:func:`plan_bands`), each a
  strided view of the tile (no copy) multiplied with the masks non-zero in
  it, so a small detector reads a fraction of each frame.  (As
  a consequence a NaN in a pixel that every mask ignores does not reach the
  result, where a full product would spread it.)
- Sparse masks (SciPy on a CPU, ``cupyx.scipy.sparse`` on a GPU): one sparse
  times dense product per tile, ``(masks, sig) @ (sig, frames)``.  Every
  sparse spelling LiberTEM accepts (``True``, ``'scipy.sparse'``,
  ``'scipy.sparse.csc'``, ``'sparse.pydata'``) is computed this way: the
  products are the same numbers, and one sparse path for both devices keeps
  the GPU and CPU results comparable.
- Shifted masks (``shifts``, :mod:`gpuudf.udfs.mask_shifts`): dense, one
  product per tile and distinct shift over the window frames and masks
  share; the band plan and sparse products do not apply.
- The result dtype is ``numpy.result_type(input dtype, mask dtype)``, as in
  LiberTEM: float32 data and masks give float32, a float64 mask (or
  ``mask_dtype=float64``) gives float64.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse
import sparse as pydata_sparse

from gpuudf.backends.sparse import SPARSE_DEVICE_DTYPES, sparse_on_device
from gpuudf.buffers import BufferDeclaration
from gpuudf.errors import UDFDefinitionError
from gpuudf.udf import UDF
from gpuudf.udfs.mask_shifts import checked_shifts, host_ints, overlap_windows, shift_length

__all__ = [
    "MIN_GAP_FRACTION",
    "ApplyMasksUDF",
    "Band",
    "build_mask_stack",
    "plan_bands",
]

_SPARSE_CHOICES = (None, False, True, "scipy.sparse", "scipy.sparse.csc", "sparse.pydata")
_BACKENDS = ("numpy", "cupy")

MaskStack = np.ndarray[Any, Any] | scipy.sparse.csr_matrix

#: A run of all-zero rows splits a frame into two bands when it is at least this fraction of the rows.
MIN_GAP_FRACTION = 1 / 8
#: Input bytes per tile asked for on a CPU: a product call per band and tile amortises over many frames.
_CPU_TILE_NBYTES = 32 * 2**20


@dataclass(frozen=True)
class Band:
    """Rows ``start:stop`` of a frame (its first axis), and the masks that are non-zero in them."""

    start: int
    stop: int
    masks: tuple[int, ...]


def plan_bands(
    nonzero_rows: np.ndarray[Any, np.dtype[np.bool_]], min_gap_fraction: float = MIN_GAP_FRACTION
) -> list[Band]:
    """Cut the rows of a frame into bands that hold every non-zero of the masks.

    Rows where every mask is zero are left out; a run of such rows between
    two bands splits them only when it is at least ``min_gap_fraction`` of
    the frame's rows (a product call per band costs more than a few rows
    read), and each band lists the masks non-zero in it.  Cutting finer
    saves no time: BLAS multiplies a band with a few masks at a lower rate
    than the whole frame with all of them.

    Parameters
    ----------
    nonzero_rows
        ``(n_masks, n_rows)``: whether mask ``k`` has a non-zero in row ``r``.
    min_gap_fraction
        Shortest run of all-zero rows, as a fraction of the rows, that splits bands.

    Returns
    -------
    list of Band
        In row order, disjoint; every non-zero of every mask lies in a band
        that lists the mask.
    """
    n_rows = nonzero_rows.shape[1]
    used_rows = np.flatnonzero(nonzero_rows.any(axis=0))
    if used_rows.size == 0:
        return []
    min_gap = max(1, math.ceil(min_gap_fraction * n_rows))
    splits = np.flatnonzero(np.diff(used_rows) > min_gap)
    starts = [int(used_rows[0]), *(int(used_rows[i + 1]) for i in splits)]
    stops = [*(int(used_rows[i]) + 1 for i in splits), int(used_rows[-1]) + 1]
    return [
        Band(start, stop, tuple(np.flatnonzero(nonzero_rows[:, start:stop].any(axis=1)).tolist()))
        for start, stop in zip(starts, stops, strict=True)
    ]


class ApplyMasksUDF(UDF):
    """Apply a stack of masks to every frame: ``intensity[frame, k] = sum(frame * mask_k)``.

    Parameters
    ----------
    mask_factories
        A function returning one mask or a stack ``(n, *sig_shape)``; a list
        of functions returning one mask each; or the masks themselves (an
        array, a stack, or a list of arrays).  A mask is a NumPy array of the
        frame's shape, a :mod:`scipy.sparse` matrix (of the frame's shape,
        or ``(n, frame size)`` for a stack) or a :mod:`sparse` (pydata)
        array; :mod:`gpuudf.masks` makes the common detectors.  Factories
        travel to every worker, so they should build their masks rather
        than capture large arrays.
    use_torch
        Accepted for LiberTEM code; gpuudf always uses BLAS/cuBLAS.
    use_sparse
        ``None``: sparse when every mask is sparse; ``False``: dense;
        ``True``, ``'scipy.sparse'``, ``'scipy.sparse.csc'`` or
        ``'sparse.pydata'``: sparse (module policy).
    mask_count
        The number of masks, to size the result without calling the
        factories; checked against them when the run starts.
    mask_dtype
        The dtype the masks are used in; default: theirs.
    preferred_dtype
        The input dtype asked for; default ``float32``.
    backends
        ``"numpy"`` and/or ``"cupy"``; default both.
    shifts
        Move the masks against the frames before they are applied: a
        constant ``(y, x)`` pair (one integer per signal axis), or
        ``ApplyMasksUDF.aux_data(data, kind="nav", extra_shape=(2,),
        dtype=int)`` for one shift per frame.  A positive y shift moves the
        masks down, a positive x shift right: ``intensity[frame, k] =
        sum(frame[p] * mask_k[p - shift])`` over the pixels ``p`` where both
        exist; pixels shifted out are dropped, no overlap gives 0.  Float
        shifts are truncated to integers (LiberTEM's rule: round them first).
        Shifted masks are applied densely (a product per tile and distinct
        shift), also for sparse masks; ``use_sparse='scipy.sparse'`` with
        shifts is refused, as in LiberTEM.

    Notes
    -----
    Results: ``intensity``, kind ``nav`` with ``extra_shape=(n_masks,)``.
    """

    def __init__(  # noqa: PLR0917 - LiberTEM's positional order, for ported code
        self,
        mask_factories: Any,
        use_torch: bool = True,
        use_sparse: bool | str | None = None,
        mask_count: int | None = None,
        mask_dtype: npt.DTypeLike | None = None,
        preferred_dtype: npt.DTypeLike | None = None,
        backends: Iterable[str] | None = None,
        shifts: Any = None,
        **kwargs: Any,
    ) -> None:
        if use_sparse not in _SPARSE_CHOICES:
            msg = f"use_sparse must be one of {_SPARSE_CHOICES}, got {use_sparse!r}"
            raise UDFDefinitionError(msg)
        if mask_count is not None and (not isinstance(mask_count, numbers.Integral) or mask_count < 1):
            msg = f"mask_count must be a positive int, got {mask_count!r}"
            raise UDFDefinitionError(msg)
        if backends is not None and not any(b in _BACKENDS for b in backends):
            msg = f"backends={tuple(backends)!r}: ApplyMasksUDF computes on {_BACKENDS} only"
            raise UDFDefinitionError(msg)
        shifts = checked_shifts(shifts, use_sparse)
        super().__init__(
            mask_factories=mask_factories,
            use_torch=use_torch,
            use_sparse=use_sparse,
            mask_count=mask_count,
            mask_dtype=mask_dtype,
            preferred_dtype=preferred_dtype,
            backends=backends,
            shifts=shifts,
            **kwargs,
        )

    # -- the mask stack --------------------------------------------------------

    def _masks(self) -> MaskStack:
        """The validated stack ``(n, sig size)``, dense or CSR, built once per instance."""
        stack: MaskStack | None = getattr(self, "_mask_stack", None)
        if stack is None:
            stack = build_mask_stack(
                self.params.mask_factories, tuple(self.meta.dataset_shape.sig), self.params.use_sparse
            )
            count = self.params.mask_count
            if count is not None and count != stack.shape[0]:
                msg = f"mask_count={count}, but mask_factories produced {stack.shape[0]} masks"
                raise UDFDefinitionError(msg)
            self._mask_stack = stack
        return stack

    def get_mask_count(self) -> int:
        """The number of masks: ``mask_count``, or what the factories produce."""
        count = self.params.mask_count
        return int(count) if count is not None else int(self._masks().shape[0])

    def get_mask_dtype(self) -> np.dtype[Any]:
        """The dtype masks are used in: ``mask_dtype``, or the masks' own."""
        if self.params.mask_dtype is not None:
            given: np.dtype[Any] = np.dtype(self.params.mask_dtype)
            return given
        dtype: np.dtype[Any] = np.dtype(self._masks().dtype)
        return dtype

    # -- the UDF interface -----------------------------------------------------

    def get_preferred_input_dtype(self) -> npt.DTypeLike:
        if self.params.preferred_dtype is None:
            return super().get_preferred_input_dtype()
        preferred: npt.DTypeLike = self.params.preferred_dtype
        return preferred

    def get_backends(self) -> tuple[str, ...]:
        if self.params.backends is None:
            return _BACKENDS
        return tuple(b for b in self.params.backends if b in _BACKENDS)

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        self._masks()  # bad masks fail here, on the driver, before any worker starts
        shifts = self.params.shifts
        sig_dims = len(self.meta.dataset_shape.sig)
        if shifts is not None and shift_length(shifts) != sig_dims:
            msg = f"shifts hold {shift_length(shifts)} values per frame; the frames have {sig_dims} signal axes"
            raise UDFDefinitionError(msg)
        dtype = np.result_type(self.meta.input_dtype, self.get_mask_dtype())
        return {"intensity": self.buffer(kind="nav", extra_shape=(self.get_mask_count(),), dtype=dtype)}

    def _on_device(self) -> Mapping[str, Any]:
        """The masks as this worker multiplies with them: prepared at its first tile of the run, then kept.

        Not in ``get_task_data``: the run's host copy calls that too, and
        would prepare (and copy) a stack it never multiplies with.
        """
        prepared: Mapping[str, Any] | None = getattr(self, "_prepared", None)
        if prepared is None:
            prepared = self._prepared = self._prepare()
        return prepared

    def _prepare(self) -> Mapping[str, Any]:
        stack = self._masks()
        compute_dtype = np.result_type(self.meta.input_dtype, self.get_mask_dtype())
        sig = tuple(self.meta.dataset_shape.sig)
        if self.params.shifts is not None:
            # shifting slices the masks in the frame's shape: dense, whatever they came as
            masks = _dense(stack).reshape(stack.shape[0], *sig).astype(compute_dtype)
            return {"shifted_masks": self.xp.asarray(masks), "sparse": False, "compute_dtype": compute_dtype}
        if scipy.sparse.issparse(stack):
            if self.meta.array_backend == "cupy" and compute_dtype not in SPARSE_DEVICE_DTYPES:
                compute_dtype = np.dtype(np.complex128 if compute_dtype.kind == "c" else np.float64)
            device_masks = sparse_on_device(self.xp, stack.astype(compute_dtype))
            return {"masks": device_masks, "sparse": True, "compute_dtype": compute_dtype}
        rows = np.asarray(stack).reshape(stack.shape[0], sig[0], -1)
        plan = plan_bands((rows != 0).any(axis=2))
        count = stack.shape[0]
        whole = len(plan) == 1 and (plan[0].start, plan[0].stop, plan[0].masks) == (0, sig[0], tuple(range(count)))
        bands = []
        for band in plan:
            chosen = self._index_of(band.masks)
            picked = stack if whole else rows[list(band.masks), band.start : band.stop].reshape(len(band.masks), -1)
            masks = np.ascontiguousarray(picked, dtype=compute_dtype)  # a copy only where the band or dtype needs one
            # one mask: a matrix-vector product, which BLAS runs at memory speed
            device_masks = self.xp.asarray(masks[0] if len(band.masks) == 1 else masks)
            bands.append((slice(band.start, band.stop), chosen, device_masks))
        return {"bands": bands, "whole": whole, "sparse": False, "compute_dtype": compute_dtype}

    def _index_of(self, masks: tuple[int, ...]) -> Any:
        """``intensity[:, index]`` of a band's masks: a position, a slice, or an index array on the device."""
        if len(masks) == 1:
            return masks[0]
        if masks == tuple(range(masks[0], masks[-1] + 1)):
            return slice(masks[0], masks[-1] + 1)
        return self.xp.asarray(np.array(masks, dtype=np.intp))

    def get_tiling_preferences(self) -> Mapping[str, int]:
        if self.meta.device_class == "cpu":
            return {"total_size": _CPU_TILE_NBYTES}
        return {}

    def process_tile(self, tile: Any) -> None:
        prepared = self._on_device()
        compute_dtype = prepared["compute_dtype"]
        out = self.results.intensity
        if self.params.shifts is not None:
            self._apply_shifted(tile, prepared["shifted_masks"])
            return
        if prepared["sparse"]:
            flat = tile.reshape(tile.shape[0], -1)
            out[:] = (prepared["masks"] @ flat.astype(compute_dtype, copy=False).T).T
            return
        if prepared["whole"]:
            _, _, masks = prepared["bands"][0]
            flat = tile.reshape(tile.shape[0], -1).astype(compute_dtype, copy=False)
            if masks.ndim == 1:
                self.xp.matmul(flat, masks, out=out[:, 0])
            else:
                self.xp.matmul(flat, masks.T, out=out)
            return
        rows = tile.reshape(tile.shape[0], tile.shape[1], -1)
        out[:] = 0
        for band_rows, chosen, masks in prepared["bands"]:
            # a band's rows are contiguous within each frame: a strided view, no copy
            flat = rows[:, band_rows].reshape(tile.shape[0], -1).astype(compute_dtype, copy=False)
            out[:, chosen] += flat @ (masks if masks.ndim == 1 else masks.T)

    def _apply_shifted(self, tile: Any, masks: Any) -> None:
        """One product per distinct shift among the tile's frames, over the pixels frames and masks share."""
        out = self.results.intensity
        shifts = host_ints(self.params.shifts)
        if shifts.ndim == 1:  # one constant shift
            groups: list[tuple[Any, np.ndarray[Any, Any]]] = [(slice(None), shifts)]
        else:
            distinct, which = np.unique(shifts, axis=0, return_inverse=True)
            groups = [
                (slice(None) if len(distinct) == 1 else self.xp.asarray(np.flatnonzero(which.ravel() == i)), shift)
                for i, shift in enumerate(distinct)
            ]
        for frames, shift in groups:
            windows = overlap_windows(shift, tile.shape[1:])
            if windows is None:
                out[frames] = 0
                continue
            frame_window, mask_window = windows
            part = tile[frames][(slice(None), *frame_window)]
            flat = part.reshape(part.shape[0], -1).astype(masks.dtype, copy=False)
            out[frames] = flat @ masks[(slice(None), *mask_window)].reshape(masks.shape[0], -1).T


def build_mask_stack(factories: Any, sig_shape: tuple[int, ...], use_sparse: bool | str | None) -> MaskStack:
    """The masks of ``factories`` as one ``(n, prod(sig_shape))`` stack, checked.

    Raises
    ------
    UDFDefinitionError
        For no masks, a mask of another shape than ``sig_shape``, a
        non-numeric mask, or a factory that fails.
    """
    parts: list[Any] = [_as_mask_rows(index, item, sig_shape) for index, item in enumerate(_mask_items(factories))]
    if not parts or sum(p.shape[0] for p in parts) == 0:
        msg = "mask_factories produced no masks: give at least one mask of the frame's shape"
        raise UDFDefinitionError(msg)
    all_sparse = all(scipy.sparse.issparse(p) for p in parts)
    sparse_wanted = all_sparse if use_sparse is None else bool(use_sparse)
    if sparse_wanted:
        return scipy.sparse.csr_matrix(scipy.sparse.vstack([scipy.sparse.csr_matrix(p) for p in parts]))
    if len(parts) == 1:
        return _dense(parts[0])  # read only, never written: no copy of a large stack
    return np.concatenate([_dense(p) for p in parts], axis=0)


def _mask_items(factories: Any) -> list[Any]:
    """What the factories return (or the masks given), one item per factory or mask."""
    if callable(factories):
        return [_call_factory(0, factories)]
    if isinstance(factories, np.ndarray) or scipy.sparse.issparse(factories):
        return [factories]
    if isinstance(factories, pydata_sparse.SparseArray):
        return [factories]
    if not isinstance(factories, Sequence | Iterable) or isinstance(factories, str | bytes):
        msg = f"mask_factories must be a function, a list of functions or masks, got {type(factories).__name__}"
        raise UDFDefinitionError(msg)
    return [_call_factory(i, f) if callable(f) else f for i, f in enumerate(factories)]


def _call_factory(index: int, factory: Callable[[], Any]) -> Any:
    try:
        return factory()
    except Exception as exc:
        msg = f"mask_factories[{index}] ({getattr(factory, '__name__', factory)!r}) failed: {exc!r}"
        raise UDFDefinitionError(msg) from exc


def _as_mask_rows(index: int, item: Any, sig_shape: tuple[int, ...]) -> MaskStack:
    """One factory's result as rows ``(k, sig size)``, dense or CSR."""
    sig_size = int(np.prod(sig_shape))
    where = f"mask_factories[{index}]"
    if isinstance(item, pydata_sparse.SparseArray):
        if tuple(item.shape) == sig_shape:
            item = item.reshape((1, sig_size))
        elif tuple(item.shape[1:]) == sig_shape:
            item = item.reshape((item.shape[0], sig_size))
        if item.ndim != 2:
            msg = f"{where} has shape {item.shape}; masks must have the frame's shape {sig_shape}"
            raise UDFDefinitionError(msg)
        item = item.to_scipy_sparse()
    if scipy.sparse.issparse(item):
        item = cast("Any", item)
        _check_numeric(where, np.dtype(item.dtype))
        rows: Any = scipy.sparse.csr_matrix(item)
        if tuple(rows.shape) == sig_shape:
            return scipy.sparse.csr_matrix(rows.reshape((1, sig_size)))
        if rows.shape[1] == sig_size:
            csr: scipy.sparse.csr_matrix = rows
            return csr
        msg = f"{where} is a sparse matrix of shape {rows.shape}; expected {sig_shape} or (n, {sig_size})"
        raise UDFDefinitionError(msg)
    if isinstance(item, list | tuple) and item and all(_is_array_like(m) for m in item):
        stacked: list[Any] = [_as_mask_rows(index, m, sig_shape) for m in item]
        if all(scipy.sparse.issparse(s) for s in stacked):
            return scipy.sparse.csr_matrix(scipy.sparse.vstack(stacked))
        return np.concatenate([_dense(s) for s in stacked], axis=0)
    array = np.asarray(item)
    _check_numeric(where, array.dtype)
    if array.shape == sig_shape:
        return array.reshape(1, sig_size)
    if array.ndim == len(sig_shape) + 1 and array.shape[1:] == sig_shape:
        return array.reshape(array.shape[0], sig_size)
    msg = f"{where} has shape {array.shape}; masks must have the frame's shape {sig_shape} (or be a stack of them)"
    raise UDFDefinitionError(msg)


def _dense(rows: Any) -> np.ndarray[Any, Any]:
    if scipy.sparse.issparse(rows):
        return np.asarray(cast("Any", rows).toarray())
    dense: np.ndarray[Any, Any] = rows
    return dense


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray | pydata_sparse.SparseArray) or scipy.sparse.issparse(value)


def _check_numeric(where: str, dtype: np.dtype[Any]) -> None:
    if dtype.kind not in "biufc":
        msg = f"{where} has dtype {dtype}; masks must be numeric (bool, int, float or complex)"
        raise UDFDefinitionError(msg)
