"""The task folders of a map's job array, as `ArrayJobs` (slurm_array.py) reads them.

- The remote programs: `WRITE` writes a run's files and task folders before ``sbatch``
  (one job's too, see slurm_jobs);
  `READ` reads the folders of the tasks that run or ended (one command per
  look) and clears a requeued task's last end.
- `Holds`: when an ended task may be settled. The cluster's shared file
  system may show a task's ``exit_code`` and ``result.json`` on the login
  node some seconds after Slurm says the task ended (NFS caches directory
  entries), and a preempted task of a ``--requeue`` array is PREEMPTED for a
  moment before Slurm queues it again. Such a task is held and read again on
  the next looks, for a grace counted on the follower's clock, before
  Slurm's own end stands.
"""

from __future__ import annotations

from typing import Iterable

from ..domain.slurm_state import JobState

LOG = "job.log"
LOG_LIMIT = 1 << 20  # at most this much of a task's log is written out (its end)
# Writes files (and makes folders) from JSON on stdin: {"dirs": [...], "files": {path: [text, mode]}}.
WRITE = (
    "import json, os, sys\n"
    "spec = json.load(sys.stdin)\n"
    "for folder in spec['dirs']:\n"
    "    os.makedirs(folder, exist_ok=True)\n"
    "for path, (text, mode) in spec['files'].items():\n"
    "    fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)\n"
    "    os.fchmod(fd, mode)\n"
    "    with os.fdopen(fd, 'w') as handle:\n"
    "        handle.write(text)\n"
    "    os.replace(path + '.tmp', path)\n"
)
# Reads task folders: argv = tasks folder, then words, each an index with an optional prefix:
# "e": Slurm ended it, read it all; "r": Slurm requeued it, remove its last run's exit code and
# result (its next run writes its own) and print nothing for it. Prints
# {index: {"code": int|None, "result": text|None, "out": bool, "ran": bool, "log": text}} for each
# task that has an exit code or was named ended; others are left out. "ran": its log exists
# (Slurm makes it when the task starts).
READ = (
    "import json, os, sys\n"
    "root, found = sys.argv[1], {}\n"
    "def text(path, limit=None):\n"
    "    try:\n"
    "        with open(path, 'rb') as handle:\n"
    "            if limit:\n"
    "                handle.seek(max(0, os.path.getsize(path) - limit))\n"
    "            return handle.read().decode('utf-8', 'replace')\n"
    "    except OSError:\n"
    "        return None\n"
    "for word in sys.argv[2:]:\n"
    "    kind, index = word[:1] if word[:1] in ('e', 'r') else '', word.lstrip('er')\n"
    "    folder = os.path.join(root, index)\n"
    "    if kind == 'r':\n"
    "        for name in ('exit_code', 'result.json'):\n"
    "            try:\n"
    "                os.remove(os.path.join(folder, name))\n"
    "            except OSError:\n"
    "                pass\n"
    "        continue\n"
    "    code = text(os.path.join(folder, 'exit_code'))\n"
    "    if code is None and kind != 'e':\n"
    "        continue\n"
    "    out = os.path.join(folder, 'out')\n"
    "    log = os.path.join(folder, 'job.log')\n"
    "    found[index] = {'code': int(code) if code and code.strip().isdigit() else None,\n"
    "        'result': text(os.path.join(folder, 'result.json')),\n"
    "        'out': os.path.isdir(out) and any(os.scandir(out)),\n"
    "        'ran': os.path.exists(log),\n"
    f"        'log': text(log, {LOG_LIMIT}) or ''}}\n"
    "json.dump(found, sys.stdout)\n"
)


def has_end(info: dict | None) -> bool:
    """Whether a task's folder shows an end of its own (its exit code or its result)."""
    return bool(info) and (info.get("code") is not None or bool(info.get("result")))


def ran(info: dict | None) -> bool:
    """Whether a task's folder shows that it started."""
    return bool(info) and (bool(info.get("ran")) or bool(info.get("out")) or has_end(info))


def lagging(state: JobState, info: dict | None) -> bool:
    """Slurm says the task ended by itself (COMPLETED, FAILED) but its folder
    shows neither its exit code nor its result yet."""
    return state.state in ("COMPLETED", "FAILED") and not has_end(info)


class Holds:
    """Which read tasks may be settled now: each is held for its state's
    `JobState.grace` (a lagging result, a PREEMPTED task of a ``requeue``
    array), from the look that first held it. A held task seen alive again is
    let go (`drop`)."""

    def __init__(self, requeue: bool) -> None:
        self._requeue = requeue
        self._since: dict[int, float] = {}

    def ready(self, index: int, state: JobState, info: dict, now: float) -> bool:
        grace = state.grace(info.get("code") is not None, bool(info.get("result")), self._requeue)
        since = self._since.setdefault(index, now)
        if grace and now - since < grace:
            return False
        self._since.pop(index, None)
        return True

    def drop(self, index: int) -> None:
        self._since.pop(index, None)

    @property
    def holding(self) -> bool:
        return bool(self._since)


def inputs_text(indices: Iterable[int]) -> str:
    """``input 3`` / ``inputs 1, 4, 7``."""
    found = sorted(indices)
    return ("input " if len(found) == 1 else "inputs ") + ", ".join(str(i) for i in found)
