"""Planning a run: the checks that need no data, made before any worker starts.

Policy: every check here raises the error a user would catch (see
:mod:`gpuudf.errors`), naming the UDF and what it should do instead; nothing
here reads a frame or talks to an executor.  The runner calls these for its
host copies, ``Context.display`` for the copy it describes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from gpuudf.binding import HOST, bind_host_params, meta_on
from gpuudf.buffers import BufferDeclaration
from gpuudf.datasets import DataSet
from gpuudf.errors import BackendUnavailableError, MissingMergeError, UDFDefinitionError
from gpuudf.udf import UDF

__all__ = [
    "KNOWN_ARRAY_BACKENDS",
    "check_backends",
    "check_merge",
    "check_udf_instance",
    "give_host_meta",
    "input_dtype_of",
    "negotiate_backends",
]

KNOWN_ARRAY_BACKENDS = ("numpy", "cupy")

#: Backend names of LiberTEM that gpuudf has no worker for (sparse arrays, NumPy on a GPU's
#: device class); a UDF listing them besides numpy or cupy runs on those.
_LIBERTEM_ONLY_BACKENDS = frozenset(
    {
        "cuda",
        "sparse.COO",
        "sparse.GCXS",
        "sparse.DOK",
        "scipy.sparse.coo_matrix",
        "scipy.sparse.csr_matrix",
        "scipy.sparse.csc_matrix",
        "scipy.sparse.coo_array",
        "scipy.sparse.csr_array",
        "scipy.sparse.csc_array",
        "cupyx.scipy.sparse.coo_matrix",
        "cupyx.scipy.sparse.csr_matrix",
        "cupyx.scipy.sparse.csc_matrix",
    }
)


def check_backends(name: str, backends: object) -> tuple[str, ...]:
    """The array backends ``name`` declares that gpuudf has workers for; one name is a tuple of it."""
    if isinstance(backends, str):
        backends = (backends,)  # LiberTEM accepts a single name
    if not isinstance(backends, Iterable):
        msg = f"{name} backends must be a tuple of names, got {backends!r}"
        raise UDFDefinitionError(msg)
    names = tuple(backends)
    unknown = [b for b in names if b not in KNOWN_ARRAY_BACKENDS and b not in _LIBERTEM_ONLY_BACKENDS]
    known = tuple(b for b in names if b in KNOWN_ARRAY_BACKENDS)
    if unknown or not known:
        msg = f"{name} names array backends {names}; known: {KNOWN_ARRAY_BACKENDS}"
        raise UDFDefinitionError(msg)
    return known


def check_udf_instance(udf: object) -> None:
    """Raise ``TypeError`` unless ``udf`` is a UDF instance (a class is the common slip)."""
    if isinstance(udf, type) and issubclass(udf, UDF):
        msg = f"expected a UDF instance, got the class {udf.__name__}: pass {udf.__name__}(...) instead"
        raise TypeError(msg)
    if not isinstance(udf, UDF):
        msg = f"{udf!r} is not a UDF instance (subclass gpuudf.UDF and pass an instance)"
        raise TypeError(msg)


def negotiate_backends(udfs: Sequence[UDF], allowed: Sequence[str] | None, offered: Sequence[str]) -> tuple[str, ...]:
    """Array backends every UDF accepts, the user allows and a worker offers."""
    common = list(check_backends(type(udfs[0]).__name__, udfs[0].get_backends()))
    for udf in udfs[1:]:
        theirs = check_backends(type(udf).__name__, udf.get_backends())
        common = [b for b in common if b in theirs]
    if not common:
        listing = ", ".join(f"{type(u).__name__}: {u.get_backends()}" for u in udfs)
        msg = f"the UDFs of this run share no array backend ({listing})"
        raise UDFDefinitionError(msg)
    if allowed is not None:
        allowed = check_backends("run_udf(backends=...)", allowed)
        common = [b for b in common if b in allowed]
        if not common:
            msg = f"backends={tuple(allowed)} excludes every backend the UDFs accept"
            raise UDFDefinitionError(msg)
    usable = tuple(b for b in common if b in offered)
    if not usable:
        need = " or ".join(common)
        msg = f"the run needs {need}, but the executor's workers offer only {tuple(offered)}" + (
            ": no usable CUDA GPU was found" if "cupy" in common else ""
        )
        raise BackendUnavailableError(msg)
    return usable


def input_dtype_of(udf: UDF, dataset: DataSet) -> np.dtype[Any]:
    """The dtype frames reach ``udf`` in: its preference and the data's, by ``numpy.result_type``."""
    preferred = udf.get_preferred_input_dtype()
    try:
        return np.result_type(preferred, dataset.dtype)
    except TypeError as exc:
        msg = f"{type(udf).__name__}.get_preferred_input_dtype() returned {preferred!r}: {exc}"
        raise UDFDefinitionError(msg) from None


def give_host_meta(udf: UDF, dataset: DataSet, roi: np.ndarray[Any, np.dtype[np.bool_]] | None) -> np.dtype[Any]:
    """Make a host copy of ``udf`` ready to declare its buffers for a run over ``dataset``.

    Gives it the host's ``meta`` and binds its parameters as on the host;
    ``UDFRun`` and ``Context.display`` both prepare their copies so.

    Parameters
    ----------
    udf
        A copy (``udf.copy()``), never the user's object.
    dataset
        The run's dataset.
    roi
        The flat mask of :func:`gpuudf.roi.normalize_roi`, or ``None``.

    Returns
    -------
    numpy.dtype
        The UDF's input dtype for this dataset.
    """
    input_dtype = input_dtype_of(udf, dataset)
    udf.meta = meta_on(HOST, dataset, input_dtype, roi)
    bind_host_params(udf, dataset.shape, roi)
    return input_dtype


def check_merge(udf: UDF, declarations: Mapping[str, BufferDeclaration]) -> None:
    """Raise :class:`MissingMergeError` for ``sig``/``single`` buffers without a ``merge`` of the UDF's own."""
    if type(udf).merge is not UDF.merge:
        return
    needing = [n for n, d in declarations.items() if d.allocated_on_workers and d.kind != "nav"]
    if needing:
        msg = (
            f"{type(udf).__name__} has {'/'.join(sorted({declarations[n].kind for n in needing}))} "
            f"buffers ({', '.join(needing)}) but no merge(self, dest, src): only nav buffers "
            "merge by default; define how two partial results combine"
        )
        raise MissingMergeError(msg)
