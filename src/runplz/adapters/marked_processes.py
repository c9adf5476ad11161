"""This host's processes that carry a mark in their environment, and stopping
them without signalling any other process (Linux: /proc).

A local native run's job is started with ``RUNPLZ_RUN_ID=<run id>`` in its
environment, which every process it starts inherits. A pid alone could by now
name another process; the mark cannot. Each process is signalled on its own
(never a process group: a group id is reused as readily as a pid), and only
after its own environment was read and found marked:

- with pidfds (Linux 5.3+): a pidfd is opened first, the environment is read
  after, and the signals go through the pidfd; a pid that changed hands in
  between leaves the pidfd naming the old, dead process, so nobody else is
  signalled.
- without (an older kernel): the process is known by its pid and its start
  time, and both are read again right before each signal; the pid would have
  to be reused by another process within that same instant (microseconds) to
  reach the wrong one.

Reading a process's environment waits on its memory map, which a process in
uninterruptible sleep (state D, say on a dead NFS server) may hold: such a
process is read in a helper thread for at most `READ_WAIT` seconds, and one
that does not answer is left alone and reported as not checked.

`ProcessFence` uses the same machinery for the programs this process starts:
`runplz ps` abandons the checks that miss its time budget, and stops what they
had started (an ssh master still connecting, a `brev ls`) by its mark.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import threading
import time
from typing import Callable, NamedTuple

PROC = "/proc"
KILL_WAIT = 5.0  # after SIGKILL, how long to wait for the processes to be gone
READ_WAIT = 1.0  # the longest the environment of a process in state D is waited for
FENCE_MARK = "RUNPLZ_FENCE"


class Stopped(NamedTuple):
    """What `stop_marked` did: ``found`` marked processes (every one was
    signalled), ``alive`` the pids of those still there after SIGKILL and
    the wait (stuck in the kernel), ``unchecked`` the pids of processes in
    uninterruptible sleep whose environment could not be read in time."""

    found: int
    alive: tuple[int, ...] = ()
    unchecked: tuple[int, ...] = ()


def can_look() -> bool:
    """Whether this host shows processes' environments (/proc)."""
    return os.path.exists(os.path.join(PROC, "self", "environ"))


def _pidfds() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def _stat(pid: int) -> tuple[bytes, bytes] | None:
    """A process's state letter and start time, or None once it is gone."""
    try:
        with open(os.path.join(PROC, str(pid), "stat"), "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def _live() -> dict[int, tuple[bytes, bytes]]:
    try:
        names = [name for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return {}
    found = {}
    for name in names:
        stat = _stat(int(name))
        if stat is not None and stat[0] not in (b"Z", b"X"):
            found[int(name)] = stat
    return found


def _read_environ(pid: int, entry: bytes) -> bool:
    try:
        with open(os.path.join(PROC, str(pid), "environ"), "rb") as handle:
            return entry in handle.read().split(b"\0")
    except OSError:  # gone, or not ours to read: not marked
        return False


def _carries(pid: int, entry: bytes, state: bytes) -> bool | None:
    """Whether the process's environment holds ``entry``; None: a process in
    uninterruptible sleep whose environment did not come within `READ_WAIT`."""
    if state != b"D":
        return _read_environ(pid, entry)
    answer: list[bool] = []
    reader = threading.Thread(target=lambda: answer.append(_read_environ(pid, entry)), daemon=True)
    reader.start()
    reader.join(READ_WAIT)
    return answer[0] if answer else None


class _Process:
    """One process, held so that a signal reaches it and never a later owner of its pid."""

    def __init__(self, pid: int, start: bytes, fd: int | None) -> None:
        self.pid, self._start, self._fd = pid, start, fd

    @classmethod
    def hold(cls, pid: int, start: bytes, pidfds: bool) -> _Process | None:
        if not pidfds:
            return cls(pid, start, None)
        try:
            return cls(pid, start, os.pidfd_open(pid))
        except OSError:  # gone already
            return None

    def gone(self) -> bool:
        if self._fd is not None:
            waiter = select.poll()
            waiter.register(self._fd, select.POLLIN)
            return bool(waiter.poll(0))  # a pidfd turns readable when its process exits
        stat = _stat(self.pid)
        return stat is None or stat[0] in (b"Z", b"X") or stat[1] != self._start

    def send(self, sig: int) -> None:
        try:
            if self._fd is not None:
                signal.pidfd_send_signal(self._fd, sig)
            elif not self.gone():  # the same process, checked right before the signal
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Hunt:
    """The processes marked with ``entry``, held as they are found."""

    def __init__(self, entry: bytes) -> None:
        self._entry = entry
        self._pidfds = _pidfds()
        self.held: dict[int, _Process] = {}
        self.found = 0
        self._passed: set[tuple[int, bytes]] = set()  # (pid, start) read and found unmarked
        self._stuck: dict[tuple[int, bytes], int] = {}  # (pid, start) whose environment did not come

    def look(self) -> list[_Process]:
        """Hold every marked process not held yet; returns those."""
        me = os.getpid()
        new = []
        for pid, (state, start) in _live().items():
            key = (pid, start)
            if pid == me or key in self._passed or key in self._stuck:
                continue
            if pid in self.held and not self.held[pid].gone():
                continue
            process = _Process.hold(pid, start, self._pidfds)
            if process is None:
                continue
            marked = _carries(pid, self._entry, state)  # read after the pidfd was opened
            if marked is None:
                self._stuck[key] = pid
            elif not marked:
                self._passed.add(key)
            if not marked or process.gone():
                process.close()
                continue
            if pid in self.held:
                self.held.pop(pid).close()
            self.held[pid] = process
            self.found += 1
            new.append(process)
        return new

    def alive(self) -> list[_Process]:
        return [process for process in self.held.values() if not process.gone()]

    def unchecked(self) -> tuple[int, ...]:
        live = _live()
        return tuple(sorted(pid for (pid, start), _ in self._stuck.items() if live.get(pid, (b"", b""))[1] == start))

    def close(self) -> None:
        for process in self.held.values():
            process.close()


def scan(entry: bytes) -> tuple[dict[int, int], dict[int, list[int]]]:
    """The live processes whose environment holds ``entry`` (``NAME=value``),
    pid to process group; and for each of those groups, its live members.
    This process is never among the marked. (A view for looking, not for
    signalling: `stop_marked` signals.)"""
    hunt = _Hunt(entry)
    try:
        pids = [process.pid for process in hunt.look()]
    finally:
        hunt.close()
    groups_of = {pid: _group(pid) for pid in _live()}
    marked = {pid: groups_of[pid] for pid in pids if groups_of.get(pid) is not None}
    groups: dict[int, list[int]] = {pgid: [] for pgid in marked.values()}
    for pid, pgid in groups_of.items():
        if pgid in groups:
            groups[pgid].append(pid)
    return marked, groups


def _group(pid: int) -> int | None:
    try:
        with open(os.path.join(PROC, str(pid), "stat"), "rb") as handle:
            return int(handle.read().rpartition(b")")[2].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def stop_marked(
    entry: bytes, grace: float, sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
) -> Stopped | None:
    """SIGTERM the processes marked with ``entry``, SIGKILL what is left after
    ``grace`` seconds, and wait for them to go; a marked process that turns up
    meanwhile (started by one being stopped) gets the signal of the moment.
    None where this host cannot look."""
    if not can_look():
        return None
    hunt = _Hunt(entry)
    try:
        for process in hunt.look():
            process.send(signal.SIGTERM)
        if hunt.found:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)):
                if sig == signal.SIGKILL:
                    for process in hunt.alive():
                        process.send(sig)
                deadline = now() + wait
                while True:
                    for process in hunt.look():
                        process.send(sig)
                    if not hunt.alive() or now() >= deadline:
                        break
                    sleep(0.1)
        return Stopped(hunt.found, tuple(sorted(p.pid for p in hunt.alive())), hunt.unchecked())
    finally:
        hunt.close()


class ProcessFence:
    """While open (``with ProcessFence() as fence:``), every program this
    process starts carries ``RUNPLZ_FENCE=<a fresh token>`` in its
    environment (it is set in this process's own, so this process should
    open one fence at a time), and so does whatever those programs start,
    daemons included. `stop` stops every process still carrying it, as
    `stop_marked` does; closing the fence takes the mark away."""

    def __init__(self, grace: float = 1.0) -> None:
        self._grace = grace
        self._token = secrets.token_hex(8)

    def __enter__(self) -> ProcessFence:
        os.environ[FENCE_MARK] = self._token
        return self

    def stop(self) -> Stopped | None:
        return stop_marked(f"{FENCE_MARK}={self._token}".encode(), self._grace)

    def __exit__(self, *exc: object) -> None:
        if os.environ.get(FENCE_MARK) == self._token:
            del os.environ[FENCE_MARK]
