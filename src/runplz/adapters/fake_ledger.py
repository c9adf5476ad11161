"""An in-memory `BoxLedger`: drivers are names the test can end."""

from __future__ import annotations

import threading

from ..ports.ledger import BoxRecord


class FakeLedger:
    """Records in a dict. The recording "driver" is ``driver`` (a pid-like int,
    default 1) on host "here"; `end_driver` makes a driver gone."""

    def __init__(self, driver: int = 1, now: float = 1_800_000_000.0) -> None:
        self.driver = driver
        self.now = now
        self._records: dict[str, BoxRecord] = {}
        self._gone: set[int] = set()
        self._lock = threading.Lock()  # safe from several threads, like the file ledger

    def record(self, name: str, backend: str) -> BoxRecord:
        entry = BoxRecord(name, backend, self.driver, "here", self.now)
        with self._lock:
            self._records[name] = entry
        return entry

    def forget(self, name: str) -> None:
        with self._lock:
            self._records.pop(name, None)

    def records(self) -> tuple[BoxRecord, ...]:
        with self._lock:
            return tuple(self._records[name] for name in sorted(self._records))

    def orphans(self, backend: str) -> tuple[BoxRecord, ...]:
        return tuple(
            record for record in self.records()
            if record.backend == backend and record.driver_host == "here" and record.driver_pid in self._gone
        )

    def end_driver(self, driver: int) -> None:
        """The driver ``driver`` died: its records become orphans."""
        self._gone.add(driver)

    def add_foreign(self, name: str, backend: str, host: str) -> None:
        """A record made on another host (never an orphan here)."""
        self._records[name] = BoxRecord(name, backend, 99999, host, self.now)
