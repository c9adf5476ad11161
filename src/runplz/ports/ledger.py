"""Port: the record of billed boxes a driver made, kept where a crash cannot lose it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs


@attrs.frozen
class BoxRecord:
    """One box a driver created and has not yet seen deleted."""

    name: str
    backend: str  # "brev"
    driver_pid: int
    driver_host: str
    created: float  # epoch seconds


@runtime_checkable
class BoxLedger(Protocol):
    """Which boxes this machine's drivers created, so a driver killed with
    SIGKILL cannot leave one billing unnoticed.

    Contract:
    - ``record(name, backend)`` stores a record owned by the calling process
      before it returns (a crash right after it loses nothing); recording a
      name again replaces its record.
    - ``forget(name)`` removes the record; forgetting an unknown name is a no-op.
    - ``records()`` lists every record, sorted by name.
    - ``orphans(backend)`` lists the records of that backend whose driver is
      gone: made on this host by a process that no longer runs (a pid reused
      by another process counts as gone). A live driver's records, and those
      made on other hosts, are never orphans.
    - Records survive a new ledger object over the same store.
    - Every method may be called from several threads at once (a map's
      inputs record and forget their boxes concurrently); none of them sees
      another's half-written record.
    """

    def record(self, name: str, backend: str) -> BoxRecord: ...

    def forget(self, name: str) -> None: ...

    def records(self) -> tuple[BoxRecord, ...]: ...

    def orphans(self, backend: str) -> tuple[BoxRecord, ...]: ...
