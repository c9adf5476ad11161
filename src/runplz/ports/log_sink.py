"""Port: the driver log, where everything runplz shows is also written."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LogSink(Protocol):
    """A copy of everything shown at the terminal, with timestamps.

    Contract:
    - ``record(source, data)`` keeps ``data`` (bytes, any split: partial lines
      are joined with the next chunk of the same ``source``) as whole lines,
      each stamped with the time its line completed and tagged with ``source``
      (e.g. "runplz", "job", "cmd docker"). It never raises and never blocks on
      the terminal; chunks from several threads never interleave inside a line.
    - ``path`` is the file the lines go to, or None (no log file, or not yet
      chosen: lines recorded before a path is chosen are kept and written
      first, in order, once it is).
    - ``attach(path)`` sends the lines to ``path`` from now on (each run's own
      log), unless the user pinned one file for the whole invocation
      (``pin(path)``, ``--log-file``), or keeps no log (then both do nothing).
    - ``planned(path)`` is the file ``attach(path)`` would write to: "" with no
      log, the pinned file, or ``path``.
    - ``flush()`` writes out partial lines, at the end of a run.
    """

    @property
    def path(self) -> str | None: ...

    def attach(self, path: str) -> None: ...

    def pin(self, path: str) -> None: ...

    def planned(self, path: str) -> str: ...

    def flush(self) -> None: ...

    def record(self, source: str, data: bytes) -> None: ...
