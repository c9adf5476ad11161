"""A `BatchScheduler` that runs batch scripts on this machine, one process each.

Stands in for a Slurm cluster in tests: it reads the script's ``#SBATCH``
lines that matter to a single node (``--chdir``, ``--output``, ``--time``,
``--cpus-per-task``, ``--gres``/``--gpus``, ``--hold``, ``--begin``, ``--array``) and runs the
script with bash in its own process group, with ``SLURM_JOB_ID`` set. An ``--array=0-7%2`` job is
one job of tasks ``ID_0``..``ID_7``, at most 2 running at once, each with ``SLURM_ARRAY_TASK_ID``
and ``SLURM_ARRAY_JOB_ID`` (``%A``, ``%a`` in ``--output``). Jobs wait (PENDING,
reason Resources) while the node's ``cpus`` are taken; ``--hold`` waits for
good (JobHeldUser), ``--begin`` with a time to come waits (BeginTime). More
GPUs than ``gpus`` is refused at submit; a GPU job sees CUDA_VISIBLE_DEVICES. A job
past its ``--time`` ends TIMEOUT. Nothing of the script's environment comes
from its command line.

`requeue` is ``scontrol requeue`` (what the real cluster does, per the
contract suite): a ``--requeue`` job or array task that runs (or ended) is
killed and PENDING again (reason BeginTime for ``requeue_delay`` seconds),
then runs again from its start with ``SLURM_RESTART_COUNT`` set; a
``--no-requeue`` one is refused. `preempt` is a preemption: a ``--requeue``
job is requeued the same way (PREEMPTED for ``shown_for`` seconds first, as
sacct shows it while squeue lists it nowhere); any other ends PREEMPTED.
"""

from __future__ import annotations

import itertools
import math
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time

import attrs

from ..domain.slurm_state import JobState, SchedulerError

_ids = itertools.count(1000)


@attrs.define
class _Job:
    id: str
    script: str
    cwd: str
    output: str
    cpus: int
    limit: float | None
    hold: str = ""  # a reason it waits for good
    gpus: int = 0
    process: subprocess.Popen | None = None
    state: str = "PENDING"
    exit_code: int | None = None
    started: float = 0.0
    array: str = ""  # the array job this is a task of
    index: int = -1
    array_limit: int = 0  # at most this many tasks of its array run at once (0: no limit)
    own_id: str = ""  # SLURM_JOB_ID of a task (each task has one of its own)
    requeue: bool = False  # --requeue: it may be queued again (preemption, `requeue`)
    restarts: int = 0  # how often it was requeued (SLURM_RESTART_COUNT of its next run)
    eligible: float = 0.0  # time.monotonic() before which a requeued job may not start again
    back_at: float = 0.0  # a PREEMPTED job that is requeued: when it is PENDING again (0: never)


def _directives(script: str) -> dict[str, str]:
    found = {}
    for line in script.splitlines():
        if line.startswith("#SBATCH"):
            for word in shlex.split(line[len("#SBATCH"):]):
                name, _, value = word.lstrip("-").partition("=")
                found[name] = value
        elif line.strip() and not line.startswith("#"):
            break
    return found


def _gpus(text: str | None, gres: bool) -> int | None:
    """How many GPUs ``--gres=gpu[:TYPE]:N`` or ``--gpus=[TYPE:]N`` asks for; None: not a GPU request."""
    if text is None:
        return 0
    parts = text.split(":")
    if gres and parts[0] != "gpu":
        return None
    count = parts[-1] if len(parts) > (1 if gres else 0) else "1"
    return int(count) if count.isdigit() else None


def _array(text: str) -> tuple[list[int], int]:
    """``--array=0-7%2`` / ``1,3,5-6``: the task indices and the running limit (0: none)."""
    spec, _, limit = text.partition("%")
    indices: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise SchedulerError(f"sbatch refused the job: Invalid job array specification: {text}")
        indices.extend(range(int(low), int(high or low) + 1))
    if not indices or (limit and not limit.isdigit()):
        raise SchedulerError(f"sbatch refused the job: Invalid job array specification: {text}")
    return sorted(set(indices)), int(limit or 0)


def _seconds(text: str) -> float:
    """Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, minutes, seconds = 0, parts[0], (parts[1] if len(parts) > 1 else 0)
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


class FakeSlurm:
    def __init__(
        self, cpus: int = 4, gpus: int = 2, folder: str | None = None, name: str = "fake slurm",
        requeue_delay: float = 0.5,
    ) -> None:
        self.name = name
        self.requeue_delay = requeue_delay
        self.cpus = cpus
        self.gpus = gpus
        self._folder = folder or tempfile.mkdtemp(prefix="runplz-fake-slurm-")
        os.makedirs(self._folder, exist_ok=True)
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self.submitted: list[str] = []  # the scripts, in order (what a test may read back)

    def submit(self, script: str) -> str:
        options = _directives(script)
        cpus = math.ceil(float(options.get("cpus-per-task") or 1))
        gpus = _gpus(options.get("gres") or options.get("gpus"), "gres" in options)
        if gpus is None:
            raise SchedulerError(f"sbatch on {self.name} refused the job: Invalid generic resource (gres) specification")
        if gpus > self.gpus:
            raise SchedulerError(f"sbatch on {self.name} refused the job: Requested node configuration is not available")
        job = str(next(_ids))
        path = os.path.join(self._folder, f"{job}.sh")
        with open(path, "w") as handle:
            handle.write(script)
        hold = "JobHeldUser" if "hold" in options else ("BeginTime" if options.get("begin", "now") != "now" else "")
        cwd = options.get("chdir") or os.getcwd()
        limit = _seconds(options["time"]) if options.get("time") else None
        requeue = "requeue" in options and "no-requeue" not in options
        if "array" in options:
            indices, most = _array(options["array"])
            output = options.get("output") or os.path.join(cwd, "slurm-%A_%a.out")
            tasks = []
            for index in indices:
                own = str(next(_ids))
                place = output.replace("%A", job).replace("%a", str(index)).replace("%j", own)
                tasks.append(_Job(f"{job}_{index}", path, cwd, place, cpus, limit, hold, gpus,
                                  array=job, index=index, array_limit=most, own_id=own, requeue=requeue))
        else:
            output = (options.get("output") or os.path.join(cwd, "slurm-%j.out")).replace("%j", job)
            tasks = [_Job(job, path, cwd, output, cpus, limit, hold, gpus, requeue=requeue)]
        with self._lock:
            for task in tasks:
                self._jobs[task.id] = task
            self.submitted.append(script)
            self._schedule()
        return job

    def _used(self) -> int:
        return sum(j.cpus for j in self._jobs.values() if j.state == "RUNNING")

    def _schedule(self) -> None:
        """Settle ended jobs, stop those past their time, start what fits (in submit order)."""
        now = time.monotonic()
        for job in self._jobs.values():
            if job.state == "PREEMPTED" and job.back_at and now >= job.back_at:
                self._pending_again(job, now)
            if job.state != "RUNNING" or job.process is None:
                continue
            code = job.process.poll()
            if code is None and job.limit is not None and now - job.started > job.limit:
                self._kill(job)
                job.state, job.exit_code = "TIMEOUT", 0
            elif code is not None:
                job.exit_code = code if code >= 0 else 128 - code
                job.state = "COMPLETED" if code == 0 else "FAILED"
        for job in self._jobs.values():
            if job.state == "PENDING" and not job.hold and now >= job.eligible and self._used() + job.cpus <= self.cpus:
                if job.array_limit and self._running_of(job.array) >= job.array_limit:
                    continue
                self._start(job)

    def _running_of(self, array: str) -> int:
        return sum(1 for j in self._jobs.values() if j.array == array and j.state == "RUNNING")

    def _of(self, job: str) -> list[_Job]:
        """The job, or every task of the array job ``job``."""
        if job in self._jobs:
            return [self._jobs[job]]
        return [j for j in self._jobs.values() if j.array == job]

    def _start(self, job: _Job) -> None:
        try:
            os.makedirs(job.cwd, exist_ok=True)
            with open(job.output, "ab") as log:
                env = {**os.environ, "SLURM_JOB_ID": job.own_id or job.id, "SLURM_CPUS_PER_TASK": str(job.cpus)}
                if job.array:
                    env.update(SLURM_ARRAY_JOB_ID=job.array, SLURM_ARRAY_TASK_ID=str(job.index))
                if job.restarts:
                    env["SLURM_RESTART_COUNT"] = str(job.restarts)
                if job.gpus:
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(job.gpus))
                job.process = subprocess.Popen(
                    ["bash", job.script], cwd=job.cwd, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )
        except OSError:
            job.state, job.exit_code = "FAILED", 1
            return
        job.state, job.started = "RUNNING", time.monotonic()

    def _kill(self, job: _Job) -> None:
        if job.process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(job.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                job.process.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                continue

    def _state(self, found: _Job, job: str) -> JobState:
        if found.state != "PENDING":
            return JobState(job, found.state, "", found.exit_code)
        if found.hold:
            return JobState(job, "PENDING", found.hold)
        if time.monotonic() < found.eligible:
            return JobState(job, "PENDING", "BeginTime")
        if found.array_limit and self._running_of(found.array) >= found.array_limit:
            return JobState(job, "PENDING", "JobArrayTaskLimit")
        full = self._used() + found.cpus > self.cpus
        return JobState(job, "PENDING", "Resources" if full else "Priority")

    def state(self, job: str) -> JobState:
        with self._lock:
            self._schedule()
            found = self._of(job)
            if not found:
                return JobState(job, "UNKNOWN")
            live = [task for task in found if task.state in ("PENDING", "RUNNING")]
            return self._state((live or found)[0] if live else found[-1], job)

    def tasks(self, job: str, count: int) -> list[JobState]:
        with self._lock:
            self._schedule()
            by_index = {task.index: task for task in self._jobs.values() if task.array == job}
            return [
                self._state(by_index[index], f"{job}_{index}") if index in by_index
                else JobState(f"{job}_{index}", "UNKNOWN")
                for index in range(count)
            ]

    def cancel(self, job: str) -> None:
        with self._lock:
            for found in self._of(job):
                if found.state not in ("PENDING", "RUNNING") and not found.back_at:
                    continue
                self._kill(found)
                found.state, found.exit_code, found.back_at = "CANCELLED", 0, 0.0
            self._schedule()

    def _pending_again(self, job: _Job, now: float) -> None:
        job.state, job.exit_code, job.process, job.back_at = "PENDING", None, None, 0.0
        job.restarts += 1
        job.eligible = now + self.requeue_delay

    def requeue(self, job: str) -> None:
        """``scontrol requeue``: each running or ended task of ``job`` (or the job)
        is stopped and queued again; `SchedulerError` for a ``--no-requeue`` one."""
        with self._lock:
            self._schedule()
            for found in self._of(job):
                if not found.requeue:
                    raise SchedulerError(
                        f"scontrol requeue on {self.name} failed: {found.id}: Requested operation is presently disabled"
                    )
                if found.state in ("PENDING", "PREEMPTED"):
                    continue
                self._kill(found)
                self._pending_again(found, time.monotonic())

    def preempt(self, job: str, shown_for: float = 0.0) -> None:
        """A preemption of each running task of ``job`` (or the job): a ``--requeue``
        one is PREEMPTED for ``shown_for`` seconds, then requeued; any other ends PREEMPTED."""
        with self._lock:
            self._schedule()
            for found in self._of(job):
                if found.state != "RUNNING":
                    continue
                self._kill(found)
                found.state, found.exit_code, found.process = "PREEMPTED", 0, None
                if found.requeue:
                    found.back_at = time.monotonic() + shown_for
            self._schedule()

    def queue(self) -> list[str]:
        """The jobs (and array tasks, as ``ID_INDEX``) still queued or running."""
        with self._lock:
            self._schedule()
            return [j.id for j in self._jobs.values() if j.state in ("PENDING", "RUNNING")]
