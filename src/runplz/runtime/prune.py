"""Deleting old run folders on a box (stdlib only).

The rule, for the run folders under one ``runs/`` folder, touching only those
owned by this user:

- a run still running (its supervisor is alive) is never touched;
- a finished run (``ctl/exit_code`` written, supervisor gone) loses its code
  copy (``repo/``) at once, and is deleted when it is not among the 10 most
  recently finished and either its outputs came back (the driver moves them
  home, so ``out/`` holds no file any more) or it finished more than 14 days
  ago;
- a folder with no ``ctl/supervisor.pid`` (an upload that never started, for
  example after a full disk) is deleted when older than 1 day.

A run whose supervisor died before recording an exit code is first stopped and
recorded (see `control.orphaned`), and then counts as finished.

How a run's state is told is ``state`` (default `box_state`: by its
supervisor); a scheduler's runs have no supervisor here and bring their own
(runtime/slurm_prune.py). The rule stays this one.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from typing import Callable

from .basis import rmtree
from .control import alive, orphaned, pid_in

KEEP_FINISHED = 10
KEEP_DAYS = 14
KEEP_UNSTARTED_DAYS = 1
_DAY = 86400.0

# A run folder's state: ("unstarted", 0), ("running", 0), ("finished", when it
# ended: a wall-clock time) or ("unknown", 0): left alone.
State = Callable[[str], "tuple[str, float]"]


def box_state(path: str) -> tuple[str, float]:
    """A box run's state by its supervisor (a dead one's run is stopped and
    recorded first, see `control.orphaned`)."""
    ctl = os.path.join(path, "ctl")
    supervisor = pid_in(os.path.join(ctl, "supervisor.pid"))
    if supervisor is None:
        return "unstarted", 0.0
    if alive(supervisor):
        return "running", 0.0
    orphaned(ctl)
    try:
        return "finished", os.path.getmtime(os.path.join(ctl, "exit_code"))
    except OSError:
        return "unknown", 0.0


def prune(runs: str, state: State = box_state) -> tuple[int, int]:
    """Delete the run folders the rule allows: how many, and the bytes they held.
    Does nothing while another prune of ``runs`` is under way."""
    if not os.path.isdir(runs):
        return 0, 0
    with open(os.path.join(runs, ".prune.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0, 0
        count = freed = 0
        for repo in finished_code(runs, state):
            freed += _size(repo)
            rmtree(repo)
        for path in doomed(runs, time.time(), state):
            size = _size(path)
            rmtree(path)
            if not os.path.lexists(path):
                count, freed = count + 1, freed + size
    return count, freed


def doomed(runs: str, now: float, state: State = box_state) -> list[str]:
    """The run folders under ``runs`` that the rule deletes at wall-clock time ``now``."""
    finished, found = [], []
    for name in sorted(os.listdir(runs)):
        path = os.path.join(runs, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        kind, ended = state(path)
        if kind == "unstarted" and now - info.st_mtime > KEEP_UNSTARTED_DAYS * _DAY:
            found.append(path)
        elif kind == "finished":
            finished.append((ended, path))
    finished.sort(reverse=True)
    for ended, path in finished[KEEP_FINISHED:]:
        if not _outputs_waiting(path) or now - ended > KEEP_DAYS * _DAY:
            found.append(path)
    return found


def finished_code(runs: str, state: State = box_state) -> list[str]:
    """The code copies (``repo/``) of finished runs under ``runs``: a job that has
    ended needs its code no more."""
    found = []
    for name in sorted(os.listdir(runs)):
        path = os.path.join(runs, name)
        repo = os.path.join(path, "repo")
        try:
            if os.lstat(repo).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if state(path)[0] == "finished":
            found.append(repo)
    return found


def _outputs_waiting(path: str) -> bool:
    """Whether a run's outputs are still waiting: in its ``out/``, or in a job
    array's task folders (``tasks/<index>/out/``)."""
    if _holds_files(os.path.join(path, "out")):
        return True
    tasks = os.path.join(path, "tasks")
    try:
        names = os.listdir(tasks)
    except OSError:
        return False
    return any(_holds_files(os.path.join(tasks, name, "out")) for name in names)


def _holds_files(folder: str) -> bool:
    """Whether outputs are still waiting in ``folder`` (regular files only)."""
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                if stat.S_ISREG(os.lstat(os.path.join(parent, name)).st_mode):
                    return True
            except OSError:
                continue
    return False


def _size(path: str) -> int:
    total = 0
    for folder, dirs, names in os.walk(path):
        for name in dirs + names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass
    return total
