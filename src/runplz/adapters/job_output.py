"""`JobOutput` adapters: this process's stdout, and a recording fake."""

from __future__ import annotations

import sys
from typing import BinaryIO

from ..ports.log_sink import LogSink
from .terminal import Terminal, shared_terminal


class StdoutJobOutput:
    """The job's output to ``stream`` (default: stdout), through ``terminal``
    (default: the shared one), which takes runplz's status line away first
    when both are the terminal."""

    def __init__(
        self, stream: BinaryIO | None = None, log: LogSink | None = None, terminal: Terminal | None = None
    ) -> None:
        self._stream = stream
        self._log = log
        self._terminal = terminal or shared_terminal()

    def write(self, chunk: bytes) -> None:
        if self._log is not None:
            self._log.record("job", chunk)
        self._terminal.write(self._stream or sys.stdout.buffer, bytes(chunk))


class RecordingJobOutput:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.chunks.append(bytes(chunk))

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)
