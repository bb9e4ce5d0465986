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
- What the user receives is :class:`gpuudf.results.BufferWrapper`.
"""

from __future__ import annotations

import keyword
import operator
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gpuudf.errors import UDFDefinitionError, UseDiscouragedWarning

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BUFFER_KINDS",
    "BufferDeclaration",
    "BufferViews",
    "declare_buffer",
    "validate_declarations",
]

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
        declared = getattr(decl, "declaration", None)
        if isinstance(declared, BufferDeclaration):
            checked[name] = declared  # LiberTEM code may declare with BufferWrapper(kind, ...)
            continue
        if not isinstance(decl, BufferDeclaration):
            msg = f"{owner} buffer {name!r} is a {type(decl).__name__}, not a declaration made with self.buffer(...)"
            raise UDFDefinitionError(msg)
        checked[name] = decl
    return checked


class BufferViews:
    """The ``self.results`` namespace, and ``dest``/``src`` in ``merge``.

    Attribute reads return the view the engine bound for the current frame,
    tile or partition (``None`` for a ``result_only`` buffer inside
    ``process_*``, where it does not exist).  Attribute writes copy *into*
    that view, so ``self.results.x = value`` and ``self.results.x += y`` both
    update the buffer instead of rebinding a name.  As in LiberTEM,
    ``name in views`` and iteration give the names of the bound buffers, and
    ``views[name]`` is the same as ``getattr(views, name)`` but warns
    (:class:`~gpuudf.errors.UseDiscouragedWarning`).
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
        if view is None:  # a result_only buffer on a worker
            self.__dict__.pop(name)
            try:
                self.__getattr__(name)  # raises the explanatory AttributeError
            finally:
                self.__dict__[name] = None
        if value is not view:
            view[...] = value

    def __getitem__(self, name: str) -> Any:
        warnings.warn(
            "dict-like access is discouraged, as it can be confusing vs. using attribute access: "
            f"write .{name} instead of [{name!r}]",
            UseDiscouragedWarning,
            stacklevel=2,
        )
        try:
            return self.__dict__[name]
        except KeyError:
            self.__getattr__(name)  # raises the explanatory AttributeError
            raise

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__dict__))

    def __reduce__(self) -> tuple[Any, ...]:
        # the default would restore state through our __setattr__, which writes into views
        return (_rebuild_views, (self._owner, self._declared, dict(self.__dict__)))

    def __repr__(self) -> str:
        return f"<results of {self._owner}: {', '.join(self.__dict__) or 'unbound'}>"

    def __dir__(self) -> list[str]:
        return sorted(self.__dict__)


def _rebuild_views(owner: str, declared: Mapping[str, BufferDeclaration], bound: dict[str, Any]) -> BufferViews:
    views = BufferViews(owner, declared)
    views.__dict__.update(bound)
    return views
