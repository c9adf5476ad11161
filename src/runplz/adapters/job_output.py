"""`JobOutput` adapters: this process's stdout, and a recording fake."""

from __future__ import annotations

import sys
from typing import BinaryIO

from ..ports.log_sink import LogSink


class StdoutJobOutput:
    def __init__(self, stream: BinaryIO | None = None, log: LogSink | None = None) -> None:
        self._stream = stream
        self._log = log

    def write(self, chunk: bytes) -> None:
        if self._log is not None:
            self._log.record("job", chunk)
        stream = self._stream or sys.stdout.buffer
        try:
            stream.write(chunk)
            stream.flush()
        except (OSError, ValueError):
            pass


class RecordingJobOutput:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.chunks.append(bytes(chunk))

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)
