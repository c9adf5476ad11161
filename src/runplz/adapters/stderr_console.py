"""`Console` that writes to stderr, apart from the job's stdout."""

from __future__ import annotations

from typing import TextIO

from ..ports.log_sink import LogSink
from .terminal import Terminal, shared_terminal


class StderrConsole:
    """``quiet`` shows only warnings (and no status line); the driver ``log``
    gets every message either way, and never a status line.

    Writes go through ``terminal`` (default: this process's shared one, or one
    of its own over ``stream`` when a stream is given), which on a terminal
    shows `progress` as a line updated in place and erases it before anything
    else is written.
    """

    def __init__(
        self, stream: TextIO | None = None, quiet: bool = False, log: LogSink | None = None,
        terminal: Terminal | None = None,
    ) -> None:
        if terminal is None:
            terminal = Terminal(stream) if stream is not None else shared_terminal()
        self._terminal = terminal
        self._quiet = quiet
        self._log = log

    def _record(self, text: str) -> None:
        if self._log is not None:
            self._log.record("runplz", (text if text.endswith("\n") else text + "\n").encode("utf-8", "replace"))

    def _write(self, text: str) -> None:
        self._record(text)
        self._terminal.line(text)

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

    def progress(self, message: str) -> None:
        if not self._quiet or not message:
            self._terminal.status(f"runplz: {message}" if message else "")
