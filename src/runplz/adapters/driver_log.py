"""`LogSink` over a file: the driver log of a run (``--log-file``, ``--no-log-file``)."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

_EARLY_LIMIT = 4 << 20  # bytes kept in memory before a log file is chosen
_LONGEST = 8 << 10  # a line that never ends is written out in pieces this long


def stamp(now: float) -> str:
    """UTC, to the millisecond: 2026-11-29T09:40:01.123Z."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{whole}.{int(now * 1000) % 1000:03d}Z"


class DriverLog:
    """Whole, stamped lines appended to one file; ``attach`` chooses (or changes) it.

    ``enabled=False`` (``--no-log-file``) keeps nothing. A file that cannot be
    written turns the log off with one warning through ``on_error``, never an
    error in the run.
    """

    def __init__(self, enabled: bool = True, now: Callable[[], float] = time.time) -> None:
        self._enabled = enabled
        self._now = now
        self._lock = threading.Lock()
        self._partial: dict[str, bytearray] = {}
        self._early: list[bytes] = []
        self._early_size = 0
        self._path: str | None = None
        self._pinned = False
        self.on_error: Callable[[str], None] = lambda message: None

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def enabled(self) -> bool:
        return self._enabled

    def pin(self, path: str) -> None:
        """Write to ``path`` for the rest of the invocation; later ``attach`` calls are ignored."""
        self.attach(path)
        self._pinned = self._path is not None

    def attach(self, path: str) -> None:
        """Write to ``path`` from now on (appending), after any lines kept so far."""
        if not self._enabled or self._pinned:
            return
        with self._lock:
            if self._path == os.path.abspath(path):
                return
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            except OSError as exc:
                self._enabled = False
                self.on_error(f"no driver log: {path}: {exc.strerror or exc}")
                return
            self._path = os.path.abspath(path)
            early, self._early, self._early_size = self._early, [], 0
            self._write(b"".join(early))

    def planned(self, path: str) -> str:
        """The file a run's lines will go to if ``attach(path)`` is called: "" with
        no log, the pinned file when there is one, else ``path``."""
        if not self._enabled:
            return ""
        return self._path if self._pinned and self._path else os.path.abspath(path)

    def record(self, source: str, data: bytes) -> None:
        """A lone carriage return (a progress bar redrawing) ends a line too."""
        if not self._enabled or not data:
            return
        with self._lock:
            pending = self._partial.setdefault(source, bytearray())
            lines = []
            cut = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for piece in cut[:-1]:
                pending += piece
                lines.append(bytes(pending))
                pending.clear()
            pending += cut[-1]
            while len(pending) > _LONGEST:
                lines.append(bytes(pending[:_LONGEST]))
                del pending[:_LONGEST]
            if lines:
                prefix = f"{stamp(self._now())} [{source}] ".encode()
                self._emit(b"".join(prefix + line + b"\n" for line in lines if line))

    def flush(self) -> None:
        """Write out partial lines (as lines) at the end of a run."""
        with self._lock:
            partial, self._partial = self._partial, {}
            for source, rest in partial.items():
                if rest:
                    self._emit(f"{stamp(self._now())} [{source}] ".encode() + bytes(rest) + b"\n")

    def close(self) -> None:
        """Write out partial lines; nothing stays open between writes anyway."""
        self.flush()

    def _emit(self, data: bytes) -> None:
        if self._path is None:
            if self._early_size + len(data) <= _EARLY_LIMIT:
                self._early.append(data)
                self._early_size += len(data)
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        """Append ``data``, opening the file for this write only (no descriptor
        is held between runs, or by a library that embeds runplz)."""
        if not data or self._path is None:
            return
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as exc:
            self._enabled = False
            self.on_error(f"the driver log stopped: {self._path}: {exc.strerror or exc}")
