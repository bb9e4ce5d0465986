"""The dataset kinds ``Context.load`` takes, and ``load`` itself.

Policy: every kind is one entry of :data:`DATASET_KINDS`, registered where
the package is put together (``gpuudf/datasets/__init__.py``); ``load`` and
the ``"auto"`` kind only look kinds up.  An entry says how to make the
dataset and, for a file format, how ``"auto"`` recognises a file of it (its
contents first, then its extensions), so a new format is added in one place.
Everything wrong with a ``load`` call is a :class:`~gpuudf.DataSetError`
raised here, before any dataset exists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

from gpuudf.datasets.dataset import DataSet
from gpuudf.errors import DataSetError
from gpuudf.registry import Registry

__all__ = ["DATASET_KINDS", "DataSetKind", "load"]


@dataclass(frozen=True)
class DataSetKind:
    """One kind of dataset: how to make it, and how ``load("auto", ...)`` recognises its files.

    Parameters
    ----------
    factory
        Called with ``load``'s arguments after the kind; returns the dataset.
    recognizes
        Whether the file at a (checked, resolved) path holds this format, from
        its contents; asked first, in the order the kinds were registered.
    suffixes
        Lower-case extensions (``".npy"``) read as this format when no kind
        recognises the contents.
    label
        How the ``"auto"`` kind's messages name the format (``"HDF5"``).
    """

    factory: Callable[..., DataSet]
    _: KW_ONLY
    recognizes: Callable[[Path], bool] | None = None
    suffixes: frozenset[str] = frozenset()
    label: str = ""

    @property
    def is_file_format(self) -> bool:
        """Whether ``"auto"`` can choose this kind for a file."""
        return self.recognizes is not None or bool(self.suffixes)


def _unknown_kind(kind: object, names: tuple[str, ...]) -> DataSetError:
    return DataSetError(f"unknown dataset kind {kind!r}; available: {', '.join(sorted(names))}")


#: Every kind ``load`` takes, by name.
DATASET_KINDS: Registry[DataSetKind] = Registry("dataset kind", _unknown_kind)


def load(kind: str, /, *args: Any, **kwargs: Any) -> DataSet:
    """Create a dataset of ``kind``; every problem is a :class:`DataSetError` here.

    Raises
    ------
    DataSetError
        Unknown kind (the message lists the registered ones), unknown
        argument, or data that does not fit.
    """
    factory = DATASET_KINDS.lookup(kind).factory
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as exc:
        msg = f"load({kind!r}): {exc}"
        raise DataSetError(msg) from None
    return factory(*args, **kwargs)
