"""`RunStore` in the user's state directory: ``<folder>/<run id>/events.jsonl``
(JSON lines, each appended with one write, flushed and fsync'd) and
``<folder>/<run id>/driver.log``. Every folder is private (0700), every file 0600.

A full disk: each run keeps a small ``reserve`` file until it ends, given up
(and the write tried again) when an event finds the disk full, so the end of
a run is still recorded when its log has filled the disk. A run's events file
appears whole (written under another name, then renamed), so a reader never
sees a run without its first event.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket

import attrs

from ..domain.errors import UsageError
from ..domain.job_stop import JobLeftRunning
from ..domain.run_record import (
    JOB_MARK,
    Ended,
    Event,
    RunNotFound,
    Started,
    decode_events,
    encode_event,
    resolve_run,
    valid_run_id,
)
from ..runtime.control import process_started
from .marked_processes import stop_marked

EVENTS = "events.jsonl"
LOG = "driver.log"
RESERVE = "reserve"
RESERVE_BYTES = 8192  # room for the last events of a run (two pages of most file systems)
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _unusable(folder: str, exc: OSError) -> UsageError:
    if exc.errno in _FULL:
        return UsageError(
            f"runplz cannot write its run records in {folder}: the disk is full ({exc.strerror or exc}); "
            "free some space there or set RUNPLZ_STATE_DIR"
        )
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
    def __init__(self, folder: str, job_grace: float = 5.0) -> None:
        self._folder = folder
        self._job_grace = job_grace  # `stop_job`: from SIGTERM to SIGKILL

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
        except OSError as exc:
            raise _unusable(self._folder, exc) from None
        try:
            os.chmod(path, 0o700)
            first = os.path.join(path, EVENTS + ".new")
            self._write(first, encode_event(stamped), create=True)
            os.replace(first, os.path.join(path, EVENTS))
            _sync_dir(path)
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)  # no half-made record is left to read
            raise _unusable(self._folder, exc) from None
        _reserve(os.path.join(path, RESERVE))
        return stamped

    def append(self, run_id: str, event: Event) -> None:
        if isinstance(event, Started):
            raise ValueError("a run has one Started event, written by begin()")
        line = encode_event(event)
        path = self._events_file(run_id)
        reserve = os.path.join(self._dir(run_id), RESERVE)
        try:
            try:
                self._write(path, line, create=False)
            except OSError as exc:
                if exc.errno not in _FULL or not _give_up(reserve):
                    raise
                self._write(path, line, create=False)  # into the room the reserve held
        except FileNotFoundError:
            raise RunNotFound(f"no run {run_id} is recorded in {self._folder}") from None
        except OSError as exc:
            raise _unusable(self._folder, exc) from None
        if isinstance(event, Ended):
            _give_up(reserve)  # the run is over: its room goes back to the disk

    @staticmethod
    def _write(path: str, line: str, create: bool) -> None:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            data = line.encode("utf-8") + b"\n"
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn line from a crash stays a line of its own
            written = os.write(fd, data)  # one write with O_APPEND: never interleaved mid-line
            if written < len(data):  # a disk that filled up mid-write; what got there is a torn line
                os.write(fd, data[written:])
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

    def stop_job(self, run_id: str) -> int | None:
        self._dir(run_id)  # a valid id, or RunNotFound
        stopped = stop_marked(f"{JOB_MARK}={run_id}".encode(), self._job_grace)
        if stopped is None:
            return None
        if stopped.alive or stopped.unchecked:
            raise JobLeftRunning(stopped.found, stopped.alive, stopped.unchecked)
        return stopped.found

    def resolve(self, text: str) -> str:
        return resolve_run(self.runs(), text)

    def remove(self, run_id: str) -> None:
        if not valid_run_id(run_id):
            return
        shutil.rmtree(os.path.join(self._folder, run_id), ignore_errors=True)


def _reserve(path: str) -> None:
    """Best effort: a run on a disk that is full already goes without."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    try:
        os.write(fd, b"runplz keeps this room for the end of the run's record\n".ljust(RESERVE_BYTES, b"."))
    except OSError:
        pass
    finally:
        os.close(fd)


def _give_up(path: str) -> bool:
    """Delete a run's reserve; whether there was one."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False
