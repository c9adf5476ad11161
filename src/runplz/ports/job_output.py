"""Port: where a job's own output goes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class JobOutput(Protocol):
    """The job's stdout/stderr as it streams back from a remote run.

    Contract:
    - ``write(chunk)`` shows the bytes exactly, in order, partial lines and
      carriage returns included, as soon as they arrive; it never raises.
    """

    def write(self, chunk: bytes) -> None: ...
