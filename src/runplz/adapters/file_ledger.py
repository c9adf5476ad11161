"""`BoxLedger` in a folder of the user's state directory: one JSON file per box."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time

from ..domain.errors import UsageError
from ..ports.ledger import BoxRecord
from ..runtime.control import process_started


def _unusable(folder: str, exc: OSError) -> UsageError:
    return UsageError(
        f"runplz cannot use its record of created boxes in {folder} ({exc.strerror or exc}); "
        "fix that folder's permissions or set RUNPLZ_STATE_DIR"
    )


class FileLedger:
    """Records in ``folder`` (made 0700), written atomically. A record also keeps
    its driver's start time, so a reused pid is not mistaken for the driver."""

    def __init__(self, folder: str) -> None:
        self._folder = folder

    def _path(self, name: str) -> str:
        return os.path.join(self._folder, f"{name}.json")

    def record(self, name: str, backend: str) -> BoxRecord:
        try:
            return self._record(name, backend)
        except OSError as exc:
            raise _unusable(self._folder, exc) from None

    def _record(self, name: str, backend: str) -> BoxRecord:
        os.makedirs(self._folder, mode=0o700, exist_ok=True)
        pid = os.getpid()
        entry = BoxRecord(name, backend, pid, socket.gethostname(), time.time())
        data = {
            "name": entry.name, "backend": entry.backend, "driver_pid": entry.driver_pid,
            "driver_host": entry.driver_host, "created": entry.created, "driver_started": process_started(pid) or "",
        }
        handle, temp = tempfile.mkstemp(dir=self._folder, prefix=".record-")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self._path(name))
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        return entry

    def forget(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass

    def _read(self) -> list[tuple[BoxRecord, str]]:
        found = []
        try:
            names = sorted(os.listdir(self._folder))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _unusable(self._folder, exc) from None
        for entry in names:
            if not entry.endswith(".json") or entry.startswith("."):
                continue
            try:
                with open(os.path.join(self._folder, entry)) as handle:
                    data = json.load(handle)
                record = BoxRecord(
                    str(data["name"]), str(data["backend"]), int(data["driver_pid"]),
                    str(data["driver_host"]), float(data["created"]),
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half-written or foreign: not ours to judge
            found.append((record, str(data.get("driver_started", ""))))
        return sorted(found, key=lambda pair: pair[0].name)

    def records(self) -> tuple[BoxRecord, ...]:
        return tuple(record for record, _ in self._read())

    def orphans(self, backend: str) -> tuple[BoxRecord, ...]:
        host = socket.gethostname()
        gone = []
        for record, started in self._read():
            if record.backend != backend or record.driver_host != host:
                continue
            now = process_started(record.driver_pid)
            if now is None or (started and now and now != started):
                gone.append(record)
        return tuple(gone)
