"""The exceptions gpuudf raises on purpose.

Policy: every mistake a user can make is reported with one of these, as early
as it can be detected (at ``load`` for datasets, before any worker starts for
UDFs), and the message names the offending object and what would be accepted.
Each derives from the builtin a user would naturally catch for that kind of
mistake, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "DataSetError",
    "DeviceOutOfMemoryError",
    "UDFDefinitionError",
    "UDFRunCancelled",
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


class UDFRunCancelled(Exception):  # noqa: N818 - the name LiberTEM users know
    """A run was cancelled before it finished."""


class WorkerError(RuntimeError):
    """A worker failed outside the UDF's own code (for example, it died)."""


class BackendUnavailableError(RuntimeError):
    """No worker of the executor offers an array backend the run's UDFs accept."""


class DeviceOutOfMemoryError(MemoryError):
    """A partition does not fit the device's memory even with one-frame tiles."""
