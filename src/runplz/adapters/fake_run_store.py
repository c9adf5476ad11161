"""An in-memory `RunStore`: drivers are numbers the test can end."""

from __future__ import annotations

import threading

import attrs

from ..domain.run_record import (
    Event,
    RunNotFound,
    Started,
    decode_events,
    encode_event,
    resolve_run,
    valid_run_id,
)


class FakeRunStore:
    """Records in a dict, kept as the same JSON lines the file store writes
    (so an event that would not survive the file survives no better here).

    The beginning "driver" is ``driver`` (a pid-like int, default 1) on host
    "here"; `end_driver` makes a driver gone, `kill` ends the driver of a run.
    `write_log` appends to a run's driver log; `start_job` leaves processes of
    a run's job running here (what `stop_job` stops), ``can_look`` False is a
    host with no way to find them. Thread-safe."""

    def __init__(self, driver: int = 1) -> None:
        self.driver = driver
        self._lines: dict[str, list[str]] = {}
        self._logs: dict[str, bytes] = {}
        self._gone: set[int] = set()
        self.stopped: list[str] = []  # runs whose driver stop_driver asked to stop
        self.jobs: dict[str, int] = {}  # run id: processes of its job still running here
        self.can_look = True
        self._lock = threading.Lock()

    def _known(self, run_id: str) -> list[str]:
        try:
            return self._lines[run_id]
        except KeyError:
            raise RunNotFound(f"no run {run_id} is recorded") from None

    def begin(self, started: Started) -> Started:
        if not valid_run_id(started.run):
            raise ValueError(f"{started.run!r} cannot be a run id")
        stamped = attrs.evolve(started, driver_pid=self.driver, driver_started="fake", driver_host="here")
        with self._lock:
            if started.run in self._lines:
                raise ValueError(f"run {started.run} already has a record")
            self._lines[started.run] = [encode_event(stamped)]
        return stamped

    def append(self, run_id: str, event: Event) -> None:
        if isinstance(event, Started):
            raise ValueError("a run has one Started event, written by begin()")
        line = encode_event(event)
        with self._lock:
            self._known(run_id).append(line)

    def events(self, run_id: str) -> tuple[Event, ...]:
        with self._lock:
            text = "".join(line + "\n" for line in self._known(run_id))
        return decode_events(text)

    def runs(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._lines, reverse=True))

    def log_path(self, run_id: str) -> str:
        return f"<memory>/runs/{run_id}/driver.log"

    def read_log(self, run_id: str, offset: int, limit: int = 1 << 20) -> bytes:
        with self._lock:
            data = self._logs.get(run_id, b"")
        return data[max(0, offset): max(0, offset) + limit]

    def driver_alive(self, run_id: str) -> bool:
        events = self.events(run_id)
        return bool(events) and isinstance(events[0], Started) and events[0].driver_pid not in self._gone

    def stop_job(self, run_id: str) -> int | None:
        if not valid_run_id(run_id):
            raise RunNotFound(f"{run_id!r} is not a run id")
        if not self.can_look:
            return None
        with self._lock:
            return self.jobs.pop(run_id, 0)

    def resolve(self, text: str) -> str:
        return resolve_run(self.runs(), text)

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._lines.pop(run_id, None)
            self._logs.pop(run_id, None)

    # What tests do to it.

    def write_log(self, run_id: str, data: bytes | str) -> None:
        """Append to the run's driver log (what the driver's log writer does)."""
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            self._logs[run_id] = self._logs.get(run_id, b"") + data

    def stop_driver(self, run_id: str) -> bool:
        """Records the request in ``stopped``; the fake driver does not react."""
        if not self.driver_alive(run_id):
            return False
        self.stopped.append(run_id)
        return True

    def start_job(self, run_id: str, processes: int = 1) -> None:
        """``processes`` more processes of the run's job run here."""
        with self._lock:
            self.jobs[run_id] = self.jobs.get(run_id, 0) + processes

    def end_driver(self, driver: int) -> None:
        """The driver ``driver`` died: its runs are no longer alive."""
        self._gone.add(driver)

    def kill(self, run_id: str) -> None:
        """The driver of ``run_id`` died (SIGKILL: no more events)."""
        started = self.events(run_id)[0]
        assert isinstance(started, Started)
        self.end_driver(started.driver_pid)
