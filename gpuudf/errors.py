"""The exceptions gpuudf raises on purpose.

Policy: every mistake a user can make is reported with one of these, as early
as it can be detected (at ``load`` for datasets, before any worker starts for
UDFs), and the message names the offending object and what would be accepted.
Each derives from the builtin a user would naturally catch for that kind of
mistake, so ``except ValueError`` keeps working.  Where LiberTEM raises a
different builtin for the same mistake, the class derives from that one too,
so the ``except`` clauses of code ported from LiberTEM keep working as well.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "DataSetError",
    "DeviceOutOfMemoryError",
    "ExecutorSpecException",
    "InvalidMaskError",
    "MissingMergeError",
    "MissingProcessMethodError",
    "UDFDefinitionError",
    "UDFException",
    "UDFRunCancelled",
    "UndeclaredBufferError",
    "UnpicklableParameterError",
    "UseDiscouragedWarning",
    "WorkerError",
]


class DataSetError(ValueError):
    """A dataset cannot be loaded as described (path, shape, dtype, kind)."""


class UDFDefinitionError(ValueError):
    """A UDF class or instance breaks the UDF contract.

    Raised at the start of a run, before any frame is read: an invalid buffer
    declaration, a missing process method, a missing ``merge``, a constructor
    that cannot re-create the UDF, an undeclared result name.
    """


#: LiberTEM's name for misuse of the UDF interface.
UDFException = UDFDefinitionError


class MissingMergeError(UDFDefinitionError, NotImplementedError):
    """A UDF has ``sig`` or ``single`` buffers but no ``merge`` (LiberTEM: ``NotImplementedError``)."""


class MissingProcessMethodError(UDFDefinitionError, TypeError):
    """A UDF implements no ``process_*`` method (LiberTEM: ``TypeError``)."""


class UndeclaredBufferError(UDFDefinitionError, KeyError):
    """``get_results`` returned a name that is not a declared buffer (``KeyError`` too)."""

    def __str__(self) -> str:
        # KeyError's own __str__ would print the message as a quoted repr
        return Exception.__str__(self)


class UnpicklableParameterError(UDFDefinitionError, TypeError):
    """A UDF parameter cannot travel to worker processes (pickle's ``TypeError`` too)."""


class InvalidMaskError(ValueError):
    """A valid mask given with ``UDF.with_mask`` does not fit its data (shape or dtype)."""


class ExecutorSpecException(ValueError):  # noqa: N818 - the name LiberTEM users know
    """``Context.make_with`` was given an executor it does not know, or arguments it does not take."""


class UDFRunCancelled(Exception):  # noqa: N818 - the name LiberTEM users know
    """A run was cancelled before it finished."""


class WorkerError(RuntimeError):
    """A worker failed outside the UDF's own code (for example, it died)."""


class BackendUnavailableError(RuntimeError):
    """No worker of the executor offers an array backend the run's UDFs accept."""


class DeviceOutOfMemoryError(MemoryError):
    """A partition does not fit the device's memory even with one-frame tiles."""


class UseDiscouragedWarning(FutureWarning):
    """Something works but is discouraged, as in LiberTEM (``results["name"]`` instead of ``results.name``)."""
