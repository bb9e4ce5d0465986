"""The UDF base class that users subclass.

Policy
------
A UDF is a small, picklable *description* of a computation: which buffers it
needs and how to fill and merge them.  This module knows nothing about how a
UDF is run (no executor, runner or context is imported here); the engine sets
``meta``, ``results``, ``task_data`` and ``xp`` on a clean copy before each
hook it calls.  A UDF travels to workers as its class plus the keyword
arguments given to ``UDF.__init__`` and is re-created there, so whatever a
subclass stores outside those arguments stays behind.
"""

from __future__ import annotations

import enum
import importlib
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from gpuudf.aux_data import AuxData
from gpuudf.buffers import BufferDeclaration, BufferViews, declare_buffer
from gpuudf.errors import MissingProcessMethodError, UDFDefinitionError
from gpuudf.meta import UDFMeta
from gpuudf.results import ArrayWithMask

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "PROCESS_METHODS",
    "UDF",
    "RunsUDFs",
    "UDFMeta",
    "UDFMethod",
    "UDFParams",
    "UDFTaskData",
    "process_method_of",
]

#: Process methods in order of precedence when a UDF defines several.
PROCESS_METHODS: tuple[str, ...] = ("tile", "frame", "partition")


class UDFMethod(enum.StrEnum):
    """What ``UDF.get_method()`` returns (LiberTEM's ``UDF.UDF_METHOD``); equal to the plain strings."""

    TILE = "tile"
    FRAME = "frame"
    PARTITION = "partition"


class UDFParams(types.SimpleNamespace):
    """The constructor's keyword arguments, as attributes (``self.params.x``).

    Aux data parameters (:meth:`UDF.aux_data`) read as the view for the
    current frames.  As in LiberTEM, ``params.get(name, default)``,
    ``name in params`` and ``params[name]`` work too.
    """

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        """The parameter ``name``, or ``default`` when the UDF was not given it."""
        return self.__dict__.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__dict__))

    def keys(self) -> list[str]:
        """The parameter names."""
        return list(self.__dict__)

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` pairs."""
        return list(self.__dict__.items())

    def values(self) -> list[Any]:
        """The parameter values."""
        return list(self.__dict__.values())


class RunsUDFs(Protocol):
    """What the ``run_*`` helpers of the built-in UDFs need of a context: ``gpuudf.Context``, or LiberTEM's."""

    def run_udf(self, dataset: Any, udf: Any, roi: Any = ..., progress: Any = ...) -> Any:
        """Run ``udf`` over ``dataset``."""


class UDFTaskData(dict[str, Any]):
    """``self.task_data``: what ``get_task_data`` returned, by item or attribute."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            msg = f"task data has no entry {name!r}; entries: {sorted(self)}"
            raise AttributeError(msg) from None


class UDF:
    """Base class of user-defined functions.

    Subclass it, declare buffers in :meth:`get_result_buffers` and implement
    at least one of ``process_tile(tile)``, ``process_frame(frame)`` or
    ``process_partition(partition)``.  See the writing-UDFs guide.

    Parameters
    ----------
    **kwargs
        Parameters of the UDF, available as ``self.params``.  A subclass that
        takes parameters must pass all of them on under their own names.
    """

    #: Return this from :meth:`get_preferred_input_dtype` to keep the data's dtype.
    USE_NATIVE_DTYPE: ClassVar[type] = bool
    #: The enum :meth:`get_method` returns (LiberTEM's name for it).
    UDF_METHOD: ClassVar[type[UDFMethod]] = UDFMethod
    #: Array backend names for :meth:`get_backends`, as LiberTEM spells them.
    BACKEND_NUMPY: ClassVar[str] = "numpy"
    BACKEND_CUPY: ClassVar[str] = "cupy"
    BACKEND_ALL: ClassVar[tuple[str, ...]] = ("numpy", "cupy")
    #: Tiling preferences meaning "no preference" (LiberTEM's constants).
    TILE_SIZE_MAX: ClassVar[float] = np.inf
    TILE_DEPTH_MAX: ClassVar[float] = np.inf
    TILE_DEPTH_DEFAULT: ClassVar[None] = None
    TILE_SIZE_BEST_FIT: ClassVar[None] = None

    xp: Any
    meta: UDFMeta
    results: BufferViews
    task_data: UDFTaskData

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = dict(kwargs)
        self.params = UDFParams(**kwargs)
        self.xp = np
        self.task_data = UDFTaskData()

    # -- declared by subclasses ---------------------------------------------

    def get_result_buffers(self) -> Mapping[str, BufferDeclaration]:
        """Declare the result buffers: ``{name: self.buffer(...)}``."""
        msg = f"{type(self).__name__} must implement get_result_buffers()"
        raise UDFDefinitionError(msg)

    def buffer(
        self,
        kind: str,
        extra_shape: tuple[int, ...] | int = (),
        dtype: npt.DTypeLike = "float32",
        where: str | None = None,
        use: str | None = None,
    ) -> BufferDeclaration:
        """Declare one result buffer.

        Parameters
        ----------
        kind
            ``"nav"`` (one entry per frame), ``"sig"`` (frame-shaped) or
            ``"single"``.
        extra_shape
            Shape of each entry beyond ``kind``'s own axes.
        dtype
            Any NumPy dtype, ``object`` included.
        where
            ``None``/``"device"``: where the UDF computes; ``"host"``: NumPy on
            every worker.
        use
            ``None``, ``"private"`` (not returned) or ``"result_only"``
            (computed by :meth:`get_results` alone).
        """
        return declare_buffer(kind, extra_shape, dtype, where, use)

    def get_method(self) -> UDFMethod:
        """Which process method runs: a :class:`UDFMethod` (plain strings are accepted too)."""
        for method in PROCESS_METHODS:
            if callable(getattr(self, f"process_{method}", None)):
                return UDFMethod(method)
        msg = (
            f"{type(self).__name__} has no process method: implement "
            "process_tile(tile), process_frame(frame) or process_partition(partition)"
        )
        raise MissingProcessMethodError(msg)

    def preprocess(self) -> None:
        """Initialise buffers, once per partition and once on the host."""

    def postprocess(self) -> None:
        """Finish a partition's buffers on the worker."""

    def cleanup(self) -> None:
        """Release what processing a partition took (LiberTEM's hook): on the worker, after ``postprocess``."""

    def merge(self, dest: BufferViews, src: BufferViews) -> None:
        """Merge one partition's results ``src`` into ``dest`` on the host.

        The default copies ``nav`` buffers into place; a UDF with ``sig`` or
        ``single`` buffers must override it (the engine checks before a run).
        """
        for name, src_view in vars(src).items():
            getattr(dest, name)[...] = src_view

    def get_results(self) -> Mapping[str, Any]:
        """Final (and partial) results: ``{name: array}``.

        Buffers not returned here are returned as they are, unless private.
        ``result_only`` buffers must be returned here.
        """
        return {}

    def get_task_data(self) -> Mapping[str, Any]:
        """Per-worker data computed once with ``self.xp`` (masks, FFT plans)."""
        return {}

    def get_preferred_input_dtype(self) -> npt.DTypeLike:
        """The dtype frames are cast to, at least; see ``USE_NATIVE_DTYPE``."""
        return np.float32

    def get_backends(self) -> tuple[str, ...]:
        """Array modules this UDF can compute with, preferred first."""
        return ("numpy",)

    def get_tiling_preferences(self) -> Mapping[str, int]:
        """Hints for tile shape: ``{"depth": frames, "total_size": bytes}``."""
        return {}

    # -- helpers for UDF code -----------------------------------------------

    @classmethod
    def aux_data(
        cls, data: Any, kind: str, extra_shape: tuple[int, ...] | int = (), dtype: npt.DTypeLike = "float32"
    ) -> AuxData:
        """Wrap ``data`` as auxiliary data, to pass as a parameter of the UDF.

        Inside the UDF, the parameter then reads as the entries of the frames
        the current hook sees: ``process_frame`` gets the current frame's,
        ``process_tile`` the tile's, ``preprocess``/``process_partition`` the
        partition's (with a ROI, only selected frames').

        Parameters
        ----------
        data
            ``kind="nav"``: ``extra_shape`` values per frame, in flat nav order.
        kind
            ``"nav"``, ``"sig"`` or ``"single"``.
        extra_shape
            Shape of each entry.
        dtype
            The dtype the data are converted to.
        """
        return AuxData(data, kind, extra_shape, dtype)

    @staticmethod
    def with_mask(data: Any, mask: Any) -> ArrayWithMask:
        """Mark which entries of a result are valid; return it from ``get_results``.

        Parameters
        ----------
        data
            The result array.
        mask
            Booleans broadcastable to ``data`` (``True`` where valid), or
            ``True``/``False`` for all or none.

        Raises
        ------
        InvalidMaskError
            If ``mask`` is not boolean or does not broadcast to ``data``.
        """
        return ArrayWithMask(data, mask)

    def forbuf(self, arr: Any, target: Any) -> Any:
        """Return ``arr`` in the array module of buffer ``target``."""
        if isinstance(target, np.ndarray):
            if isinstance(arr, np.ndarray | np.generic):
                return arr
            # a device array (cupy.asnumpy), or a Python value where xp is NumPy
            asnumpy = getattr(self.xp, "asnumpy", None)
            return np.asarray(arr) if asnumpy is None else asnumpy(arr)
        return self.xp.asarray(arr)

    def copy(self) -> UDF:
        """A clean copy, made the way workers make theirs.

        Raises
        ------
        UDFDefinitionError
            If the constructor does not accept its own parameters back.
        """
        cls = type(self)
        try:
            twin = cls(**self._kwargs)
        except TypeError as exc:
            msg = (
                f"{cls.__qualname__} cannot be re-created from the parameters it passed "
                f"to UDF.__init__ ({sorted(self._kwargs)}): {exc}. A UDF's __init__ must "
                "pass each of its parameters to super().__init__() under its own name."
            )
            raise UDFDefinitionError(msg) from exc
        except AttributeError as exc:
            msg = f"{cls.__qualname__} was never initialised: call super().__init__(**params)"
            raise UDFDefinitionError(msg) from exc
        if sorted(twin._kwargs) != sorted(self._kwargs):
            msg = (
                f"{cls.__qualname__} re-created from {sorted(self._kwargs)} passed "
                f"{sorted(twin._kwargs)} to UDF.__init__: parameters must round-trip unchanged"
            )
            raise UDFDefinitionError(msg)
        changed = [k for k, v in self._kwargs.items() if not _same_value(v, twin._kwargs[k])]
        if changed:
            msg = (
                f"{cls.__qualname__} changes its parameters {changed} on the way to UDF.__init__ "
                "(re-created from what it passed, it passes something else): pass them on unchanged "
                "and derive values in the process methods or get_task_data"
            )
            raise UDFDefinitionError(msg)
        return twin

    def __getstate__(self) -> dict[str, Any]:
        # modules do not pickle: self.xp travels as its module's name (LiberTEM: tests of UDF pickling)
        state = self.__dict__.copy()
        xp = state.get("xp")
        if isinstance(xp, types.ModuleType):
            state["xp"] = _ModuleName(xp.__name__)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        xp = state.get("xp")
        if isinstance(xp, _ModuleName):
            state["xp"] = importlib.import_module(xp.name)
        self.__dict__.update(state)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__qualname__}({params})"


class _ModuleName:
    """An array module (``self.xp``) while its UDF is pickled or deep-copied."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[type[_ModuleName], tuple[str]]:
        return (_ModuleName, (self.name,))


def _same_value(a: Any, b: Any) -> bool:
    """Whether a re-created parameter equals the original; ``True`` when that cannot be told."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(a, b))
        except (TypeError, ValueError):
            return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays of other libraries, objects without a plain ==
        return True


def process_method_of(udf: UDF) -> str:
    """The validated process method of ``udf``, as a plain string."""
    returned = udf.get_method()
    method = str(returned.value if isinstance(returned, enum.Enum) else returned)
    if method not in PROCESS_METHODS or not callable(getattr(udf, f"process_{method}", None)):
        msg = f"{type(udf).__name__}.get_method() returned {returned!r}, which it does not implement"
        raise UDFDefinitionError(msg)
    return method
