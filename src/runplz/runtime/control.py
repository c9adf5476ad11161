"""A run's ``ctl/`` files and its processes, for the agent (stdlib only)."""

from __future__ import annotations

import errno
import json
import os
import signal
import time

from .files import read, write

KILL_GRACE = 5.0  # kill (default), and a run whose supervisor died
STOP_GRACE = 10.0  # at a time limit: SIGTERM, this long, then SIGKILL



def nospace(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def free_kb(path: str) -> int:
    """Free space (KiB) for this user on the filesystem holding ``path``."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    fs = os.statvfs(path or ".")
    return fs.f_bavail * fs.f_frsize // 1024


def reserve(ctl: str, name: str) -> None:
    """Claim room for a file written at the end, while the disk still has some."""
    with open(os.path.join(ctl, "." + name), "w", encoding="utf-8") as handle:
        handle.write(" " * 64)


def fill(ctl: str, name: str, text: str) -> None:
    """Write a reserved file (in place, so a full disk does not stop it)."""
    spare, path = os.path.join(ctl, "." + name), os.path.join(ctl, name)
    try:
        with open(spare, "r+", encoding="utf-8") as handle:
            handle.write(text)
            handle.truncate()
        os.replace(spare, path)
    except OSError:
        write(path, text)


def seconds(value: float) -> str:
    """``1.5``, ``3600``: a number of seconds as people write it."""
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def pid_in(path: str) -> int | None:
    text = (read(path) or "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat_fields(pid: str) -> list[str]:
    return (read(f"/proc/{pid}/stat") or ")").rsplit(")", 1)[1].split()


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot; "" where the OS
    does not say), or None if it is gone or a zombie. With the pid this names
    one process: a reused pid has another start time."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
    except OSError:
        return None if not alive(pid) else ""
    if fields and fields[0] == b"Z":
        return None
    return fields[19].decode() if len(fields) > 19 else ""


def group_alive(pgid: int) -> bool:
    """Whether the group has a member that is not a zombie (init may be slow to reap)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True
    for pid in pids:
        fields = _stat_fields(pid)
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _started_after(pid: int, since: float) -> bool:
    """Whether process ``pid`` started well after ``since`` (its number was reused)."""
    try:
        lines = (read("/proc/stat") or "").splitlines()
        boot = next(int(line.split()[1]) for line in lines if line.startswith("btime"))
        return boot + int(_stat_fields(str(pid))[19]) / os.sysconf("SC_CLK_TCK") > since + 5
    except (OSError, StopIteration, IndexError, ValueError):
        return False


def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, ``grace`` seconds to end, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):  # gone, or only others' processes left (sudo's)
            return
        deadline = time.monotonic() + wait
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not group_alive(pgid):
            return


def docker_command(ctl: str) -> list[str]:
    """How this run calls docker (``ctl/docker``, a JSON argv prefix such as
    ``["sudo", "-n", "docker"]``); plain ``docker`` when the file is missing."""
    try:
        command = json.loads(read(os.path.join(ctl, "docker")) or "null")
    except ValueError:
        command = None
    if isinstance(command, list) and command and all(isinstance(part, str) for part in command):
        return command
    return ["docker"]


def remove_container(ctl: str, grace: float) -> None:
    """The run's container, if it has one: SIGTERM, ``grace`` seconds, then gone."""
    container = (read(os.path.join(ctl, "container")) or "").strip()
    if not container:
        return
    import subprocess

    docker = docker_command(ctl)
    stop_it = [*docker, "stop", "-t", str(max(0, round(grace))), container]
    for argv in (stop_it, [*docker, "rm", "-f", container]):
        try:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            return


def stop(ctl: str, grace: float, careful: bool = False) -> None:
    """Stop this run only: its container if it has one, then its process group.
    ``careful`` (no supervisor holds the group): spare a pgid reused since."""
    remove_container(ctl, grace)
    pgid = pid_in(os.path.join(ctl, "pgid"))
    if pgid is None:
        return
    if careful and _started_after(pgid, os.path.getmtime(os.path.join(ctl, "pgid"))):
        return
    stop_group(pgid, grace)


def orphaned(ctl: str) -> str | None:
    """If the supervisor died before recording an exit code: stop what is left of
    the run and record 255 (0 when the job wrote its result) with a note; the note."""
    supervisor = pid_in(os.path.join(ctl, "supervisor.pid"))
    if supervisor is None or alive(supervisor) or os.path.exists(os.path.join(ctl, "exit_code")):
        return None
    stop(ctl, KILL_GRACE, careful=True)
    kept = os.path.exists(os.path.join(ctl, "result.json"))
    note = (
        f"the job's runplz supervisor (pid {supervisor}) died while the job ran (did the job kill it?); "
        "runplz stopped the job" + ("; its result is kept" if kept else "")
    )
    for name, text in (("note", note), ("exit_code", "0" if kept else "255")):
        try:
            fill(ctl, name, text)
        except OSError:
            pass
    return note


def record(ctl: str, note: str | None = None) -> dict:
    """How the run ended, as ``follow`` reports it (``note`` when none was written)."""
    code = (read(os.path.join(ctl, "exit_code")) or "").strip()
    result = read(os.path.join(ctl, "result.json"))
    return {
        "exit_code": int(code) if code.lstrip("-").isdigit() else (0 if note and result else 255),
        "result": result,
        "timed_out": os.path.exists(os.path.join(ctl, "timed_out")),
        "note": read(os.path.join(ctl, "note")) or note,
    }
