"""Port: what runplz tells the person at the terminal."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Console(Protocol):
    """Progress, warnings and tool output, kept apart from the job's own output.

    Contract:
    - ``info`` reports progress, ``warn`` something the user should act on,
      ``output`` one line of a tool's output (a build log, say).
    - Each of those shows its whole message (any text, newlines included) and
      never raises. Messages appear in call order.
    - ``progress`` shows a passing status line (a phase under way, say
      "upload…"): the next message of any kind replaces it, and
      ``progress("")`` takes it away. On a terminal it may be redrawn in place
      (with how long it has been up); where it cannot be (a pipe, a file, a
      quiet console) it shows nothing. It never raises, never garbles another
      message, and is never written to the driver log.
    """

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def output(self, line: str) -> None: ...

    def progress(self, message: str) -> None: ...
