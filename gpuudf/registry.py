"""Registries: the names a user may pass for a choice (a dataset kind, an executor), each with its entry.

Policy: a choice that code elsewhere makes by name is looked up in a
:class:`Registry`, never in an ``if``/``elif`` chain, so adding a kind of
dataset or executor is one ``register`` call where that kind is written.  A
name nobody registered is an error that lists the registered names; the
owner of each registry words that error (and picks its exception class), so
that its users see the message they always saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry", "UnknownName"]

EntryT = TypeVar("EntryT")

#: Makes the error for a name nobody registered, from that name and the registered names (in order).
UnknownName = Callable[[object, tuple[str, ...]], Exception]


class Registry(Generic[EntryT]):
    """Entries by name, in the order they were registered.

    Parameters
    ----------
    what
        What a name names (``"dataset kind"``, ``"executor"``), for the
        errors of :meth:`register` and :meth:`unregister`.
    unknown
        Makes the error :meth:`lookup` raises for a name nobody registered.

    Examples
    --------
    >>> colours = Registry("colour", lambda name, names: ValueError(f"no colour {name!r}; known: {names}"))
    >>> colours.register("red", 0xFF0000)
    >>> colours.lookup("red") == 0xFF0000, colours.names()
    (True, ('red',))
    """

    def __init__(self, what: str, unknown: UnknownName) -> None:
        self._what = what
        self._unknown = unknown
        self._entries: dict[str, EntryT] = {}

    def register(self, name: str, entry: EntryT) -> None:
        """Make ``name`` mean ``entry``.

        Raises
        ------
        ValueError
            For a name that is not a non-empty string, or one registered already
            (:meth:`unregister` it first to replace it).
        """
        if not isinstance(name, str) or not name:
            msg = f"a {self._what} is registered under a non-empty string, got {name!r}"
            raise ValueError(msg)
        if name in self._entries:
            msg = f"{self._what} {name!r} is registered already; unregister it first to replace it"
            raise ValueError(msg)
        self._entries[name] = entry

    def unregister(self, name: str) -> None:
        """Forget ``name``.

        Raises
        ------
        ValueError
            For a name that is not registered.
        """
        if name not in self._entries:
            msg = f"{self._what} {name!r} is not registered; registered: {', '.join(self._entries)}"
            raise ValueError(msg)
        del self._entries[name]

    def lookup(self, name: object) -> EntryT:
        """The entry registered under ``name``; anything else raises the owner's error listing the names."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        raise self._unknown(name, self.names())

    def names(self) -> tuple[str, ...]:
        """The registered names, in the order they were registered."""
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, EntryT], ...]:
        """``(name, entry)`` pairs, in the order they were registered."""
        return tuple(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<{self._what} registry: {', '.join(self._entries) or 'empty'}>"
