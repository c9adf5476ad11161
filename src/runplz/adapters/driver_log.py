"""`LogSink` over a file: the driver log of a run (``--log-file``, ``--no-log-file``)."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

_EARLY_LIMIT = 4 << 20  # bytes kept in memory before a log file is chosen


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
        self._partial: dict[str, bytes] = {}
        self._early: list[bytes] = []
        self._early_size = 0
        self._handle = None
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
            self._close()
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._handle = os.fdopen(fd, "ab", buffering=0)
            except OSError as exc:
                self._enabled = False
                self.on_error(f"no driver log: {path}: {exc.strerror or exc}")
                return
            self._path = os.path.abspath(path)
            early, self._early, self._early_size = self._early, [], 0
            self._write(b"".join(early))

    def record(self, source: str, data: bytes) -> None:
        if not self._enabled or not data:
            return
        with self._lock:
            text = self._partial.pop(source, b"") + data
            *lines, rest = text.split(b"\n")
            if rest:
                self._partial[source] = rest
            if lines:
                prefix = f"{stamp(self._now())} [{source}] ".encode()
                self._emit(b"".join(prefix + line.rstrip(b"\r") + b"\n" for line in lines))

    def flush(self) -> None:
        """Write out partial lines (as lines) at the end of a run."""
        with self._lock:
            partial, self._partial = self._partial, {}
            for source, rest in partial.items():
                self._emit(f"{stamp(self._now())} [{source}] ".encode() + rest + b"\n")

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._close()

    def _emit(self, data: bytes) -> None:
        if self._handle is None:
            if self._early_size + len(data) <= _EARLY_LIMIT:
                self._early.append(data)
                self._early_size += len(data)
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        if not data or self._handle is None:
            return
        try:
            self._handle.write(data)
        except OSError as exc:
            self._close()
            self._enabled = False
            self.on_error(f"the driver log stopped: {self._path}: {exc.strerror or exc}")

    def _close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.close()
            except OSError:
                pass
        self._handle = None
