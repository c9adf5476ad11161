"""Port: time."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Wall time, a monotonic timer, and waiting.

    Contract:
    - ``now()`` is seconds since the Unix epoch (float).
    - ``monotonic()`` never goes backwards.
    - ``sleep(s)`` returns after ``monotonic()`` and ``now()`` have advanced by
      at least ``s``; ``sleep(0)`` and negative values return at once.
    """

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...
