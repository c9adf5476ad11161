"""`Console` that writes to stderr, apart from the job's stdout."""

from __future__ import annotations

import sys
from typing import TextIO


class StderrConsole:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream = stream
        self._quiet = quiet

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        try:
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    def info(self, message: str) -> None:
        if not self._quiet:
            self._write(f"runplz: {message}")

    def warn(self, message: str) -> None:
        self._write(f"runplz: warning: {message}")

    def output(self, line: str) -> None:
        if not self._quiet:
            self._write(f"  | {line}")
