"""What the cluster says about a Slurm run whose driver is gone. Pure.

A Slurm run's record notes its job id (`slurm_state.job_note`); its run folder
is ``.runplz/slurm-runs/<run>/`` under the cluster's workdir (the login's
home unless ``SlurmConfig.workdir`` says otherwise; a record that notes the
folder itself, `folder_note`, is taken at its word). `runplz ps` and
`status` ask, only reading, over one connection per login node:

- the run folder (`FOLDER_SCRIPT`, one ``python3`` for all the node's runs):
  is it there, are outputs left in its ``out/``, is it a job array (a
  ``tasks/<index>/`` folder per input) and which tasks left outputs;
- the scheduler: squeue while the job is queued or runs (PENDING with its
  reason, RUNNING), else sacct (its end and exit code); for an array, every
  task, shown as a count by state (`array_view`).

`runplz down` reads the same folder to bring the outputs home where the live
driver would have put them: one job's ``out/`` into the run's outputs folder,
each task's ``tasks/<index>/out/`` into ``<outputs>/<index>/``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Iterable, Sequence

import attrs

from .remote_layout import OUT, ROOT
from .run_liveness import BackendView
from .slurm_state import JobState

RUNS = f"{ROOT}/slurm-runs"  # the slurm backend's run folders, under the workdir
TASKS = "tasks"  # inside an array's run folder: one folder per input, by index
LOCAL_TARGET = "local"  # a Slurm run's record target when its driver ran on the login node itself
FOLDER_MARK = "@@runplz-slurm-ps "
_FOLDER_NOTE = "slurm run folder "

# Reads each run folder named in argv (relative to the login folder, or
# absolute) and prints one marked JSON line per folder; it changes nothing.
FOLDER_SCRIPT = r"""
import json, os, sys
def has_file(top):
    for _, _, files in os.walk(top):
        if files:
            return True
    return False
for folder in sys.argv[1:]:
    seen = {"folder": folder, "found": os.path.isdir(folder)}
    if seen["found"]:
        seen["out"] = has_file(os.path.join(folder, "out"))
        tasks = os.path.join(folder, "tasks")
        if os.path.isdir(tasks):
            names = [n for n in os.listdir(tasks)
                     if n.isascii() and n.isdigit() and os.path.isdir(os.path.join(tasks, n))]
            seen["tasks"] = 1 + max((int(n) for n in names), default=-1)
            seen["left"] = sorted(int(n) for n in names if has_file(os.path.join(tasks, n, "out")))
    print("@@runplz-slurm-ps " + json.dumps(seen), flush=True)
"""


def folder_argv(folders: Iterable[str]) -> list[str]:
    """The read-only command that reports on ``folders``; it reads `FOLDER_SCRIPT` on its stdin."""
    return ["python3", "-", *folders]


def folder_note(folder: str) -> str:
    """The note a driver may record to name its run folder (absolute, on the cluster)."""
    return f"{_FOLDER_NOTE}{folder}"


def run_folder(run: str, notes: Iterable[str]) -> str:
    """The run's folder on the cluster: the one its record notes (the last), else
    the default one (``RUNS/<run>``, relative to the login's home)."""
    found = f"{RUNS}/{run}"
    for text in notes:
        if text.startswith(_FOLDER_NOTE) and text[len(_FOLDER_NOTE):].strip():
            found = text[len(_FOLDER_NOTE):].strip()
    return found


def task_out(folder: str, index: int) -> str:
    return f"{folder}/{TASKS}/{index}/{OUT}"


@attrs.frozen
class SlurmFolder:
    """A run folder as `FOLDER_SCRIPT` found it. ``tasks``: how many task
    folders an array has (None: one job); ``left``: the tasks whose ``out/``
    still holds files; ``outputs_left``: the one job's ``out/`` does."""

    found: bool
    outputs_left: bool = False
    tasks: int | None = None
    left: tuple[int, ...] = ()


def parse_folders(stdout: str) -> dict[str, SlurmFolder]:
    """The `SlurmFolder` of each folder `FOLDER_SCRIPT` reported on, by the name it
    was given; other lines, and lines it did not write, are ignored."""
    found: dict[str, SlurmFolder] = {}
    for line in stdout.splitlines():
        if not line.startswith(FOLDER_MARK):
            continue
        try:
            data = json.loads(line[len(FOLDER_MARK):])
            folder = data["folder"]
            tasks = data.get("tasks")
            left = tuple(int(i) for i in data.get("left") or () if isinstance(i, int) and not isinstance(i, bool))
            if not isinstance(folder, str) or (tasks is not None and (not isinstance(tasks, int) or tasks < 0)):
                continue
            found[folder] = SlurmFolder(bool(data.get("found")), bool(data.get("out")), tasks, left)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def _down(run: str) -> str:
    return f"run `runplz down {run}`"


def _reason(state: JobState) -> str:
    return f" ({state.reason})" if state.reason else ""


def job_view(run: str, job: str, state: JobState, folder: SlurmFolder | None) -> BackendView:
    """One job's view: queued or running (squeue), or its end (sacct)."""
    if state.state == "UNKNOWN":
        return BackendView(f"Slurm lists no job {job}")
    if not state.ended:
        return BackendView(f"Slurm job {job} {state.state}{_reason(state)}", True, f"cancel it: `runplz down {run}`")
    code = "" if state.exit_code is None else f" (exit {state.exit_code})"
    left = ", outputs not collected" if folder is not None and folder.outputs_left else ""
    return BackendView(f"Slurm job {job} {state.state}{code}, driver gone{left}", False, _down(run))


def _counts(tasks: Sequence[JobState]) -> str:
    """``2 RUNNING, 3 PENDING (JobArrayTaskLimit), 1 COMPLETED``: live states first, each
    waiting state with its tasks' most common reason."""
    counts = Counter(task.state for task in tasks)
    order = sorted(counts, key=lambda s: (s in ("UNKNOWN",), JobState("", s).ended, -counts[s], s))
    parts = []
    for name in order:
        reasons = Counter(t.reason for t in tasks if t.state == name and t.reason)
        shown = f" ({reasons.most_common(1)[0][0]})" if reasons else ""
        parts.append(f"{counts[name]} {name}{shown}")
    return ", ".join(parts)


def array_view(run: str, job: str, tasks: Sequence[JobState], folder: SlurmFolder | None) -> BackendView:
    """A job array's view: its tasks counted by state."""
    size = f"{len(tasks)} task{'s' if len(tasks) != 1 else ''}"
    if not tasks or all(task.state == "UNKNOWN" for task in tasks):
        return BackendView(f"Slurm lists no task of job array {job} ({size})")
    counted = _counts(tasks)
    if any(not task.ended and task.state != "UNKNOWN" for task in tasks):
        return BackendView(f"Slurm job array {job} ({size}): {counted}", True, f"cancel it: `runplz down {run}`")
    waiting = len(folder.left) if folder is not None else 0
    left = f", outputs of {waiting} task{'s' if waiting != 1 else ''} not collected" if waiting else ""
    return BackendView(f"Slurm job array {job} ({size}) ended: {counted}, driver gone{left}", False, _down(run))


NO_JOB = BackendView("no Slurm job was submitted", live=False)

