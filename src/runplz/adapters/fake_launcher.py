"""A `Launcher` that starts nothing: it records each ``--detach`` and answers as told."""

from __future__ import annotations

from typing import Sequence

from ..ports.launcher import Detached


class FakeLauncher:
    """``answer`` is what every start returns; ``started`` lists (args, cwd)."""

    def __init__(self, answer: Detached | None = None) -> None:
        self.answer = answer or Detached("20260101-000000-fa4e00", None, "", "runplz: run 20260101-000000-fa4e00\n", 4242)
        self.started: list[tuple[tuple[str, ...], str]] = []

    def start(self, args: Sequence[str], cwd: str, wait_seconds: float = 600.0) -> Detached:
        self.started.append((tuple(args), cwd))
        return self.answer
