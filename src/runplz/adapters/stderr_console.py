"""`Console` that writes to stderr, apart from the job's stdout."""

from __future__ import annotations

import sys
from typing import TextIO

from ..ports.log_sink import LogSink


class StderrConsole:
    """``quiet`` shows only warnings; the driver ``log`` gets every message either way."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, log: LogSink | None = None) -> None:
        self._stream = stream
        self._quiet = quiet
        self._log = log

    def _record(self, text: str) -> None:
        if self._log is not None:
            self._log.record("runplz", (text if text.endswith("\n") else text + "\n").encode("utf-8", "replace"))

    def _write(self, text: str) -> None:
        self._record(text)
        stream = self._stream or sys.stderr
        try:
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    def info(self, message: str) -> None:
        if self._quiet:
            self._record(f"runplz: {message}")
        else:
            self._write(f"runplz: {message}")

    def warn(self, message: str) -> None:
        self._write(f"runplz: warning: {message}")

    def output(self, line: str) -> None:
        if self._quiet:
            self._record(f"  | {line}")
        else:
            self._write(f"  | {line}")
