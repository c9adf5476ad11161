"""Port: starting this same command again, as a driver in the background (``--detach``)."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import attrs


@attrs.frozen
class Detached:
    """What the launcher saw: the run id the background driver reported, or
    its exit code when it ended first (128+N for signal N); what it printed on
    stdout and stderr until then; its pid."""

    run_id: str | None
    exit_code: int | None
    early_output: str
    early_errors: str
    pid: int = 0


@runtime_checkable
class Launcher(Protocol):
    """Contract:
    - ``start(args, cwd)`` runs ``runplz ARGS`` in its own session with no
      terminal, so it outlives the caller, and returns once the background
      driver reports its first run id (then its output no longer comes here),
      once it ends, or after ``wait_seconds`` (``run_id`` and ``exit_code``
      both None: it goes on, unreported).
    """

    def start(self, args: Sequence[str], cwd: str, wait_seconds: float = 600.0) -> Detached: ...
