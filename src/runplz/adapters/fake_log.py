"""A `LogSink` in memory, for tests: ``lines`` holds (source, line) pairs."""

from __future__ import annotations


class MemoryLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._partial: dict[str, bytes] = {}
        self.path: str | None = None
        self.pinned = False

    def planned(self, path: str) -> str:
        return self.path if self.pinned and self.path else path

    def attach(self, path: str) -> None:
        if not self.pinned:
            self.path = path

    def pin(self, path: str) -> None:
        self.path, self.pinned = path, True

    def flush(self) -> None:
        partial, self._partial = self._partial, {}
        self.lines += [(source, rest.decode("utf-8", "replace")) for source, rest in partial.items()]

    def record(self, source: str, data: bytes) -> None:
        text = (self._partial.pop(source, b"") + data).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = text.split(b"\n")
        if rest:
            self._partial[source] = rest
        self.lines += [(source, line.rstrip(b"\r").decode("utf-8", "replace")) for line in lines]

    def text(self, source: str | None = None) -> str:
        return "".join(f"{line}\n" for where, line in self.lines if source is None or where == source)
