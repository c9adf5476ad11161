"""A `Console` that records what it was told."""

from __future__ import annotations


class RecordingConsole:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.events.append(("info", message))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))

    def output(self, line: str) -> None:
        self.events.append(("output", line))

    def progress(self, message: str) -> None:
        """A passing status line ("" takes it away); kept apart from the lasting messages."""
        self.events.append(("progress", message))

    def _of(self, kind: str) -> list[str]:
        return [message for k, message in self.events if k == kind]

    @property
    def infos(self) -> list[str]:
        return self._of("info")

    @property
    def warnings(self) -> list[str]:
        return self._of("warn")

    @property
    def outputs(self) -> list[str]:
        return self._of("output")

    @property
    def progresses(self) -> list[str]:
        return self._of("progress")
