"""Auxiliary data: per-frame (or per-frame-shaped) inputs a UDF gets as parameters.

Policy
------
- ``UDF.aux_data(data, kind, extra_shape, dtype)`` wraps an array the user
  passes as a UDF parameter; it travels with the UDF's other parameters,
  once per run per worker.
- Inside the UDF, ``self.params.name`` is a *view* like a result buffer's: for
  ``kind="nav"`` the entries of the frames the current hook sees (one frame,
  the tile, the partition), with a ROI only the selected frames'; on the host
  (``merge``, ``get_results``) all selected frames', flat.  ``sig`` and
  ``single`` aux data are the whole array everywhere.
- On a GPU worker the partition's entries are moved to the device once per
  partition, before ``preprocess``; per frame and tile the engine only
  rebinds views of them.  Dtypes no device array holds stay on the host.
- The shapes follow LiberTEM's ``AuxBufferWrapper``: ``nav`` data are stored
  as ``(frames, *extra_shape)`` (flat ``(frames,)`` when ``extra_shape`` is
  ``()`` or ``(1,)``), so a frame's view has shape ``extra_shape`` (``(1,)``
  without one, a single value for ``(1,)``: a NumPy scalar on the CPU, a 0-d
  device array on a GPU).
- A size that does not fit the dataset is a :class:`UDFDefinitionError`
  naming the UDF and the parameter, raised when the run is planned.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.buffers import BufferDeclaration, declare_buffer
from gpuudf.errors import UDFDefinitionError
from gpuudf.shape import Positions, Shape

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["AuxData"]


class AuxData:
    """An array given to a UDF as a parameter, viewed per frame, tile or partition.

    Made with :meth:`gpuudf.UDF.aux_data`.

    Parameters
    ----------
    data
        For ``kind="nav"``: one entry of ``extra_shape`` per frame of the
        dataset, in flat nav order (any shape with that many values, e.g.
        ``(*nav, *extra_shape)``).  For ``"sig"``: one entry per pixel of a
        frame.  For ``"single"``: ``extra_shape`` values.
    kind
        ``"nav"``, ``"sig"`` or ``"single"``, as for result buffers.
    extra_shape
        Shape of each entry.
    dtype
        The data are converted to this dtype (default ``float32``).
    """

    def __init__(
        self, data: Any, kind: str, extra_shape: tuple[int, ...] | int = (), dtype: npt.DTypeLike = "float32"
    ) -> None:
        self._declaration: BufferDeclaration = declare_buffer(kind, extra_shape, dtype)
        try:
            array = np.asarray(data).astype(self._declaration.dtype, copy=False)
        except (TypeError, ValueError) as exc:
            msg = f"aux data cannot be converted to {self._declaration.dtype}: {exc}"
            raise UDFDefinitionError(msg) from None
        extra = self._declaration.extra_shape
        if kind == "nav":
            entry_size = math.prod(extra)
            if entry_size == 0 or array.size % entry_size:
                msg = f"aux data of shape {array.shape} does not hold whole entries of extra_shape {extra}"
                raise UDFDefinitionError(msg)
            array = array.reshape((-1, *extra) if extra and extra != (1,) else (-1,))
        self._data = array

    @property
    def kind(self) -> str:
        """``"nav"``, ``"sig"`` or ``"single"``."""
        return self._declaration.kind

    @property
    def extra_shape(self) -> tuple[int, ...]:
        """Shape of each entry."""
        return self._declaration.extra_shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the data."""
        return self._declaration.dtype

    @property
    def on_host(self) -> bool:
        """Whether workers keep these data in NumPy even on a device (object, string, ... dtypes)."""
        return self._declaration.on_host

    @property
    def data(self) -> np.ndarray[Any, Any]:
        """The whole array, as stored."""
        return self._data

    @property
    def raw_data(self) -> np.ndarray[Any, Any]:
        """The whole array, as stored (LiberTEM's name): ``nav`` data flat, ``(frames, *extra_shape)``."""
        return self._data

    def check(self, owner: str, name: str, shape: Shape) -> None:
        """Raise :class:`UDFDefinitionError` unless the data fit a dataset of ``shape``."""
        expected = self._declaration.full_shape(tuple(shape.nav), tuple(shape.sig))
        if self.kind == "nav":
            if len(self._data) != shape.nav_size:
                msg = (
                    f"{owner} parameter {name!r}: nav aux data hold {len(self._data)} entries of "
                    f"extra_shape {self.extra_shape}, the dataset has {shape.nav_size} frames "
                    f"(expected data of shape {expected})"
                )
                raise UDFDefinitionError(msg)
        elif self._data.size != math.prod(expected):
            msg = f"{owner} parameter {name!r}: {self.kind} aux data of shape {self._data.shape} need shape {expected}"
            raise UDFDefinitionError(msg)

    def rows(self, positions: Positions, shape: Shape) -> np.ndarray[Any, Any]:
        """The entries a worker needs for a partition's selected frames (the whole array unless ``nav``)."""
        if self.kind != "nav":
            return self._data.reshape(self._declaration.full_shape(tuple(shape.nav), tuple(shape.sig)))
        if isinstance(positions, range):
            return self._data[positions.start : positions.stop]
        return self._data[positions]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        data = self._data if dtype is None else self._data.astype(dtype, copy=False)
        return data.copy() if copy else data

    def __repr__(self) -> str:
        return f"<AuxData kind={self.kind} dtype={self.dtype} extra_shape={self.extra_shape} entries={len(self._data)}>"
