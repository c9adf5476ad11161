"""The remote side of a detached run: start, follow, kill, guard, prune, and make a venv.

Invoked as ``python3 <bundle>/runplz_boot.py agent COMMAND ...`` on the target
(stdlib only, except ``venv``, which uses the shipped runplz adapters). Paths
are relative to the working folder (the login home) or absolute.

A run folder holds ``repo/`` (the job's code, uploaded by the driver),
``out/`` ($RUNPLZ_OUT) and ``ctl/``: payload.json, result.json, job.log, and
the supervisor's files (supervisor.pid, pgid, container, docker (the argv
prefix that calls docker, e.g. ``["sudo", "-n", "docker"]``; plain docker
without it), limit, exit_code, timed_out, note). The driver moves the outputs home (they leave ``out/`` as
they arrive); pruning deletes a finished run's ``repo/`` at once.

The supervisor runs the job in its own process group and stops it at its time
limit even when no driver is left. If the supervisor dies while the job runs,
``follow`` and ``prune`` stop what is left of the run and record exit code 255
(0 when the job had written its result) with a note.

Pruning (``prune``, and ``start`` after each start) looks at the run folders
beside the run, and touches only folders owned by this user:

- a run still running (its supervisor is alive) is never touched;
- a finished run (exit_code written, supervisor gone) loses its ``repo/`` at
  once, and is deleted when it is not among the 10 most recently finished and
  either its outputs came back (``out/`` holds no file) or it finished more
  than 14 days ago;
- a folder with no ``ctl/supervisor.pid`` (an upload that never started, for
  example after a full disk) is deleted when older than 1 day.

A full disk ends ``start`` with ``NOSPACE_MARK <free KiB>`` on stderr and exit
28, and ``venv`` with ``"nospace": true`` in its record; never a traceback.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time

from ..domain.remote_layout import ENV_MARK, EXIT_NOSPACE, NOSPACE_MARK, PENDING_MARK, RESULT_MARK
from .control import KILL_GRACE, free_kb, nospace, orphaned, pid_in, record, seconds

# Each command imports what it needs when it runs: every call is a fresh process
# on the driver's path, and `follow`, the one called most, needs little.

# How the venv builder marks a finished venv (adapters/venv_builder.py: `_READY`,
# in ``<root>/<key[:24]>``, python at ``bin/python``); `venv` answers from it
# without loading the builder.
VENV_READY = ".runplz-ready"


def start(run: str) -> int:
    """Read the job spec (JSON) on stdin, detach a supervisor, print the job's pgid;
    then, in a detached process off the driver's path, refresh the upload basis
    (``basis``: [from, to]) and prune old runs."""
    import errno
    import shutil

    from .files import write
    from .supervisor import detach, in_background

    spec = json.loads(sys.stdin.read())
    ctl = os.path.join(run, "ctl")
    try:
        os.makedirs(ctl, exist_ok=True)
        os.makedirs(os.path.join(run, "out"), exist_ok=True)
        write(os.path.join(ctl, "payload.json"), spec["payload"])
        if spec.get("container"):
            write(os.path.join(ctl, "container"), spec["container"])
            write(os.path.join(ctl, "docker"), json.dumps(spec.get("docker") or ["docker"]))
        if spec.get("limit"):
            write(os.path.join(ctl, "limit"), seconds(spec["limit"]) + "\n")
        pgid = detach(ctl, spec)
        if pgid == "nospace":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as exc:
        if not nospace(exc):
            raise
        shutil.rmtree(ctl, ignore_errors=True)
        sys.stderr.write(f"{NOSPACE_MARK}{free_kb(run)}\n")
        return EXIT_NOSPACE
    print(pgid, flush=True)
    in_background(lambda: _housekeeping(run, spec.get("basis")))
    return 0 if pgid and pgid != "0" else 1


def _housekeeping(run: str, basis: list[str] | None) -> None:
    from .basis import mirror
    from .prune import prune

    if basis:
        mirror(*basis)
    try:
        prune(os.path.dirname(os.path.abspath(run)))
    except Exception:
        pass


class _Nap:
    """The waits between looks at a run's files. Each one also ends the moment the
    job's process does (a pidfd on it, where the OS has them), so its end is seen
    at once instead of at the next look; the files stay what decides."""

    def __init__(self, ctl: str) -> None:
        self._ctl = ctl
        self._handle: int | None = None
        self._tried = False

    def __call__(self, seconds: float) -> bool:
        """Wait up to ``seconds``; whether the job's process ended meanwhile."""
        if not self._tried:
            pid = pid_in(os.path.join(self._ctl, "pgid"))
            self._tried = pid is not None
            try:
                self._handle = os.pidfd_open(pid) if pid is not None else None
            except (AttributeError, OSError):  # gone already, or no pidfds here
                self._handle = None
        if self._handle is None:
            time.sleep(seconds)
            return False
        waiter = select.poll()  # not select.select: that refuses descriptors past 1023
        waiter.register(self._handle, select.POLLIN)
        if not waiter.poll(seconds * 1000):
            return False
        self.close()
        self._tried = True
        return True

    def close(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None


def follow(run: str, offset: int, max_seconds: float | None = None) -> int:
    """Stream job.log from ``offset`` until the job has ended and the log is drained,
    then one result line on stderr; or, still running after ``max_seconds``, the
    pending line (the caller follows again from where it got to)."""
    ctl = os.path.join(run, "ctl")
    out = sys.stdout.buffer
    give_up = time.monotonic() + max_seconds if max_seconds else None
    idle = 0.02

    def pending() -> int:
        sys.stderr.write(PENDING_MARK + "\n")
        sys.stderr.flush()
        return 0

    while not os.path.exists(os.path.join(ctl, "job.log")):
        if give_up is not None and time.monotonic() >= give_up:
            return pending()
        time.sleep(idle)
    note = None
    nap = _Nap(ctl)
    try:
        with open(os.path.join(ctl, "job.log"), "rb") as log:
            log.seek(offset)
            while True:
                chunk = log.read(1 << 16)
                if chunk:
                    out.write(chunk)
                    out.flush()
                    idle = 0.02
                    continue
                if note or os.path.exists(os.path.join(ctl, "exit_code")):
                    out.write(log.read())
                    out.flush()
                    break
                note = orphaned(ctl)
                if note:
                    continue
                if give_up is not None and time.monotonic() >= give_up:
                    return pending()
                # The job ended: its supervisor records that within milliseconds.
                idle = 0.002 if nap(idle) else min(idle * 2, 0.25)
    finally:
        nap.close()
    sys.stderr.write(RESULT_MARK + json.dumps(record(ctl, note)) + "\n")
    sys.stderr.flush()
    return 0


def kill(run: str, grace: float) -> int:
    """Stop this run only: its process group, and its container if it has one."""
    from .control import stop

    stop(os.path.join(run, "ctl"), grace)
    print("killed", flush=True)
    return 0


def venv(request_json: str) -> int:
    """Make (or reuse) a venv under ~/.runplz/venvs; the last line names it.
    Editable folders are installed from a snapshot kept beside the venv."""
    data = json.loads(request_json)
    root = os.path.abspath(data["root"])
    folder = os.path.join(root, data["key"][:24])
    if os.path.exists(os.path.join(folder, VENV_READY)):  # made whole before: nothing to load
        python = os.path.join(folder, "bin", "python")
        print(ENV_MARK + json.dumps({"python": python, "created": False}), flush=True)
        return 0
    return _make_venv(data, root)


def _make_venv(data: dict, root: str) -> int:
    import shutil

    from ..adapters.subprocess_runner import SubprocessRunner
    from ..adapters.venv_builder import VenvBuilder
    from ..domain.errors import BuildError, says_no_space
    from ..ports.python_env import EnvRequest, PipStep

    steps = tuple(PipStep(tuple(s["packages"]), s.get("index_url"), s.get("editable", False)) for s in data["steps"])
    builder = VenvBuilder(SubprocessRunner(), root, uv=shutil.which("uv"), snapshot_editable=True)
    full = []

    def show(line: str) -> None:
        if says_no_space(line):
            full.append(line)
        print(line, flush=True)

    try:
        env = builder.ensure(EnvRequest(data["key"], data["python"], steps), on_line=show)
    except (BuildError, OSError) as exc:
        if full or nospace(exc) or says_no_space(str(exc)):
            free = free_kb(root)
            message = f"no space left on device ({free} KiB free for {root})"
            answer = {"error": message, "nospace": True, "free_kb": free}
        elif isinstance(exc, BuildError):
            answer = {"error": str(exc)}
        else:
            raise
        print(ENV_MARK + json.dumps(answer), flush=True)
        return 1
    print(ENV_MARK + json.dumps({"python": env.python, "created": env.created}), flush=True)
    return 0


def _prune(runs: str) -> int:
    from .prune import prune

    count, freed = prune(runs)
    print(f"pruned {count} run folders, {freed} bytes", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: agent start|follow|kill|prune|guard|venv ...\n")
        return 2
    command, rest = argv[0], argv[1:]
    if command == "start" and len(rest) == 1:
        return start(rest[0])
    if command == "follow" and len(rest) in (2, 3):
        return follow(rest[0], int(rest[1]), float(rest[2]) if len(rest) == 3 else None)
    if command == "kill" and len(rest) in (1, 2):
        return kill(rest[0], float(rest[1]) if len(rest) == 2 else KILL_GRACE)
    if command == "prune" and len(rest) == 1:
        return _prune(rest[0])
    if command == "guard" and len(rest) >= 2:
        from .guard import guard

        return guard(float(rest[0]), rest[1:])
    if command == "venv" and len(rest) == 1:
        return venv(rest[0])
    sys.stderr.write(f"agent: bad arguments {argv!r}\n")
    return 2
