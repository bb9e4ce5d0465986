"""What worker processes print, forwarded to the main process's own streams.

Policy
------
- A worker's standard output and error are pipes to the main process (file
  descriptors 1 and 2, so output of C libraries and of the worker's threads
  comes too).  The worker writes them line-buffered and flushes both before
  it answers a task, so everything a task printed is in the pipes before its
  answer is sent.
- The main process reads the pipes in one forwarding thread per executor,
  never blocking a worker on a main process that is busy merging or between
  runs, and writes each complete line to *its own* ``sys.stdout`` or
  ``sys.stderr`` as they are at the moment of writing: in a terminal the
  terminal, under pytest the capture, in a Jupyter kernel the output of the
  cell that runs.  Lines keep their order per worker and stream; the lines
  of different workers, and a worker's stdout and stderr, interleave as they
  arrive.  Nothing is prefixed: a UDF's ``print`` looks like a ``print``.
- Before a task's answer is handed to the run, the thread that runs it reads
  what that worker has written so far (:meth:`WorkerOutput.drain`), so a
  task's lines come before its result; at the end of a run every pipe is
  read to its current end, an unfinished last line included
  (:meth:`WorkerOutput.end_run`).  Output between runs is written by the
  forwarding thread as it arrives.
- Rate limit: a token bucket of :data:`BURST_LINES` lines, refilled at
  :data:`LINES_PER_S` a second and full again at the end of every run, shared
  by all workers and both streams.  Beyond it lines are dropped, and one line
  ``gpuudf: N lines of worker output dropped`` goes to ``sys.stderr`` at the
  end of the run (or at :meth:`WorkerOutput.close`).  A notebook shows the
  first few thousand lines of a run in full, and a UDF that prints per frame
  of a million-frame scan does not flood it.
- Output without an end of line is held until its line ends, up to
  :data:`MAX_LINE_BYTES`: beyond that it is forwarded in pieces of that size.
- Limits of the scheme: a C library's own buffered ``printf`` output is
  flushed by the C library, not by the worker, so it may come late.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

__all__ = ["BURST_LINES", "LINES_PER_S", "MAX_LINE_BYTES", "RateLimit", "WorkerOutput"]

#: Lines a run may forward at once, before the rate applies (read when a :class:`WorkerOutput` is made).
BURST_LINES = 5000
#: Lines a second forwarded once the burst is spent (read when a :class:`WorkerOutput` is made).
LINES_PER_S = 1000.0
#: Most of an unfinished line held back; beyond it the line is forwarded in pieces of this size.
MAX_LINE_BYTES = 64 * 1024

# one pipe read; a drain reads at most _DRAIN_READS of them per stream, so a
# worker that prints without pause cannot keep the run's thread reading forever
_READ_BYTES = 64 * 1024
_DRAIN_READS = 16
# a thread stuck writing to a blocked stream of ours must not hang close()
_JOIN_TIMEOUT_S = 5.0


class RateLimit:
    """A token bucket counted in lines.

    Parameters
    ----------
    lines_per_s
        Lines a second that the bucket refills.
    burst_lines
        Lines it holds when full.
    """

    def __init__(self, lines_per_s: float, burst_lines: int) -> None:
        self.lines_per_s = lines_per_s
        self.burst_lines = burst_lines
        self._tokens = float(burst_lines)
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Whether one more line may pass at time ``now`` (seconds, monotonic); takes its token if so."""
        if self._last is not None:
            self._tokens = min(float(self.burst_lines), self._tokens + (now - self._last) * self.lines_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def refill(self) -> None:
        """Full again."""
        self._tokens = float(self.burst_lines)
        self._last = None


@dataclass(eq=False)
class _Stream:
    """One pipe of one worker, and the start of a line not finished yet."""

    pid: int
    pipe: IO[bytes]
    target: str  # "stdout" or "stderr": the main process's stream its lines go to
    partial: bytearray = field(default_factory=bytearray)
    at_eof: bool = False


class WorkerOutput:
    """Forwards the standard output and error of worker processes to this process's streams.

    Parameters
    ----------
    lines_per_s
        Rate limit once the burst is spent; :data:`LINES_PER_S` by default.
    burst_lines
        Lines forwarded at once per run; :data:`BURST_LINES` by default.
    """

    def __init__(self, lines_per_s: float | None = None, burst_lines: int | None = None) -> None:
        self.limit = RateLimit(
            LINES_PER_S if lines_per_s is None else lines_per_s, BURST_LINES if burst_lines is None else burst_lines
        )
        self.dropped = 0
        self._streams: list[_Stream] = []
        # one lock for the pipes, the bucket and the writes: a line is written once, in order
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # a pipe that wakes the thread from its wait
        self._closing = False

    def watch(self, process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Forward what ``process`` writes to its ``stdout`` and ``stderr`` pipes; returns ``process``."""
        with self._lock:
            for pipe, target in ((process.stdout, "stdout"), (process.stderr, "stderr")):
                if pipe is None:
                    continue
                os.set_blocking(pipe.fileno(), False)  # our end only: the worker's writes still block
                self._streams.append(_Stream(process.pid, pipe, target))
            if self._wake is None:
                self._wake = os.pipe()
                for fd in self._wake:
                    os.set_blocking(fd, False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._forward, name="gpuudf-worker-output", daemon=True)
                self._thread.start()
            else:
                self._wake_thread()  # it waits on the pipes it knew: show it the new ones
        return process

    def drain(self, pid: int) -> None:
        """Write the complete lines the worker ``pid`` has written so far, in the calling thread."""
        with self._lock:
            for stream in self._streams:
                if stream.pid == pid:
                    self._read(stream, reads=_DRAIN_READS)

    def end_run(self) -> None:
        """Write everything the workers have written so far, report dropped lines, fill the bucket again."""
        with self._lock:
            for stream in self._streams:
                self._read(stream, reads=_DRAIN_READS)
                self._finish_line(stream)
            self._report_dropped()
            self.limit.refill()

    def close(self) -> None:
        """Forward what is left, close the pipes and stop the thread.

        Call it once the watched processes have ended: what they wrote until
        then is forwarded, and the pipes are closed.
        """
        with self._lock:
            self._closing = True
            thread = self._thread
            if thread is not None:
                self._wake_thread()
        if thread is not None:
            thread.join(timeout=_JOIN_TIMEOUT_S)  # it forwards what is left and closes the pipes
        with self._lock:
            self._close_streams()
            self._report_dropped()
            if self._thread is None and self._wake is not None:
                for fd in self._wake:
                    os.close(fd)
                self._wake = None

    # -- the forwarding thread -------------------------------------------------------
    def _forward(self) -> None:
        from multiprocessing.connection import wait  # noqa: PLC0415 - selectors, fresh for each wait

        while True:
            with self._lock:
                if self._closing:
                    self._close_streams()
                for stream in [s for s in self._streams if s.at_eof]:
                    self._finish_line(stream)
                    _close_pipe(stream)
                    self._streams.remove(stream)
                if not self._streams:
                    self._thread = None  # the next watch() starts another
                    return
                assert self._wake is not None
                wake = self._wake[0]
                fds = {stream.pipe.fileno(): stream for stream in self._streams}
            try:
                ready = wait([*fds, wake])
            except OSError:  # a pipe closed behind our back: forget it, or the wait would fail again at once
                with self._lock:
                    for stream in self._streams:
                        try:
                            os.fstat(stream.pipe.fileno())
                        except (OSError, ValueError):
                            stream.at_eof = True
                continue
            with self._lock:
                if wake in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake, 4096)
                for fd, stream in fds.items():
                    if fd in ready and stream in self._streams:
                        self._read(stream, reads=1)

    # -- under the lock ----------------------------------------------------------------
    def _wake_thread(self) -> None:
        assert self._wake is not None
        with contextlib.suppress(BlockingIOError):  # full: the thread has wake-ups waiting already
            os.write(self._wake[1], b"x")

    def _close_streams(self) -> None:
        for stream in self._streams:
            self._read(stream, reads=_DRAIN_READS)
            self._finish_line(stream)
            _close_pipe(stream)
        self._streams.clear()

    def _read(self, stream: _Stream, reads: int) -> None:
        if stream.at_eof:
            return
        for _ in range(reads):
            try:
                chunk = os.read(stream.pipe.fileno(), _READ_BYTES)
            except BlockingIOError:
                return
            except OSError:  # the pipe is gone with its process: nothing more will come
                chunk = b""
            if not chunk:
                stream.at_eof = True
                return
            stream.partial += chunk
            lines = stream.partial.split(b"\n")
            stream.partial = bytearray(lines.pop())
            while len(stream.partial) > MAX_LINE_BYTES:
                lines.append(stream.partial[:MAX_LINE_BYTES])
                del stream.partial[:MAX_LINE_BYTES]
            self._write(stream.target, lines)

    def _finish_line(self, stream: _Stream) -> None:
        if stream.partial:
            self._write(stream.target, [stream.partial])
            stream.partial.clear()

    def _write(self, target: str, lines: list[bytearray]) -> None:
        now = time.monotonic()
        passed = [line for line in lines if self.limit.allow(now)]
        self.dropped += len(lines) - len(passed)
        if passed:
            text = b"\n".join(passed).decode(errors="replace") + "\n"
            _write_text(target, text)

    def _report_dropped(self) -> None:
        if self.dropped:
            noun = "line" if self.dropped == 1 else "lines"
            _write_text(
                "stderr",
                f"gpuudf: {self.dropped} {noun} of worker output dropped (more than {self.limit.burst_lines} "
                f"lines a run, then {self.limit.lines_per_s:g} a second)\n",
            )
            self.dropped = 0


def _close_pipe(stream: _Stream) -> None:
    with contextlib.suppress(OSError):  # its descriptor closed behind our back already
        stream.pipe.close()


def _write_text(target: str, text: str) -> None:
    stream = getattr(sys, target)
    if stream is None:  # no console (pythonw, some services): nowhere to show it
        return
    try:
        stream.write(text)
        stream.flush()
    except Exception:  # noqa: BLE001, S110 - a closed or odd stream of ours must not stop the forwarding,
        pass  # or the workers would block on their full pipes
