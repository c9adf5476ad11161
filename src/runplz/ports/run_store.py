"""Port: the records of runs, written as they go, read by `ps`, `logs` and `status`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..domain.run_record import Event, Started


@runtime_checkable
class RunStore(Protocol):
    """One record per run: an append-only list of events, plus the run's
    driver log.

    Contract:
    - ``begin(started)`` creates the run ``started.run`` with ``started`` as
      its first event, stamped with the calling process as its driver
      (``driver_pid``, ``driver_started``, ``driver_host``), and returns the
      stamped event. Beginning an id that exists raises `ValueError`.
    - ``append(run_id, event)`` adds an event that is stored before it returns
      (a crash right after it loses nothing). A `Started` event raises
      `ValueError`; an unknown run raises `RunNotFound`.
    - ``events(run_id)`` gives every event, in the order appended, each equal
      to the one given. An unknown run raises `RunNotFound`.
    - ``runs()`` lists every run id, newest first (ids begin with their UTC
      start time: sorted by id, descending).
    - ``log_path(run_id)`` is where the run's driver log lives (it may not
      exist yet); ``read_log(run_id, offset)`` returns the log's bytes from
      ``offset`` on, at most ``limit`` of them (b"" when there is no log or
      nothing new).
    - ``driver_alive(run_id)`` is whether the driver that began the run still
      runs (a pid reused by another process counts as gone; a driver on
      another host is taken as alive: this host cannot tell).
    - ``resolve(text)`` turns "last" (the newest run) or a unique prefix of an
      id into that id; no match, an ambiguous prefix, or no runs at all raise
      `RunNotFound` (a `UsageError`) with one readable line.
    - ``remove(run_id)`` deletes the record and its log; an unknown id is a no-op.
    - ``stop_driver(run_id)`` asks the run's live driver on this host to stop
      (SIGTERM: it cleans up as on Ctrl-C) and returns True; False when the
      driver is gone, on another host, or cannot be told apart from a later
      process with its pid (nothing is signalled).
    - ``stop_job(run_id)`` stops what the run's job left running on this host
      (a local native run's job, whose processes carry ``RUNPLZ_RUN_ID=<run
      id>`` in their environment): SIGTERM, then SIGKILL after a grace, and
      waits for them to go. Returns how many processes it found (0: none), or
      None where this host cannot look. A process without the run's mark is
      never signalled, whatever its pid or process group (ids are reused).
      Processes that outlive SIGKILL (stuck in the kernel), or whose
      environment could not be read (uninterruptible sleep), raise
      `JobLeftRunning` (``found``, ``alive``, ``unchecked`` pids); those not
      read are never signalled. An invalid run id raises `RunNotFound`.
    - An append that finds the disk full raises a `UsageError` that says so;
      a run that began keeps room to record its end.
    - Records survive a new store object over the same storage, and several
      processes may write different runs at once.
    """

    def begin(self, started: Started) -> Started: ...

    def append(self, run_id: str, event: Event) -> None: ...

    def events(self, run_id: str) -> tuple[Event, ...]: ...

    def runs(self) -> tuple[str, ...]: ...

    def log_path(self, run_id: str) -> str: ...

    def read_log(self, run_id: str, offset: int, limit: int = 1 << 20) -> bytes: ...

    def driver_alive(self, run_id: str) -> bool: ...

    def resolve(self, text: str) -> str: ...

    def remove(self, run_id: str) -> None: ...

    def stop_driver(self, run_id: str) -> bool: ...

    def stop_job(self, run_id: str) -> int | None: ...
