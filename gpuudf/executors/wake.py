"""A wake-up call for a thread that waits on worker connections.

Policy: one socket pair per executor.  :meth:`Waker.wake` writes a byte
from any thread, without blocking (a full buffer means a wake-up is already
pending); the waiting thread includes the waker's receiving end among the objects it waits
on (``multiprocessing.connection.wait`` takes sockets)
and drains it when it wakes.  Waking a closed waker does nothing.
"""

from __future__ import annotations

import contextlib
import socket

__all__ = ["Waker"]


class Waker:
    """Wakes ``multiprocessing.connection.wait`` from another thread."""

    def __init__(self) -> None:
        self._receiver, self._sender = socket.socketpair()
        self._receiver.settimeout(0.0)  # non-blocking
        self._sender.settimeout(0.0)

    @property
    def receiver(self) -> socket.socket:
        """The end to wait on."""
        return self._receiver

    def wake(self) -> None:
        """Make the waiting thread return from its wait (callable from any thread)."""
        with contextlib.suppress(OSError):  # BlockingIOError: already pending; OSError: closed
            self._sender.send(b"\0")

    def drain(self) -> None:
        """Take every pending wake-up, so that the next wait blocks again."""
        with contextlib.suppress(OSError):
            while self._receiver.recv(4096):
                pass

    def close(self) -> None:
        """Close both ends."""
        self._sender.close()
        self._receiver.close()
