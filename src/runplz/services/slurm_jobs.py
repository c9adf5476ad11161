"""The remote run path's launcher for a Slurm cluster: the job goes to ``sbatch``
instead of the agent's supervisor.

The run folder is on the cluster's shared file system. `start` writes the
payload, the job's environment (``ctl/env``, mode 600: no value on a command
line or in squeue) and the batch script (``ctl/job.sh``) there, and submits
the script; on its node the script runs the same entry the agent would, its
output going to ``ctl/job.log`` and its exit code to ``ctl/exit_code``. So
`follow` streams the log with the agent's ``follow`` (over the login node)
while squeue says the job runs, shows a waiting job's reason and how long it
waited, and takes the end from sacct when the script wrote none (cancelled,
past its ``--time``, out of memory, a lost node). The scheduler is asked at
a low rate that backs off (``poll_seconds`` to ``max_poll_seconds``).
`stop` is ``scancel``; Slurm ends the job at its ``--time`` even when no
driver is left. A job without ``--time`` is submitted after one line naming
the partition's limit that will hold it (a warning when it has none:
`slurm_limits.NoticingScheduler`).

Old run folders are pruned by the box's rule with the scheduler's liveness
(runtime/slurm_prune.py): on the login node, in the background, after each
submit (the just-submitted job's folder is live). Only a run whose job wrote
its own end counts as finished; the follower also touches ``ctl/following`` as
it follows.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, Callable

from ..domain.config import SlurmConfig
from ..domain.errors import CommandError, ConnectionLost, TransportError
from ..domain.remote_layout import CTL, OUT, PENDING_MARK, REPO, RESULT_MARK
from ..domain.slurm import batch_script, container_argv, env_file, job_name, sbatch_directives
from ..domain.slurm_state import JobState, SchedulerError
from ..domain.spec import FunctionSpec
from ..ports.scheduler import BatchScheduler
from .remote_run import FOLLOW_SECONDS, Finished, RemoteJob, RemoteJobs, _marked
from .slurm_limits import ClusterLimits, NoticingScheduler
from .slurm_tasks import WRITE

SETTLE_REREADS = 10  # at most this many extra reads of an ended job's exit code (see JobState.grace)
REQUEUE_LOOKS = 600  # at most this many looks at a PREEMPTED --requeue job waiting to be queued again
STOP_WAIT = 30.0  # seconds for a cancelled job to leave the queue
FOLLOWING = "following"  # in ctl/: touched by the driver as it follows the run (pruning keeps the run)
# Runs runtime/slurm_prune.py from the bundle: argv = bundle, runs folder[, --background].
_PRUNE = (
    "import sys; sys.path.insert(0, sys.argv[1] + '/lib'); "
    "from runplz.runtime.slurm_prune import main; sys.exit(main(sys.argv[2:]))"
)
# Touches a run's ctl/following, then runs the rest of argv (one round trip).
_TOUCHING = 'touch "$1" 2>/dev/null; shift; exec "$@"'


def run_home(job: RemoteJob) -> str:
    """The absolute folder the run folders are relative to (the workdir)."""
    tail = f"/{job.run_dir}/{REPO}"
    if not job.cwd.endswith(tail):
        raise ValueError(f"the job's cwd {job.cwd!r} is not its run's repo")
    return job.cwd[: -len(tail)]


def render_script(job: RemoteJob, spec: FunctionSpec, config: SlurmConfig, app: str) -> str:
    """The batch script of ``job`` (what `start` submits; `runplz plan` shows it too)."""
    home = run_home(job)
    ctl = f"{home}/{job.run_dir}/{CTL}"
    directives = sbatch_directives(
        spec, config, name=job_name(app, spec.name), chdir=job.cwd, output=f"{ctl}/job.log", limit_seconds=job.limit
    )
    command = container_argv(config, spec.image, job.argv, workdir=home, cwd=job.cwd, gpus=spec.wants_gpu)
    return batch_script(directives, ctl, command)


class SlurmJobs(RemoteJobs):
    def __init__(
        self,
        *args: Any,
        scheduler: BatchScheduler,
        config: SlurmConfig,
        spec: FunctionSpec,
        app: str,
        on_submit: Callable[[str], None] = lambda job: None,
        on_folder: Callable[[str], None] = lambda folder: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._scheduler = NoticingScheduler(
            scheduler, ClusterLimits(self._transport), self._console, config.partition, spec.name
        )
        self._config = config
        self._spec = spec
        self._app = app
        self._notify = on_submit
        self._on_submit = self._submitted  # what every start calls once its job is queued
        self._home = ""  # the workdir on the cluster (absolute), known at start
        self._on_folder = on_folder  # told the run folder's absolute path once its job is queued
        self.job_ids: dict[str, str] = {}  # run folder -> Slurm job id

    def _submitted(self, job_id: str) -> None:
        run_dir = next((folder for folder, job in self.job_ids.items() if job == job_id), None)
        try:
            self._notify(job_id)
            if run_dir is not None:
                self._on_folder(posixpath.join(self._home, run_dir))  # `ps` and `down` find it by this
        except BaseException:  # the job's id is not on record: nothing could find it to stop it
            try:
                self._scheduler.cancel(job_id)
            except (TransportError, CommandError, SchedulerError):
                self._console.warn(
                    f"could not cancel Slurm job {job_id} on {self._transport.name}: run `scancel {job_id}` there"
                )
            raise
        if run_dir is not None:
            self._prune_runs(posixpath.dirname(run_dir), background=True)

    def _prune_runs(self, runs: str, background: bool) -> str:
        """Prune the run folders in ``runs`` by the box rule with Slurm's liveness
        (runtime/slurm_prune.py, on the login node); its words, or "" when it failed."""
        bundle = posixpath.dirname(self._boot)
        argv = ["python3", "-c", _PRUNE, bundle, runs, *(["--background"] if background else [])]
        try:
            done = self._transport.run(argv, timeout=300)
        except (TransportError, CommandError):
            return ""
        return done.stdout.strip() if done.exit_code == 0 else ""

    def prune(self, runs: str) -> str:
        """The box's pruning rule for Slurm runs (never the supervisor-based one:
        no Slurm run has a supervisor on the login node)."""
        return self._prune_runs(runs, background=False)

    def _start(self, job: RemoteJob) -> None:
        script = render_script(job, self._spec, self._config, self._app)
        self._home = run_home(job)
        ctl = f"{self._home}/{job.run_dir}/{CTL}"
        files = {"payload.json": [job.payload, 0o600], "env": [env_file(job.env), 0o600], "job.sh": [script, 0o700],
                 FOLLOWING: ["", 0o600]}
        spec = {"dirs": [ctl, posixpath.join(posixpath.dirname(ctl), OUT)],
                "files": {posixpath.join(ctl, name): value for name, value in files.items()}}
        written = self._transport.run(["python3", "-c", WRITE], input=json.dumps(spec).encode(), timeout=300)
        if written.exit_code != 0:
            raise TransportError(
                f"writing the run's files on {self._transport.name} failed: {written.stderr.strip()[-500:]}"
            )
        job_id = self._scheduler.submit(script)
        self.job_ids[job.run_dir] = job_id
        self._on_submit(job_id)
        self._console.info(f"submitted {self._spec.name} to Slurm on {self._transport.name} as job {job_id}")

    def _look(self, job_id: str) -> JobState:
        while True:
            try:
                return self._scheduler.state(job_id)
            except ConnectionLost as exc:
                self._reconnect(str(exc))

    def follow(self, job: RemoteJob, deadline: float | None) -> Finished:
        """Stream the job's log until it ends. ``deadline`` is not the driver's to
        keep: Slurm holds the job to its ``--time`` from when it starts, however
        long it waited."""
        job_id = self.job_ids[job.run_dir]
        offset = 0

        def take(chunk: bytes) -> None:
            nonlocal offset
            offset += len(chunk)
            self._output.write(chunk)

        clock = self._clock
        submitted = clock.monotonic()
        wait, look_at, shown_at = self._config.poll_seconds, 0.0, 0.0
        seen: tuple[str, str] | None = None
        final: JobState | None = None
        held_at: float | None = None  # when a PREEMPTED end of a --requeue job was first seen
        ended_at, rereads, held_looks = 0.0, 0, 0
        while True:
            now = clock.monotonic()
            if final is None and now >= look_at:
                state = self._look(job_id)
                if (state.state, state.reason) != seen or (state.waiting and now - shown_at >= 60):
                    self._show(job_id, state, now - submitted)
                    seen, shown_at = (state.state, state.reason), now
                look_at, wait = now + wait, min(wait * 1.5, self._config.max_poll_seconds)
                if state.ended:
                    requeue_grace = state.grace(False, False, self._config.requeue) if state.state == "PREEMPTED" else 0
                    held_at = now if held_at is None else held_at
                    held_looks += 1 if requeue_grace else 0  # counted too, so a clock that stands still ends it
                    if requeue_grace and now - held_at < requeue_grace and held_looks <= REQUEUE_LOOKS:
                        look_at = now + self._config.poll_seconds
                        clock.sleep(max(0.0, look_at - clock.monotonic()))
                        continue
                    final, ended_at = state, now
                elif state.waiting or state.state == "UNKNOWN":
                    held_at, held_looks = None, 0
                    clock.sleep(max(0.0, look_at - clock.monotonic()))
                    continue
            budget = 1.0 if final is not None else min(FOLLOW_SECONDS, max(1.0, look_at - clock.monotonic()))
            try:
                result = self._transport.run(
                    ["sh", "-c", _TOUCHING, "sh", f"{job.run_dir}/{CTL}/{FOLLOWING}",
                     *self._agent("follow", job.run_dir, str(offset), f"{budget:g}")],
                    on_output=take,
                )
            except ConnectionLost as exc:
                self._reconnect(str(exc))
                continue
            record = _marked(result.stderr, RESULT_MARK)
            if record is not None:
                data = json.loads(record)
                return Finished(int(data["exit_code"]), data.get("result"), False, data.get("note"))
            if _marked(result.stderr, PENDING_MARK) is None:
                if result.exit_code == 255:
                    self._reconnect(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
                    continue
                raise TransportError(
                    f"following the job on {self._transport.name} failed: {result.stderr.strip()[-500:]}"
                )
            if final is not None:
                rereads += 1  # each is a 1 s follow; counted too, so a clock that stands still ends it
                if rereads <= SETTLE_REREADS and clock.monotonic() - ended_at < final.grace(False, False, False):
                    continue  # the next follow reads the exit code again: a shared file system may show it late
                return self._ended_without_code(job, job_id, final)

    def _show(self, job_id: str, state: JobState, waited: float) -> None:
        if state.waiting:
            reason = f" ({state.reason})" if state.reason else ""
            self._console.info(f"Slurm job {job_id} is {state.state}{reason}; waited {waited:.0f}s so far")
        elif not state.ended and state.state != "UNKNOWN":
            self._console.info(f"Slurm job {job_id} is {state.state}")

    def _ended_without_code(self, job: RemoteJob, job_id: str, final: JobState) -> Finished:
        """The job ended without its script's own exit code: Slurm's end stands."""
        read = self._transport.run(["cat", f"{job.run_dir}/{CTL}/result.json"], timeout=120)
        result = read.stdout if read.exit_code == 0 and read.stdout.strip() else None
        code = final.exit_code if final.exit_code else (0 if result else 1)
        note = None if result else f"Slurm job {job_id} {final.why()} (sacct: {final.state}, exit code {code})"
        return Finished(code, result, final.state == "TIMEOUT", note)

    def stop(self, job: RemoteJob) -> None:
        """``scancel`` the run's job, and wait (a while) until it left the queue."""
        job_id = self.job_ids.get(job.run_dir)
        if job_id is None:
            return
        self._cancel_job(job_id)

    def _cancel_job(self, job_id: str, tasks: int | None = None) -> None:
        """``scancel`` job ``job_id`` (an array of ``tasks`` tasks, or one job) and wait
        up to `STOP_WAIT` until it has left the queue; a warning if it cannot be."""
        what = f"job array {job_id}" if tasks is not None else f"job {job_id}"
        try:
            self._transport.connect(wait=min(self._ready_wait, 60))
            self._scheduler.cancel(job_id)
            self._console.info(f"cancelled Slurm {what}")
            deadline = self._clock.monotonic() + STOP_WAIT
            while self._clock.monotonic() < deadline and not self._gone(job_id, tasks):
                self._clock.sleep(0.5)
        except (TransportError, CommandError, SchedulerError) as exc:
            self._console.warn(f"could not cancel Slurm {what} on {self._transport.name}: {exc}")

    def _gone(self, job_id: str, tasks: int | None) -> bool:
        if tasks is None:
            return self._scheduler.state(job_id).ended
        return all(s.ended or s.state == "UNKNOWN" for s in self._scheduler.tasks(job_id, tasks))
