"""`RunStore` in the user's state directory: ``<folder>/<run id>/events.jsonl``
(JSON lines, each appended with one write, flushed and fsync'd) and
``<folder>/<run id>/driver.log``. Every folder is private (0700), every file 0600."""

from __future__ import annotations

import os
import shutil
import signal
import socket

import attrs

from ..domain.errors import UsageError
from ..domain.run_record import (
    Event,
    RunNotFound,
    Started,
    decode_events,
    encode_event,
    resolve_run,
    valid_run_id,
)
from ..runtime.control import process_started

EVENTS = "events.jsonl"
LOG = "driver.log"


def _unusable(folder: str, exc: OSError) -> UsageError:
    return UsageError(
        f"runplz cannot use its run records in {folder} ({exc.strerror or exc}); "
        "fix that folder's permissions or set RUNPLZ_STATE_DIR"
    )


def _private_dir(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)


def _sync_dir(path: str) -> None:
    """Make a new entry in ``path`` survive a power cut, not only a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileRunStore:
    def __init__(self, folder: str) -> None:
        self._folder = folder

    def _dir(self, run_id: str) -> str:
        if not valid_run_id(run_id):
            raise RunNotFound(f"{run_id!r} is not a run id; `runplz ps` lists the recorded runs")
        return os.path.join(self._folder, run_id)

    def _events_file(self, run_id: str) -> str:
        return os.path.join(self._dir(run_id), EVENTS)

    def begin(self, started: Started) -> Started:
        if not valid_run_id(started.run):
            raise ValueError(f"{started.run!r} cannot be a run id")
        pid = os.getpid()
        stamped = attrs.evolve(
            started, driver_pid=pid, driver_started=process_started(pid) or "", driver_host=socket.gethostname()
        )
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self._folder)), exist_ok=True)
            _private_dir(self._folder)
            path = self._dir(started.run)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                raise ValueError(f"run {started.run} already has a record") from None
            os.chmod(path, 0o700)
            self._write(os.path.join(path, EVENTS), encode_event(stamped), create=True)
            _sync_dir(path)
        except OSError as exc:
            raise _unusable(self._folder, exc) from None
        return stamped

    def append(self, run_id: str, event: Event) -> None:
        if isinstance(event, Started):
            raise ValueError("a run has one Started event, written by begin()")
        line = encode_event(event)
        path = self._events_file(run_id)
        try:
            self._write(path, line, create=False)
        except FileNotFoundError:
            raise RunNotFound(f"no run {run_id} is recorded in {self._folder}") from None
        except OSError as exc:
            raise _unusable(self._folder, exc) from None

    @staticmethod
    def _write(path: str, line: str, create: bool) -> None:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            data = line.encode("utf-8") + b"\n"
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn line from a crash stays a line of its own
            os.write(fd, data)  # one write with O_APPEND: never interleaved mid-line
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self, run_id: str) -> bytes:
        try:
            with open(self._events_file(run_id), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise RunNotFound(f"no run {run_id} is recorded in {self._folder}") from None
        except OSError as exc:
            raise _unusable(self._folder, exc) from None

    def events(self, run_id: str) -> tuple[Event, ...]:
        return decode_events(self._read(run_id))

    def runs(self) -> tuple[str, ...]:
        try:
            names = os.listdir(self._folder)
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise _unusable(self._folder, exc) from None
        found = [
            name for name in names
            if valid_run_id(name) and os.path.isfile(os.path.join(self._folder, name, EVENTS))
        ]
        return tuple(sorted(found, reverse=True))

    def log_path(self, run_id: str) -> str:
        return os.path.join(self._dir(run_id), LOG)

    def read_log(self, run_id: str, offset: int, limit: int = 1 << 20) -> bytes:
        try:
            with open(self.log_path(run_id), "rb") as handle:
                handle.seek(max(0, offset))
                return handle.read(limit)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise _unusable(self._folder, exc) from None

    def driver_alive(self, run_id: str) -> bool:
        head = self._read(run_id)
        first = decode_events(head[: head.find(b"\n") + 1])
        if not first or not isinstance(first[0], Started):
            return False
        started = first[0]
        if started.driver_host and started.driver_host != socket.gethostname():
            return True  # another host's driver: this host cannot tell
        now = process_started(started.driver_pid) if started.driver_pid > 0 else None
        if now is None:
            return False
        return not (started.driver_started and now and now != started.driver_started)

    def stop_driver(self, run_id: str) -> bool:
        if not self.driver_alive(run_id):
            return False
        started = decode_events(self._read(run_id).split(b"\n", 1)[0] + b"\n")[0]
        if started.driver_host and started.driver_host != socket.gethostname():
            return False
        if not started.driver_started:  # no start time to tell the driver from a pid's next owner
            return False
        try:
            os.kill(started.driver_pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def resolve(self, text: str) -> str:
        return resolve_run(self.runs(), text)

    def remove(self, run_id: str) -> None:
        if not valid_run_id(run_id):
            return
        shutil.rmtree(os.path.join(self._folder, run_id), ignore_errors=True)
