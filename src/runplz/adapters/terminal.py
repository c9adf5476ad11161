"""The terminal runplz writes to, shared by everything that writes there.

On a terminal (stderr is a TTY and ``TERM`` is not "dumb") runplz shows one
passing status line, "runplz: upload…", redrawn in place with how long it has
been up ("runplz: upload… 3s", at most once a second) until the next line
replaces it. Everything else written to the terminal (runplz's own lines, a
tool's output, the job's output) goes through the same `Terminal`, which first
erases the status line, so nothing is garbled; from then on the status line is
not redrawn (it could be in the middle of someone else's line) until the next
one is set. Elsewhere (a pipe, a file) there is no status line, and lines are
written as they are, with no control codes.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from typing import Any

from ..ports.clock import Clock
from .system_clock import SystemClock

CLEAR = "\r\x1b[K"  # back to the start of the line, erase it
ELLIPSIS = "\u2026"


def elapsed(seconds: int) -> str:
    """3s, 59s, 1m05s, 2h03m."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _write_plain(stream: Any, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _write_bytes(stream: Any, data: bytes) -> None:
    """``data`` to a text stream (through its buffer where it has one) or a binary one."""
    try:
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            stream.flush()
            binary.write(data)
            binary.flush()
        elif isinstance(stream, io.TextIOBase):
            stream.write(data.decode("utf-8", "replace"))
            stream.flush()
        else:
            stream.write(data)
            stream.flush()
    except (OSError, ValueError):
        pass


class Terminal:
    """One terminal's state: the status line shown on it, if any, and whether
    its cursor is at the start of a line.

    ``stream``: where runplz's lines go (default: ``sys.stderr`` at each
    write); ``term``: the terminal type (default: ``$TERM``); ``clock`` times
    the status line; ``ticker=False`` never starts the thread that redraws it
    (call `tick` yourself). Thread-safe: every write holds one lock.
    """

    def __init__(
        self, stream: Any = None, term: str | None = None, clock: Clock | None = None, ticker: bool = True
    ) -> None:
        self._stream = stream
        self._term = term
        self._clock = clock or SystemClock()
        self._ticker = ticker
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._status: str | None = None  # the status line's text while it is on the screen
        self._since = 0.0
        self._shown = 0  # the whole seconds it shows
        self._fresh = True  # the cursor is at the start of a line, as far as we know
        self._thread: threading.Thread | None = None

    @property
    def stream(self) -> Any:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def live(self) -> bool:
        """Whether status lines show: the stream is a TTY (with the default
        stream, stdout too) and TERM is not "dumb"."""
        return self._live(self.stream)

    def _live(self, stream: Any) -> bool:
        term = self._term if self._term is not None else os.environ.get("TERM", "")
        # With the default stream, the job's output (stdout) must be on the
        # terminal too: piped (`runplz ... | tee log`) it would reach the screen
        # without runplz seeing it, after a status line nobody took away.
        shared = self._stream is not None or _isatty(sys.stdout)
        return term != "dumb" and _isatty(stream) and shared

    def line(self, text: str) -> None:
        """Show ``text`` (one or more lines) for good, in place of the status line."""
        text = text if text.endswith("\n") else text + "\n"
        with self._lock:
            stream = self.stream
            if not self._live(stream):
                _write_plain(stream, text)
                return
            lead = self._erase() or ("" if self._fresh else "\n")
            self._put(stream, lead + text)
            self._fresh = True

    def status(self, text: str) -> None:
        """Show ``text`` as the status line ("" takes it away). Nothing happens
        where status lines do not show."""
        with self._lock:
            stream = self.stream
            if not self._live(stream):
                self._status = None
                return
            if not text:
                self._put(stream, self._erase())
                return
            lead = CLEAR if self._status is not None else ("" if self._fresh else "\n")
            self._status, self._since, self._shown = text, self._clock.monotonic(), 0
            self._fresh = True  # erasing it leaves the cursor at the start of a line
            self._put(stream, lead + self._fit(stream, text))
            self._start_ticker()
            self._wake.notify_all()

    def write(self, target: Any, data: bytes) -> None:
        """Someone else's output (a tool's, the job's) to ``target`` (a text or
        binary stream): the status line goes first when ``target`` is a terminal too."""
        if not data or not _isatty(target):  # not the terminal: nothing to wait for (a slow pipe holds up no one)
            _write_bytes(target, data)
            return
        with self._lock:
            stream = self.stream
            shared = self._live(stream)
            if shared:
                self._put(stream, self._erase())
            _write_bytes(target, data)
            if shared:
                self._fresh = data.endswith(b"\n")

    def release(self) -> None:
        """A program is about to write to the terminal itself: take the status line away."""
        with self._lock:
            stream = self.stream
            if self._live(stream):
                self._put(stream, self._erase())
            self._fresh = True  # what it leaves is out of sight; most programs end their lines

    def tick(self) -> None:
        """Redraw the status line with how long it has been up, when that reached
        another whole second (so at most once a second)."""
        with self._lock:
            if self._status is None:
                return
            seconds = int(self._clock.monotonic() - self._since)
            stream = self.stream
            if seconds < 1 or seconds == self._shown or not self._live(stream):
                return
            self._shown = seconds
            self._put(stream, CLEAR + self._fit(stream, f"{self._status} {elapsed(seconds)}"))

    # ------------------------------------------------------------------ inside

    def _erase(self) -> str:
        if self._status is None:
            return ""
        self._status = None
        return CLEAR

    def _fit(self, stream: Any, text: str) -> str:
        """One screen line (a wrapped line would not be erased whole), in characters the terminal takes."""
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            text.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            text = text.replace(ELLIPSIS, "...")
        try:
            width = os.get_terminal_size(stream.fileno()).columns or 80  # 0: the terminal does not say
        except (AttributeError, OSError, ValueError):
            width = 80
        return text[: max(width - 1, 10)]

    def _put(self, stream: Any, text: str) -> None:
        """Straight to the terminal's file descriptor (a stream that copies to the
        driver log, as while the modal client runs, never sees status lines)."""
        if not text:
            return
        try:
            stream.flush()
            data = memoryview(text.encode(getattr(stream, "encoding", None) or "utf-8", "backslashreplace"))
            fd = stream.fileno()
            while data:
                data = data[os.write(fd, data):]
        except (AttributeError, OSError, ValueError, LookupError):
            pass

    def _start_ticker(self) -> None:
        if not self._ticker or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._tick_on, name="runplz-status", daemon=True)
        self._thread.start()

    def _tick_on(self) -> None:
        with self._wake:
            while True:
                if self._status is None:
                    self._wake.wait()
                    continue
                up = self._clock.monotonic() - self._since
                self._wake.wait(timeout=max(0.05, 1.0 - up % 1.0 + 0.01))
                self.tick()


_shared: Terminal | None = None
_shared_lock = threading.Lock()


def shared_terminal() -> Terminal:
    """This process's terminal (stderr, whatever ``sys.stderr`` is at each write)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Terminal()
        return _shared
