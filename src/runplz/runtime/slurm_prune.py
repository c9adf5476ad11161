"""Pruning a Slurm workdir's run folders (``.runplz/slurm-runs``; stdlib only).

The rule is the box's (`runtime.prune`: a finished run loses its ``repo/`` at
once, and goes when it is not among the 10 most recently finished and either
its outputs came home or it finished more than 14 days ago; a folder never
submitted goes after 1 day). Only how a run's state is told differs: a Slurm
run has no supervisor on the login node, so here a run folder is

- running (never touched) while squeue lists a job of this user whose working
  folder is its ``repo/`` (pending or running), while a driver follows it
  (``ctl/following``, which the driver touches as it follows, is younger than
  `RECENT`), or while its job script, log or exit code is younger than
  `RECENT` (a job just submitted, or one that just ended and whose driver is
  reading its end);
- unstarted without ``ctl/job.sh`` (an upload that was never submitted);
- finished once its job wrote its own end (``ctl/exit_code``; for a job array,
  every task folder's ``exit_code``), at the newest of those files' times;
- otherwise unknown, and kept: squeue may not list a live job (a partition
  hidden from this user, another cluster sharing this $HOME, a job held for
  long), so a run without an end of its own counts as finished only once
  nothing in it has changed for `ABANDONED` (a job Slurm killed before its
  script wrote its code; a driver that died and no `runplz down`).

When squeue cannot be asked, nothing is pruned. Run on the login node, in the
workdir, as ``python3 -c <load this> <bundle> <runs> [--background]``
(services/slurm_jobs.py does).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from typing import Collection

RECENT = 3600.0  # seconds
ABANDONED = 30 * 86400.0  # seconds untouched before a run without an end of its own counts as finished
_FILES = ("following", "job.sh", "job.log", "exit_code")


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _latest(path: str) -> float:
    """The newest time among the run's ctl files and its tasks' logs and exit codes."""
    ctl = os.path.join(path, "ctl")
    times = [_mtime(os.path.join(ctl, name)) for name in _FILES]
    tasks = os.path.join(path, "tasks")
    try:
        names = os.listdir(tasks)
    except OSError:
        names = []
    for name in names:
        times += [_mtime(os.path.join(tasks, name, "job.log")), _mtime(os.path.join(tasks, name, "exit_code"))]
    return max(times)


def _ended(path: str) -> bool:
    """Whether the run's job wrote its own end: ``ctl/exit_code``, or for a job
    array an ``exit_code`` in every task folder."""
    if os.path.exists(os.path.join(path, "ctl", "exit_code")):
        return True
    tasks = os.path.join(path, "tasks")
    try:
        names = [name for name in os.listdir(tasks) if name.isdigit()]
    except OSError:
        return False
    return bool(names) and all(os.path.exists(os.path.join(tasks, name, "exit_code")) for name in names)


def slurm_state(live: Collection[str], now: float):
    """A run folder's state for `runtime.prune`, with ``live`` the run folder
    names squeue lists."""

    def state(path: str) -> tuple[str, float]:
        if os.path.basename(path) in live:
            return "running", 0.0
        latest = _latest(path)
        if now - latest < RECENT:
            return "running", 0.0
        if not os.path.exists(os.path.join(path, "ctl", "job.sh")):
            return "unstarted", 0.0
        if _ended(path) or now - latest >= ABANDONED:
            return "finished", latest
        return "unknown", 0.0

    return state


def squeue_folders() -> str | None:
    """This user's jobs' working folders, one a line (squeue ``%Z``, every
    partition, hidden ones too, by uid); None when squeue cannot be asked."""
    try:
        done = subprocess.run(
            ["squeue", "-h", "-a", "-u", str(os.getuid()), "-o", "%Z"], capture_output=True, text=True, timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def live_names(runs: str, folders: str) -> set[str]:
    """The names of the run folders under ``runs`` that squeue's working folders
    (``.../<runs' name>/<run>/repo``) name. Matching by name only, whatever the
    path before it (a link, another spelling of $HOME), errs on the side of
    keeping."""
    kind = os.path.basename(os.path.abspath(runs).rstrip("/"))
    found = set()
    for line in folders.splitlines():
        parts = line.strip().rstrip("/").split("/")
        if len(parts) >= 3 and parts[-1] == "repo" and parts[-3] == kind:
            found.add(parts[-2])
    return found


def can_prune() -> bool:
    """Whether this runplz's `runtime.prune` takes another liveness (``state=``)."""
    from . import prune

    return "state" in inspect.signature(prune.prune).parameters


def prune_runs(runs: str, folders: str | None, now: float | None = None) -> tuple[int, int] | None:
    """Prune ``runs`` by the box rule with Slurm's liveness (``folders``: squeue's
    working folders); None when nothing could be pruned (no squeue answer, or a
    runplz whose prune cannot take another liveness)."""
    from . import prune

    if folders is None or not can_prune():
        return None
    when = time.time() if now is None else now
    return prune.prune(runs, state=slurm_state(live_names(runs, folders), when))


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2 or argv[1:] not in ([], ["--background"]):
        sys.stderr.write("usage: slurm_prune RUNS [--background]\n")
        return 2
    runs = argv[0]

    def work() -> None:
        done = prune_runs(runs, squeue_folders() if can_prune() else None)
        if done is None:
            print("pruned nothing (squeue did not answer, or this runplz cannot prune Slurm runs)", flush=True)
        else:
            print(f"pruned {done[0]} run folders, {done[1]} bytes", flush=True)

    if argv[1:] == ["--background"]:
        from .supervisor import in_background

        in_background(work)
    else:
        work()
    return 0
