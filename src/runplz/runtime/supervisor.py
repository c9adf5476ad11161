"""The detached supervisor of a run: runs the job, enforces its time limit even
with no driver left, records how it ended (stdlib only)."""

from __future__ import annotations

import os
import subprocess
import threading

from ..domain.remote_layout import EXIT_TIMED_OUT
from .control import STOP_GRACE, fill, nospace, remove_container, reserve, seconds, stop, stop_group
from .files import unlink, write



def detach(ctl: str, spec: dict) -> str:
    """Start the supervisor, detached. Its report: the job's pgid, ``0`` (the job
    did not start) or ``nospace``."""
    read_end, write_end = os.pipe()

    def supervise() -> None:
        os.close(read_end)
        _supervise(ctl, spec, write_end)

    in_background(supervise)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        return pipe.readline().strip()


def in_background(work) -> None:
    """Run ``work()`` in a detached process (double fork, own session, no stdio)
    and return at once."""
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            work()
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def _supervise(ctl: str, spec: dict, report: int) -> None:
    env = {**os.environ, **spec.get("env", {})}
    try:
        write(os.path.join(ctl, "supervisor.pid"), str(os.getpid()))
        for name in ("exit_code", "timed_out"):
            reserve(ctl, name)
        log = open(os.path.join(ctl, "job.log"), "ab", buffering=0)
    except OSError as exc:
        os.write(report, b"nospace\n" if nospace(exc) else b"0\n")
        return
    with log:
        try:
            job = subprocess.Popen(
                spec["argv"], cwd=spec.get("cwd"), env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            log.write(f"runplz: could not start the job: {exc}\n".encode())
            fill(ctl, "exit_code", "127")
            os.write(report, b"0\n")
            return
        try:
            write(os.path.join(ctl, "pgid"), str(job.pid))
        except OSError as exc:
            stop_group(job.pid, 0)
            job.wait()
            os.write(report, b"nospace\n" if nospace(exc) else b"0\n")
            return
        os.write(report, f"{job.pid}\n".encode())
        os.close(report)
        code = _watch(ctl, job, spec.get("limit"))
        stop_group(job.pid, 0)  # what the job left running in its group ends with it
    unlink(os.path.join(ctl, ".timed_out"))
    fill(ctl, "exit_code", str(code))
    remove_container(ctl, 0)  # a container its dead client left behind (after the record: off the driver's path)


def _watch(ctl: str, job: subprocess.Popen, limit: float | None) -> int:
    """The job's exit code (128+N for signal N); at ``limit`` seconds a watchdog
    stops the run like ``kill`` does, writes ``timed_out``: 124."""
    fired = threading.Event()

    def watchdog() -> None:
        fired.set()
        stop(ctl, STOP_GRACE)

    timer = threading.Timer(float(limit), watchdog) if limit else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    code = job.wait()
    if timer is not None:
        timer.cancel()
    if not fired.is_set():
        return 128 - code if code < 0 else code
    timer.join()
    fill(ctl, "timed_out", seconds(limit) + "\n")
    return EXIT_TIMED_OUT
