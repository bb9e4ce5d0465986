"""Results as the user receives them: NumPy arrays on the host, with valid masks.

Policy
------
- A ``nav`` result is stored compressed to the ROI (one entry per selected
  frame, flat nav order); the full nav-shaped array, with a fill value outside
  the ROI, is only built when a user asks for ``.data``.
- Valid masks follow LiberTEM: a ``nav`` result is valid where its frame was
  selected and merged (or where ``UDF.with_mask`` says), ``sig`` and
  ``single`` results are valid everywhere unless ``with_mask`` says otherwise;
  ``valid_mask`` always has the shape of ``data``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.buffers import BufferDeclaration, declare_buffer
from gpuudf.errors import InvalidMaskError
from gpuudf.shape import Shape

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["ArrayWithMask", "BufferWrapper", "fill_value_for"]


def fill_value_for(dtype: np.dtype[Any]) -> Any:
    """What a nav result holds outside the ROI: NaN where the dtype has one."""
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "O":
        return None
    if dtype.kind in "US":
        return ""
    if dtype.kind in "mM":
        return np.array("NaT", dtype=dtype)
    return 0


class ArrayWithMask:
    """A result array and which of its entries are valid: what ``UDF.with_mask`` makes.

    Parameters
    ----------
    arr
        The result, as ``get_results`` returns it.
    mask
        Booleans broadcastable to ``arr``'s shape; ``True``/``False`` for all
        valid or none.

    Raises
    ------
    InvalidMaskError
        If the mask is not boolean or does not broadcast to ``arr``.
    """

    def __init__(self, arr: Any, mask: Any) -> None:
        shape = tuple(np.shape(arr))
        mask_array = np.asarray(mask)
        if mask_array.dtype != np.bool_:
            msg = f"a valid mask must have dtype bool, got {mask_array.dtype}"
            raise InvalidMaskError(msg)
        try:
            np.broadcast_to(mask_array, shape)
        except ValueError:
            msg = f"a valid mask of shape {mask_array.shape} does not fit its data of shape {shape}"
            raise InvalidMaskError(msg) from None
        self._arr = arr
        self._mask = mask_array

    @property
    def arr(self) -> Any:
        """The result array."""
        return self._arr

    @property
    def mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """The mask, broadcast to the array's shape (read-only)."""
        return np.broadcast_to(self._mask, np.shape(self._arr))


class BufferWrapper:
    """One result buffer as the user receives it: NumPy arrays on the host.

    The engine makes these; as in LiberTEM, ``BufferWrapper(kind,
    extra_shape, dtype, where, use)`` also declares a buffer (the same as
    ``UDF.buffer``), for UDF code that declares its buffers that way.

    Parameters
    ----------
    kind, extra_shape, dtype, where, use
        As for :meth:`gpuudf.UDF.buffer`.
    """

    def __init__(
        self,
        kind: str,
        extra_shape: tuple[int, ...] | int = (),
        dtype: npt.DTypeLike = "float32",
        where: str | None = None,
        use: str | None = None,
    ) -> None:
        self._declaration = declare_buffer(kind, extra_shape, dtype, where, use)
        self._nav_shape: tuple[int, ...] = ()
        self._sig_shape: tuple[int, ...] = ()
        self._raw: np.ndarray[Any, Any] | None = None
        self._selected: np.ndarray[Any, np.dtype[np.bool_]] | None = None
        self._valid_nav: np.ndarray[Any, np.dtype[np.bool_]] | None = None
        self._mask: np.ndarray[Any, np.dtype[np.bool_]] | None = None
        self._full: np.ndarray[Any, Any] | None = None
        self._given_full: np.ndarray[Any, Any] | None = None

    @classmethod
    def of_result(
        cls,
        declaration: BufferDeclaration,
        nav_shape: tuple[int, ...],
        sig_shape: tuple[int, ...],
        *,
        raw: np.ndarray[Any, Any],
        selected: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
        valid_nav: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
        mask: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
        full: np.ndarray[Any, Any] | None = None,
    ) -> BufferWrapper:
        """A result, as the engine hands it to the user.

        Parameters
        ----------
        declaration
            The buffer's declaration.
        nav_shape, sig_shape
            The dataset's axes.
        raw
            For ``nav`` buffers: one entry per selected frame, flat nav order,
            shape ``(selected frames, *extra_shape)``.  For ``sig``/``single``
            buffers: the full array.
        selected
            Flat boolean mask of the frames the ROI selects, or ``None`` when it
            selects every frame.
        valid_nav
            For partial results: which of the selected frames are merged, flat;
            ``None`` when all of them are.
        mask
            A valid mask given with ``UDF.with_mask``, in ``raw``'s shape;
            ``None`` for the default (``valid_nav`` for ``nav`` buffers, all
            valid otherwise).
        full
            With a ROI, a ``nav`` result ``get_results`` returned for every
            frame (not only the ROI's): :attr:`data` then is this array as it
            is, but for frames not merged yet in a partial result.
        """
        wrapper = cls.__new__(cls)
        vars(wrapper).update(
            _declaration=declaration,
            _nav_shape=tuple(nav_shape),
            _sig_shape=tuple(sig_shape),
            _raw=raw,
            _selected=selected,
            _valid_nav=valid_nav,
            _mask=mask,
            _full=None,
            _given_full=None if full is None else full.reshape(declaration.full_shape(nav_shape, sig_shape)),
        )
        return wrapper

    @property
    def declaration(self) -> BufferDeclaration:
        """What was declared: kind, extra shape, dtype, where, use."""
        return self._declaration

    def _held(self) -> np.ndarray[Any, Any]:
        if self._raw is None:
            msg = "this BufferWrapper declares a buffer; it holds data only as a result of a run"
            raise ValueError(msg)
        return self._raw

    @property
    def kind(self) -> str:
        """``"nav"``, ``"sig"`` or ``"single"``."""
        return self._declaration.kind

    @property
    def dtype(self) -> np.dtype[Any]:
        """The buffer's dtype."""
        return self._declaration.dtype

    @property
    def extra_shape(self) -> tuple[int, ...]:
        """The per-entry shape the UDF declared."""
        return self._declaration.extra_shape

    @property
    def use(self) -> str | None:
        """``None`` or ``"result_only"`` (private buffers never reach the user)."""
        return self._declaration.use

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`data`."""
        return self._declaration.full_shape(self._nav_shape, self._sig_shape)

    def _raw_valid(self) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        """Valid entries of :attr:`raw_data`, in its shape; ``None`` when all are."""
        raw = self._held()
        if self._mask is not None:
            return np.broadcast_to(self._mask, raw.shape)
        if self.kind != "nav" or self._valid_nav is None:
            return None
        extra = (1,) * len(self.extra_shape)
        return np.broadcast_to(self._valid_nav.reshape(self._valid_nav.shape + extra), raw.shape)

    @property
    def data(self) -> np.ndarray[Any, Any]:
        """The full result; ``nav`` buffers are nav-shaped.

        ``nav`` entries outside the ROI hold the fill value (NaN, or 0 /
        None / '' where the dtype has no NaN), and so do the entries of frames
        not merged yet in a partial result, unless ``get_results`` gave a
        mask of its own.
        """
        if self._full is None:
            raw = self._held()
            unmerged = self._mask is None and self._valid_nav is not None and not self._valid_nav.all()
            if self.kind != "nav":
                self._full = raw
            elif self._given_full is not None:  # with a ROI, every frame's entry as get_results gave it
                full = self._given_full
                if unmerged:
                    assert self._valid_nav is not None
                    assert self._selected is not None
                    full = full.copy()
                    not_merged = np.flatnonzero(self._selected)[~self._valid_nav]
                    full.reshape((-1, *self.extra_shape))[not_merged] = fill_value_for(self.dtype)
                self._full = full
            else:
                if unmerged:
                    assert self._valid_nav is not None
                    raw = raw.copy()
                    raw[~self._valid_nav] = fill_value_for(self.dtype)
                if self._selected is None:
                    self._full = raw.reshape(self.shape)
                else:
                    flat = np.full((self._selected.size, *self.extra_shape), fill_value_for(self.dtype), self.dtype)
                    flat[self._selected] = raw
                    self._full = flat.reshape(self.shape)
        return self._full

    @property
    def raw_data(self) -> np.ndarray[Any, Any]:
        """``nav`` buffers: only the ROI's entries, flat ``(frames, *extra_shape)``; else :attr:`data`."""
        return self._held()

    @property
    def valid_mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which entries of :attr:`data` hold results, in its shape.

        ``nav``: the merged frames of the ROI (or the mask ``get_results``
        gave), ``False`` outside the ROI; ``sig``/``single``: all ``True``
        unless ``get_results`` gave a mask.
        """
        valid = self._raw_valid()
        if self.kind != "nav":
            return np.ones(self.shape, dtype=bool) if valid is None else np.array(valid)
        if self._selected is None:
            flat = np.ones(self._held().shape, dtype=bool) if valid is None else np.array(valid)
            return flat.reshape(self.shape)
        full = np.zeros((self._selected.size, *self.extra_shape), dtype=bool)
        full[self._selected] = True if valid is None else valid
        return full.reshape(self.shape)

    @property
    def masked_data(self) -> np.ma.MaskedArray[Any, Any]:
        """:attr:`data` as a NumPy masked array, masked where not valid."""
        return np.ma.array(self.data, mask=~self.valid_mask)

    @property
    def raw_masked_data(self) -> np.ma.MaskedArray[Any, Any]:
        """:attr:`raw_data` as a NumPy masked array, masked where not valid."""
        valid = self._raw_valid()
        return np.ma.array(self._held(), mask=False if valid is None else ~valid)

    @property
    def valid_slice_bounding(self) -> tuple[slice, ...]:
        """Per axis of :attr:`data`, the slice that bounds its valid entries (may include invalid ones)."""
        valid = self.valid_mask
        bounds = []
        for axis in range(valid.ndim):
            hits = np.flatnonzero(valid.any(axis=tuple(a for a in range(valid.ndim) if a != axis)))
            bounds.append(slice(int(hits[0]), int(hits[-1]) + 1) if len(hits) else slice(0, 0))
        return tuple(bounds)

    def get_valid_slice_inner(self, axis: int = 0) -> tuple[slice, ...]:
        """A slice along ``axis`` whose every entry is valid: the first run of wholly valid rows, as in LiberTEM.

        Other axes are left whole; an empty slice when no row along ``axis``
        is wholly valid.
        """
        valid = self.valid_mask
        whole = np.atleast_1d(valid.all(axis=tuple(a for a in range(valid.ndim) if a != axis)))
        hits = np.flatnonzero(whole)
        if len(hits):
            start = int(hits[0])
            gaps = np.flatnonzero(~whole[start:])
            stop = start + int(gaps[0]) if len(gaps) else len(whole)
        else:
            start = stop = 0
        inner = [slice(None)] * valid.ndim
        inner[axis] = slice(start, stop)
        return tuple(inner)

    def make_default_mask(
        self,
        valid_nav_mask: np.ndarray[Any, np.dtype[np.bool_]],
        dataset_shape: Shape,
        roi: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """The default valid mask in :attr:`raw_data`'s shape, from the merged frames ``valid_nav_mask``.

        ``nav``: ``valid_nav_mask`` (flat, one entry per selected frame)
        broadcast over ``extra_shape``; ``sig`` and ``single``: all ``True``.
        """
        sig = tuple(dataset_shape.sig)
        if self.kind != "nav":
            return np.ones(self._declaration.local_shape(0, sig), dtype=bool)
        frames = dataset_shape.nav_size if roi is None else int(np.count_nonzero(roi))
        ones = (1,) * len(self.extra_shape)
        flat = np.asarray(valid_nav_mask, dtype=bool).reshape((frames, *ones))
        return np.broadcast_to(flat, (frames, *self.extra_shape)).copy()

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        data = self.data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:  # NumPy 2's protocol: refuse rather than copy silently
                msg = f"converting {self.kind} buffer of {data.dtype} to {np.dtype(dtype)} needs a copy, but copy=False"
                raise ValueError(msg)
            return data.astype(dtype)
        return data.copy() if copy else data

    def __repr__(self) -> str:
        if self._raw is None:
            return f"<BufferWrapper kind={self.kind} dtype={self.dtype} extra_shape={self.extra_shape}>"
        return f"<BufferWrapper kind={self.kind} dtype={self.dtype} shape={self.shape}>"
