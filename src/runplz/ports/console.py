"""Port: what runplz tells the person at the terminal."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Console(Protocol):
    """Progress, warnings and tool output, kept apart from the job's own output.

    Contract:
    - ``info`` reports progress, ``warn`` something the user should act on,
      ``output`` one line of a tool's output (a build log, say).
    - Each call shows its whole message (any text, newlines included) and
      never raises. Messages appear in call order.
    """

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def output(self, line: str) -> None: ...
