"""``agent guard``: a job with a time limit where no supervisor watches it (local
Docker containers, local native runs). Fit to run as PID 1 (stdlib only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ..domain.remote_layout import EXIT_TIMED_OUT
from .control import STOP_GRACE, seconds, stop_group

# After passing on a stop signal: how long the job may take before its group is
# killed. Shorter than the local driver's own grace (5 s) before it kills the
# guard, so a job that ignores the signal never outlives its guard.
SIGNAL_GRACE = 3.0


def guard(limit: float, argv: list[str]) -> int:
    """Run ``argv`` in its own process group, stdio inherited, passing on TERM, INT
    and HUP to the group (and killing it `SIGNAL_GRACE` later if it is still
    there). At ``limit`` seconds (0: none) SIGTERM the group, 10 s
    grace, SIGKILL, exit 124. Else the child's exit code (128+N for signal N).
    Reaps every child, so orphans do not pile up as zombies under PID 1."""
    child = None
    early: list[int] = []
    asked: list[float] = []  # when a stop signal was passed on

    def forward(sig: int, _frame: object) -> None:
        if child is None:
            early.append(sig)
            return
        asked.append(time.monotonic())
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)  # before the child starts: it gets them back at their defaults
    try:
        child = subprocess.Popen(argv, start_new_session=True)
    except OSError as exc:
        sys.stderr.write(f"runplz: could not start the job: {exc}\n")
        return 127
    for sig in early:
        forward(sig, None)
    give_up = time.monotonic() + limit if limit > 0 else None
    while give_up is None or time.monotonic() < give_up:
        status = _reap(child.pid)
        if status is not None:
            child.returncode = code = os.waitstatus_to_exitcode(status)
            forward(signal.SIGKILL, None)  # what the job left running in its group ends with it
            return 128 - code if code < 0 else code
        if asked and time.monotonic() > asked[0] + SIGNAL_GRACE:
            forward(signal.SIGKILL, None)
            asked.clear()
        time.sleep(0.1)
    stop_group(child.pid, STOP_GRACE)
    while _reap(child.pid) is None:
        time.sleep(0.05)
    child.returncode = -signal.SIGKILL
    sys.stderr.write(f"runplz: the job ran past its time limit of {seconds(limit)}s and was stopped\n")
    sys.stderr.flush()
    return EXIT_TIMED_OUT


def _reap(pid: int) -> int | None:
    """Reap every exited child; the wait status of ``pid`` when it was among them."""
    found = None
    while True:
        try:
            done, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found if found is not None else 0
        if done == 0:
            return found
        if done == pid:
            found = status
