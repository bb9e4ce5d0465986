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

import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gpuudf.buffers import BufferDeclaration, BufferViews, declare_buffer
from gpuudf.errors import UDFDefinitionError
from gpuudf.shape import Shape

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["PROCESS_METHODS", "UDF", "UDFMeta", "UDFParams", "UDFTaskData", "process_method_of"]

#: Process methods in order of precedence when a UDF defines several.
PROCESS_METHODS: tuple[str, ...] = ("tile", "frame", "partition")


class UDFParams(types.SimpleNamespace):
    """The constructor's keyword arguments, as attributes (``self.params.x``)."""

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


class UDFTaskData(dict[str, Any]):
    """``self.task_data``: what ``get_task_data`` returned, by item or attribute."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            msg = f"task data has no entry {name!r}; entries: {sorted(self)}"
            raise AttributeError(msg) from None


class UDFMeta:
    """What a UDF knows about the run and where it is in the data.

    ``slice`` and ``coordinates`` describe the frames the current hook sees:
    the whole partition in ``preprocess``/``postprocess``, the tile in
    ``process_tile``, one frame in ``process_frame``.  They are computed on
    access, because the engine updates the position on every frame.
    """

    __slots__ = (
        "_positions",
        "array_backend",
        "dataset_dtype",
        "dataset_shape",
        "device_class",
        "device_id",
        "input_dtype",
        "roi",
    )

    def __init__(
        self,
        *,
        dataset_shape: Shape,
        dataset_dtype: np.dtype[Any],
        input_dtype: np.dtype[Any],
        roi: np.ndarray[Any, np.dtype[np.bool_]] | None,
        device_class: str,
        device_id: int | None,
        array_backend: str,
    ) -> None:
        self.dataset_shape = dataset_shape
        self.dataset_dtype = dataset_dtype
        self.input_dtype = input_dtype
        self.roi = roi
        self.device_class = device_class
        self.device_id = device_id
        self.array_backend = array_backend
        # an int while process_frame runs (one frame), else a range or index array
        self._positions: int | range | np.ndarray[Any, Any] = range(0)

    @property
    def slice(self) -> slice:
        """Flat nav range spanned by the current frames (``stop`` exclusive)."""
        positions = self._positions
        if isinstance(positions, int):
            return slice(positions, positions + 1)
        if len(positions) == 0:
            return slice(0, 0)
        return slice(int(positions[0]), int(positions[-1]) + 1)

    @property
    def coordinates(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Nav coordinates of the current frames, shape ``(frames, nav_dims)``."""
        nav_shape = self.dataset_shape.nav
        flat = self.flat_positions
        return np.stack(np.unravel_index(flat, nav_shape), axis=-1)

    @property
    def flat_positions(self) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Flat nav indices of the current frames."""
        return np.asarray(self._positions, dtype=np.intp).reshape(-1)


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

    def get_method(self) -> str:
        """Which process method runs: ``"tile"``, ``"frame"`` or ``"partition"``."""
        for method in PROCESS_METHODS:
            if callable(getattr(self, f"process_{method}", None)):
                return method
        msg = (
            f"{type(self).__name__} has no process method: implement "
            "process_tile(tile), process_frame(frame) or process_partition(partition)"
        )
        raise UDFDefinitionError(msg)

    def preprocess(self) -> None:
        """Initialise buffers, once per partition and once on the host."""

    def postprocess(self) -> None:
        """Finish a partition's buffers on the worker."""

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

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__qualname__}({params})"


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
    """The validated process method of ``udf``."""
    method = udf.get_method()
    if method not in PROCESS_METHODS or not callable(getattr(udf, f"process_{method}", None)):
        msg = f"{type(udf).__name__}.get_method() returned {method!r}, which it does not implement"
        raise UDFDefinitionError(msg)
    return method
