"""Result buffers: what a UDF declares, what it writes into, what a user gets.

Policy
------
- A declaration (:class:`BufferDeclaration`) is validated when it is made, so a
  bad ``kind``, ``dtype`` or ``extra_shape`` fails before any frame is read.
- On a worker a buffer covers one partition: a ``nav`` buffer holds one entry
  per selected frame of the partition, ``sig`` and ``single`` buffers hold the
  partition's partial result.  Inside ``process_*`` a UDF sees *views* of
  those arrays (:class:`BufferViews`), rebound by the engine per frame or tile
  with plain dict writes, because that rebinding sits on the per-frame path.
- On the host, ``nav`` buffers are stored compressed to the ROI (one entry per
  selected frame, flat nav order); the full nav-shaped array, with a fill value
  outside the ROI, is only built when a user asks for ``.data``.
- What the user receives is always NumPy on the host (:class:`BufferWrapper`).
"""

from __future__ import annotations

import keyword
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gpuudf.errors import UDFDefinitionError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BUFFER_KINDS",
    "BufferDeclaration",
    "BufferViews",
    "BufferWrapper",
    "declare_buffer",
    "fill_value_for",
    "validate_declarations",
]

BufferKind = Literal["nav", "sig", "single"]
BUFFER_KINDS: tuple[str, ...] = ("nav", "sig", "single")
_WHERE_VALUES = (None, "host", "device")
_USE_VALUES = (None, "private", "result_only")
#: dtype kinds no device array module holds: object, str, bytes, datetime, timedelta, structured.
_HOST_ONLY_KINDS = "OUSMmV"


@dataclass(frozen=True)
class BufferDeclaration:
    """One result buffer as a UDF declared it with ``self.buffer(...)``."""

    kind: str
    extra_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    where: str | None
    use: str | None

    @property
    def on_host(self) -> bool:
        """Whether workers keep this buffer in NumPy even on a device.

        ``where="host"`` asks for it; object, string, bytes, datetime,
        timedelta and structured dtypes need it, since device arrays (CuPy's)
        hold only bool and numbers.
        """
        return self.where == "host" or self.dtype.kind in _HOST_ONLY_KINDS

    @property
    def allocated_on_workers(self) -> bool:
        """``result_only`` buffers exist only in ``get_results``."""
        return self.use != "result_only"

    @property
    def returned(self) -> bool:
        """Private buffers are never handed to the user."""
        return self.use != "private"

    def item_shape(self) -> tuple[int, ...]:
        """Shape of one nav entry, or of the whole ``single`` buffer."""
        if self.kind == "single" and not self.extra_shape:
            return (1,)
        return self.extra_shape

    def local_shape(self, num_frames: int, sig_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape on a worker for a partition of ``num_frames`` selected frames."""
        if self.kind == "nav":
            return (num_frames, *self.extra_shape)
        if self.kind == "sig":
            return (*sig_shape, *self.extra_shape)
        return self.item_shape()

    def full_shape(self, nav_shape: tuple[int, ...], sig_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the result a user receives."""
        if self.kind == "nav":
            return (*nav_shape, *self.extra_shape)
        return self.local_shape(0, sig_shape)


def declare_buffer(
    kind: str,
    extra_shape: tuple[int, ...] | int = (),
    dtype: npt.DTypeLike = "float32",
    where: str | None = None,
    use: str | None = None,
) -> BufferDeclaration:
    """Validate the arguments of ``UDF.buffer`` and return a declaration.

    Raises
    ------
    UDFDefinitionError
        If any argument is outside what API.md allows.
    """
    if kind not in BUFFER_KINDS:
        msg = f"unknown buffer kind {kind!r}: use one of {', '.join(map(repr, BUFFER_KINDS))}"
        raise UDFDefinitionError(msg)
    if isinstance(extra_shape, int | np.integer):
        extra_shape = (int(extra_shape),)
    try:
        # operator.index: 2.5 or "3" is a mistake to report, not a length to guess
        extra = tuple(operator.index(n) for n in extra_shape)
    except TypeError:
        msg = f"extra_shape must be a tuple of ints, got {extra_shape!r}"
        raise UDFDefinitionError(msg) from None
    if any(n < 0 for n in extra):
        msg = f"extra_shape {extra} has a negative length"
        raise UDFDefinitionError(msg)
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as exc:
        msg = f"buffer dtype {dtype!r} is not a NumPy dtype: {exc}"
        raise UDFDefinitionError(msg) from None
    if where not in _WHERE_VALUES:
        msg = f"where={where!r} is not one of {_WHERE_VALUES}"
        raise UDFDefinitionError(msg)
    if use not in _USE_VALUES:
        msg = f"use={use!r} is not one of {_USE_VALUES}"
        raise UDFDefinitionError(msg)
    return BufferDeclaration(kind=kind, extra_shape=extra, dtype=np_dtype, where=where, use=use)


def validate_declarations(owner: str, declarations: object) -> dict[str, BufferDeclaration]:
    """Check what ``get_result_buffers`` returned.

    Parameters
    ----------
    owner
        The UDF class name, for messages.
    declarations
        The returned object; must map identifiers to declarations.
    """
    if not isinstance(declarations, Mapping):
        msg = f"{owner}.get_result_buffers() must return a dict, got {type(declarations).__name__}"
        raise UDFDefinitionError(msg)
    checked: dict[str, BufferDeclaration] = {}
    for name, decl in declarations.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            msg = f"{owner} declares a buffer named {name!r}: buffer names must be Python identifiers"
            raise UDFDefinitionError(msg)
        if name.startswith("_"):
            msg = f"{owner} declares a buffer named {name!r}: names starting with '_' are reserved"
            raise UDFDefinitionError(msg)
        if not isinstance(decl, BufferDeclaration):
            msg = f"{owner} buffer {name!r} is a {type(decl).__name__}, not a declaration made with self.buffer(...)"
            raise UDFDefinitionError(msg)
        checked[name] = decl
    return checked


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


class BufferViews:
    """The ``self.results`` namespace: one attribute per declared buffer.

    Attribute reads return the view the engine bound for the current frame,
    tile or partition.  Attribute writes copy *into* that view, so
    ``self.results.x = value`` and ``self.results.x += y`` both update the
    buffer instead of rebinding a name.
    """

    __slots__ = ("__dict__", "_declared", "_owner")

    def __init__(self, owner: str, declared: Mapping[str, BufferDeclaration]) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_declared", dict(declared))

    def __getattr__(self, name: str) -> Any:
        declared: dict[str, BufferDeclaration] = object.__getattribute__(self, "_declared")
        owner = object.__getattribute__(self, "_owner")
        if name in declared and declared[name].use == "result_only":
            msg = (
                f"{owner} buffer {name!r} is result_only: it is not allocated on "
                "workers and exists only as what get_results() returns"
            )
            raise AttributeError(msg)
        msg = f"{owner} declares no buffer {name!r}; declared: {sorted(declared) or 'none'}"
        raise AttributeError(msg)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            view = self.__dict__[name]
        except KeyError:
            self.__getattr__(name)  # raises the explanatory AttributeError
            raise
        if value is not view:
            view[...] = value

    def __repr__(self) -> str:
        return f"<results of {self._owner}: {', '.join(self.__dict__) or 'unbound'}>"

    def __dir__(self) -> list[str]:
        return sorted(self.__dict__)


class BufferWrapper:
    """One result buffer as the user receives it: NumPy arrays on the host.

    Parameters
    ----------
    declaration
        The buffer's declaration.
    nav_shape, sig_shape
        The dataset's axes.
    raw
        For ``nav`` buffers: one entry per selected frame, flat nav order.
        For ``sig``/``single`` buffers: the full array.  Give either
        ``raw`` or ``full``.
    full
        The full-shape array (``nav`` buffers returned by ``get_results``).
    selected
        Flat boolean mask of the frames that hold valid values, or ``None``
        when every frame does.
    """

    def __init__(
        self,
        declaration: BufferDeclaration,
        nav_shape: tuple[int, ...],
        sig_shape: tuple[int, ...],
        *,
        raw: np.ndarray[Any, Any] | None = None,
        full: np.ndarray[Any, Any] | None = None,
        selected: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
    ) -> None:
        if (raw is None) == (full is None):
            msg = "give exactly one of raw or full"
            raise ValueError(msg)
        self._declaration = declaration
        self._nav_shape = nav_shape
        self._sig_shape = sig_shape
        self._raw = raw
        self._full = full
        self._selected = selected

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
    def data(self) -> np.ndarray[Any, Any]:
        """The full result; ``nav`` buffers are nav-shaped, filled outside the ROI."""
        if self._full is None:
            assert self._raw is not None
            if self.kind != "nav":
                self._full = self._raw
            elif self._selected is None:
                self._full = self._raw.reshape(self._declaration.full_shape(self._nav_shape, self._sig_shape))
            else:
                flat = np.full(
                    (self._selected.size, *self.extra_shape),
                    fill_value_for(self.dtype),
                    dtype=self.dtype,
                )
                flat[self._selected] = self._raw
                self._full = flat.reshape(self._declaration.full_shape(self._nav_shape, self._sig_shape))
        return self._full

    @property
    def raw_data(self) -> np.ndarray[Any, Any]:
        """Only the selected entries, flat, for ``nav`` buffers; the full result otherwise."""
        if self._raw is None:
            assert self._full is not None
            if self.kind != "nav":
                self._raw = self._full
            else:
                flat = self._full.reshape((math.prod(self._nav_shape), *self.extra_shape))
                self._raw = flat if self._selected is None else flat[self._selected]
        return self._raw

    @property
    def valid_mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which entries hold results; nav-shaped for ``nav``, all true otherwise."""
        if self.kind == "nav":
            if self._selected is None:
                return np.ones(self._nav_shape, dtype=bool)
            return self._selected.reshape(self._nav_shape)
        shape = self._sig_shape if self.kind == "sig" else self._declaration.item_shape()
        return np.ones(shape, dtype=bool)

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        data = self.data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:  # NumPy 2's protocol: refuse rather than copy silently
                msg = f"converting {self.kind} buffer of {data.dtype} to {np.dtype(dtype)} needs a copy, but copy=False"
                raise ValueError(msg)
            return data.astype(dtype)
        return data.copy() if copy else data

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of :attr:`data`."""
        return self._declaration.full_shape(self._nav_shape, self._sig_shape)

    def __repr__(self) -> str:
        return f"<BufferWrapper kind={self.kind} dtype={self.dtype} shape={self.shape}>"
