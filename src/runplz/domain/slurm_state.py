"""A Slurm job's state as squeue and sacct tell it (pure parsing and mapping)."""

from __future__ import annotations

from typing import Iterable

import attrs

from .errors import RunplzError

# squeue's format for one job: id, state, reason (tab-separated: reasons hold spaces).
SQUEUE_FORMAT = "%i\t%T\t%r"
SACCT_FIELDS = ("JobID", "State", "ExitCode")

ENDED = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
    "DEADLINE", "PREEMPTED", "REVOKED",
})
# Slurm stopped the job itself: no exit code or result of its own is coming.
KILLED = frozenset({
    "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED",
})
# How long a follower reads a job's end again before Slurm's own end stands:
SETTLE_GRACE = 10.0  # its exit code and result may show late on the login node (NFS caches entries)
REQUEUE_GRACE = 60.0  # a PREEMPTED job that may be requeued (--requeue) is queued again meanwhile
# How runplz names an ended job that left no exit code of its own.
_WHY = {
    "CANCELLED": "was cancelled", "TIMEOUT": "ran past its --time", "NODE_FAIL": "lost its node",
    "OUT_OF_MEMORY": "ran out of memory (--mem)", "BOOT_FAIL": "could not boot its node",
    "DEADLINE": "passed its deadline", "PREEMPTED": "was preempted", "REVOKED": "was revoked",
}


class SchedulerError(RunplzError):
    """The scheduler refused a request (sbatch's, scancel's words); one line."""


@attrs.frozen
class JobState:
    """One job as the scheduler sees it. ``state``: a Slurm state name
    (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...), or
    UNKNOWN while neither squeue nor sacct lists it; ``reason``: squeue's
    reason for a waiting job (Priority, Resources, ...); ``exit_code``: the
    batch script's exit code once it ended (128+N for signal N)."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: int | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def waiting(self) -> bool:
        """Queued, not running: also a requeued job (REQUEUED in sacct for a moment,
        then PENDING with reason BeginTime in squeue until Slurm lets it start again)."""
        return self.state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING")

    def why(self) -> str:
        """An ended job's end, in words."""
        return _WHY.get(self.state, f"ended {self.state}")

    def grace(self, has_code: bool, has_result: bool, requeue: bool) -> float:
        """Seconds a follower keeps reading this ended job's end again (on its own
        clock, from the look that first saw it) before Slurm's end stands: a
        PREEMPTED one of a ``--requeue`` job (``requeue``) without an exit code
        may yet be queued again (`REQUEUE_GRACE`); one without a visible result
        that Slurm did not stop itself may have it show late (`SETTLE_GRACE`)."""
        if requeue and self.state == "PREEMPTED" and not has_code:
            return REQUEUE_GRACE
        if has_result or self.state in KILLED:
            return 0.0
        return SETTLE_GRACE


def _first_word(state: str) -> str:
    return state.split()[0].rstrip("+") if state.split() else ""


def _of(listed: str, job_id: str) -> bool:
    """Whether squeue's or sacct's id ``listed`` is job ``job_id`` or one of its array tasks."""
    return listed == job_id or listed.startswith(job_id + "_")


def parse_squeue(text: str, job_id: str) -> JobState | None:
    """``squeue -h -j ID -o SQUEUE_FORMAT``'s line for ``job_id`` (for an array job:
    its first task listed); None when it is not listed."""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and _of(parts[0].strip(), job_id):
            reason = parts[2].strip() if len(parts) > 2 else ""
            return JobState(job_id, _first_word(parts[1]), "" if reason == "None" else reason)
    return None


def exit_code(text: str) -> int | None:
    """sacct's ExitCode ``CODE:SIGNAL`` as one exit code (128+SIGNAL when a signal ended it)."""
    code, _, signal = text.strip().partition(":")
    if not code.isdigit():
        return None
    if signal.isdigit() and int(signal) and not int(code):
        return 128 + int(signal)
    return int(code)


def parse_sacct(text: str, job_id: str) -> JobState | None:
    """``sacct -n -P -X -j ID -o JobID,State,ExitCode``'s record of ``job_id``
    (the last one: a requeued job has one per start); None when absent."""
    found = None
    tasks: list[JobState] = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) >= 3 and _of(parts[0].strip(), job_id):
            state = _first_word(parts[1])
            record = JobState(job_id, state, "", exit_code(parts[2]) if state in ENDED else None)
            if parts[0].strip() == job_id:
                found = record
            else:
                tasks.append(record)
    if found is not None or not tasks:
        return found
    live = [task for task in tasks if not task.ended]  # an array job: live while one task is
    return live[0] if live else tasks[-1]


def task_indices(listed: str, job_id: str) -> list[int]:
    """The array task indices an id of squeue or sacct names for job ``job_id``:
    ``123_4`` -> [4]; ``123_[0-3,7%2]`` -> [0, 1, 2, 3, 7] (tasks not started yet); else []."""
    prefix = job_id + "_"
    if not listed.startswith(prefix):
        return []
    rest = listed[len(prefix):]
    if rest.isdigit():
        return [int(rest)]
    if not (rest.startswith("[") and rest.endswith("]")):
        return []
    found: list[int] = []
    for part in rest[1:-1].split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            found.extend(range(int(low), int(high or low) + 1))
    return found


def parse_tasks(squeue: str, sacct: str, job_id: str, count: int) -> list[JobState]:
    """Tasks 0..count-1 of array job ``job_id``, from ``squeue -r``'s lines (live
    tasks win) and then sacct's (ended ones; the last record of a task wins);
    a task listed in neither is UNKNOWN. Each state's ``job_id`` is ``ID_INDEX``."""
    found: dict[int, JobState] = {}
    for line in sacct.splitlines():
        parts = line.split("|")
        if len(parts) < 3:
            continue
        state = _first_word(parts[1])
        for index in task_indices(parts[0].strip(), job_id):
            found[index] = JobState(f"{job_id}_{index}", state, "", exit_code(parts[2]) if state in ENDED else None)
    for line in squeue.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        state = _first_word(parts[1])
        reason = parts[2].strip() if len(parts) > 2 else ""
        for index in task_indices(parts[0].strip(), job_id):
            if state not in ENDED:
                found[index] = JobState(f"{job_id}_{index}", state, "" if reason == "None" else reason)
    return [found.get(index, JobState(f"{job_id}_{index}", "UNKNOWN")) for index in range(count)]


def parse_job_id(text: str) -> str | None:
    """``sbatch --parsable``'s answer (``ID`` or ``ID;CLUSTER``)."""
    for line in reversed(text.strip().splitlines()):
        first = line.strip().split(";")[0]
        if first.isdigit():
            return first
    return None


# A run's record notes its job so that `runplz down` can cancel it after the driver died.
_NOTE = "slurm job "


def job_note(job_id: str, where: str) -> str:
    return f"{_NOTE}{job_id} submitted on {where}"


def noted_job(texts: Iterable[str]) -> str | None:
    """The job id a run's notes name (the last one)."""
    found = None
    for text in texts:
        if text.startswith(_NOTE):
            word = text[len(_NOTE):].split(" ")[0]
            if word.isdigit():
                found = word
    return found
