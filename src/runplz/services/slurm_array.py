"""A ``.map()`` on Slurm as ONE job array: the remote run path's launcher for it.

The run path (`RemoteRunPath`) connects, uploads the repo once and builds the
venv once (under its lock), as for one call; then `ArrayJobs.start` writes one
task folder per input into the run folder (``tasks/<index>/``: the input's
payload, its ``out/``, its log and, at its end, its result and exit code)
and submits ``sbatch --array=0-(N-1)%K`` once. On its node each task picks
its folder by ``$SLURM_ARRAY_TASK_ID``.

`ArrayJobs.follow` then watches the array until every input is reported:
each look asks the scheduler for every task's state (``squeue -r``; sacct
only for tasks squeue no longer lists) and reads the folders of the tasks
that run or ended (one command), at the slurm backend's poll rate, backing
off while nothing changes. A task that ended has its result settled, its
outputs moved home into its own ``<outputs>/<index>`` (that folder only) and
its log written out, and is reported through the map's `ItemSink`; one whose
exit code and result the login node does not show yet (a lagging shared file
system) is read again for a few seconds first (services/slurm_tasks.py). A
task Slurm requeued (preemption with ``SlurmConfig(requeue=True)``,
``scontrol requeue``) waits again and is followed to its real end. Once the
map's cancel is set (a failure with ``return_exceptions=False``, Ctrl-C, the
caller stopping) the whole array is ``scancel``-ed and every input not yet
reported is read: one that ended by itself is reported as it ended, one the
cancel stopped as `ItemCancelled`, each with its outputs brought home.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Callable, Sequence

from ..domain.call import FunctionCall
from ..domain.errors import CommandError, ConnectionLost, ItemCancelled, RemoteError, RunTimeout, TransportError
from ..domain.layout import PAYLOAD_FILE
from ..domain.payload import PROTOCOL, Result, Returned
from ..domain.remote_layout import CTL, OUT
from ..domain.slurm import TASK_FOLDER, array_range, batch_script, container_argv, env_file, job_name, sbatch_directives
from ..domain.slurm_liveness import TASKS
from ..domain.slurm_state import SETTLE_GRACE, JobState, SchedulerError
from ..ports.backend import Cancel, ItemSink
from ..protocol.wire import encode_dispatch, encode_result
from .remote_run import Finished, RemoteJob
from .repo import find_repo_root
from .runs import dispatch_for, settle_text
from .slurm_jobs import SlurmJobs, run_home
from .slurm_tasks import LOG, READ, WRITE, Holds, has_end, inputs_text, lagging, ran

def array_script(job: RemoteJob, spec: Any, config: Any, app: str, count: int, limit: int) -> str:
    """The array job's batch script (what `ArrayJobs.start` submits)."""
    home = run_home(job)
    folder = f"{home}/{job.run_dir}"
    tasks = f"{folder}/{TASKS}"
    directives = sbatch_directives(
        spec, config, name=job_name(app, spec.name), chdir=job.cwd, output=f"{tasks}/%a/{LOG}",
        limit_seconds=job.limit, array=array_range(count, limit),
    )
    argv = [*job.argv[:-1], f"{TASK_FOLDER}/{PAYLOAD_FILE}"]  # the payload is the task's own
    command = container_argv(config, spec.image, argv, workdir=home, cwd=job.cwd, gpus=spec.wants_gpu)
    return batch_script(directives, f"{folder}/{CTL}", command, tasks=tasks)


class ArrayJobs(SlurmJobs):
    """`SlurmJobs` for a map: ``calls`` (each with its index, run id and
    outputs) as one array job, at most ``concurrency`` tasks at a time,
    reported through ``sink``, stopped by ``cancel``; ``on_task`` is told each
    input's end in words (the run's record keeps it)."""

    def __init__(
        self,
        *args: Any,
        calls: Sequence[FunctionCall],
        concurrency: int,
        sink: ItemSink,
        cancel: Cancel,
        on_task: Callable[[str], None] = lambda text: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._calls = list(calls)
        self._limit = concurrency
        self._sink = sink
        self._cancel = cancel
        self._on_task = on_task
        self._started: set[int] = set()
        self._reported: set[int] = set()
        self._cancelled = False
        self._again: set[int] = set()  # started inputs seen waiting again (requeued), until they run
        self._holds = Holds(self._config.requeue)
        self.received = 0  # bytes of outputs moved home
        self.submit_seconds = 0.0  # writing the task folders and sbatch

    # ---------------------------------------------------------------- start

    def _start(self, job: RemoteJob) -> None:
        began = self._clock.monotonic()
        home = run_home(job)
        self._home = home
        folder = f"{home}/{job.run_dir}"
        repo_root = find_repo_root(self._calls[0].script)
        files = {f"{folder}/{CTL}/env": [env_file(job.env), 0o600]}
        dirs = [f"{folder}/{CTL}"]
        for index, call in enumerate(self._calls):
            task = f"{folder}/{TASKS}/{index}"
            dirs.append(f"{task}/{OUT}")
            payload = encode_dispatch(dispatch_for(call, repo_root, call.run_id or f"{job.run_dir}-{index}"))
            files[f"{task}/{PAYLOAD_FILE}"] = [payload, 0o600]
        script = array_script(job, self._spec, self._config, self._app, len(self._calls), self._limit)
        files[f"{folder}/{CTL}/job.sh"] = [script, 0o700]
        written = self._transport.run(
            ["python3", "-c", WRITE], input=json.dumps({"dirs": dirs, "files": files}).encode(), timeout=300
        )
        if written.exit_code != 0:
            raise TransportError(
                f"writing the run's files on {self._transport.name} failed: {written.stderr.strip()[-500:]}"
            )
        if self._cancel.is_set():  # cancelled while uploading and building: submit nothing
            raise ItemCancelled("the map was cancelled before its job array was submitted")
        job_id = self._scheduler.submit(script)
        self.job_ids[job.run_dir] = job_id
        self.submit_seconds = self._clock.monotonic() - began
        self._on_submit(job_id)
        count = len(self._calls)
        self._console.info(
            f"submitted {self._spec.name} to Slurm on {self._transport.name} as job array {job_id} "
            f"({count} task{'s' if count != 1 else ''}, at most {min(self._limit, count)} at a time)"
        )

    # ---------------------------------------------------------------- follow

    def _tasks(self, job_id: str) -> list[JobState]:
        while True:
            try:
                return self._scheduler.tasks(job_id, len(self._calls))
            except ConnectionLost as exc:
                self._reconnect(str(exc))

    def _read(self, job: RemoteJob, words: list[str]) -> dict[int, dict]:
        if not words:
            return {}
        tasks = f"{run_home(job)}/{job.run_dir}/{TASKS}"
        while True:
            try:
                done = self._transport.run(["python3", "-c", READ, tasks, *words], timeout=300)
            except ConnectionLost as exc:
                self._reconnect(str(exc))
                continue
            if done.exit_code == 255:
                self._reconnect(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
                continue
            if done.exit_code != 0:
                raise TransportError(
                    f"reading the tasks' results on {self._transport.name} failed: {done.stderr.strip()[-500:]}"
                )
            return {int(key): value for key, value in json.loads(done.stdout or "{}").items()}

    def follow(self, job: RemoteJob, deadline: float | None) -> Finished:
        """Watch the array until every input is reported (each task is held to its
        ``--time`` by Slurm, so ``deadline`` is not the driver's to keep)."""
        job_id = self.job_ids[job.run_dir]
        count = len(self._calls)
        config, clock = self._config, self._clock
        wait, shown_at, submitted = config.poll_seconds, clock.monotonic(), clock.monotonic()
        try:
            while len(self._reported) < count:
                if self._cancel.is_set():
                    self._wind_down(job, job_id)
                    raise ItemCancelled(f"the map's job array {job_id} was cancelled")
                states, changed = self._look(job, job_id)
                if not self._started and clock.monotonic() - shown_at >= 60:
                    reason = next((s.reason for s in states if s.waiting and s.reason), "")
                    self._console.info(
                        f"Slurm job array {job_id} is PENDING{f' ({reason})' if reason else ''}; "
                        f"waited {clock.monotonic() - submitted:.0f}s so far"
                    )
                    shown_at = clock.monotonic()
                fast = changed or self._holds.holding  # a held task is read again at the first rate
                wait = config.poll_seconds if fast else min(wait * 1.5, config.max_poll_seconds)
                if len(self._reported) < count:
                    self._cancel.wait(wait)
        except ItemCancelled:
            raise
        except KeyboardInterrupt:
            self._wind_down(job, job_id)
            raise
        done = encode_result(Result(PROTOCOL, job.run_dir.rsplit("/", 1)[-1], Returned(None)))
        return Finished(0, done, False, None)

    def _look(self, job: RemoteJob, job_id: str) -> tuple[list[JobState], bool]:
        """One look: every task's state, the folders of those that run or ended;
        report what ended. Returns the states and whether anything changed."""
        states = self._tasks(job_id)
        now = self._clock.monotonic()
        open_ = [index for index in range(len(self._calls)) if index not in self._reported]
        words = []
        for index in open_:
            state = states[index]
            if not state.waiting:
                self._again.discard(index)
                words.append(("e" if state.ended else "") + str(index))
            elif index in self._started and index not in self._again:
                self._requeued(job_id, index, state)
                words.append(f"r{index}")  # its last run's end is not its end
        seen = self._read(job, words)
        changed = False
        for index in open_:
            state, info = states[index], seen.get(index)
            if index not in self._started and (info is not None or not (state.waiting or state.state == "UNKNOWN")):
                self._started.add(index)
                self._sink.started(index)
                changed = True
            if info is None:
                self._holds.drop(index)
            elif self._holds.ready(index, state, info, now):
                self._finish(job, index, state, info)
                changed = True
        return states, changed

    def _requeued(self, job_id: str, index: int, state: JobState) -> None:
        """A started task is waiting again: Slurm requeued it (preempted, or ``scontrol
        requeue``); it runs again from its start and is followed to its real end."""
        self._again.add(index)
        self._holds.drop(index)
        reason = f", {state.reason}" if state.reason else ""
        self._console.info(
            f"Slurm requeued input {index} (job {job_id}_{index} is {state.state}{reason}); "
            "it will run again from its start"
        )
        self._on_task(f"input {index} (run {self._calls[index].run_id}): requeued by Slurm")

    def _finish(self, job: RemoteJob, index: int, state: JobState, info: dict, left: dict | None = None) -> None:
        """Settle one ended task, bring its outputs home, report it."""
        call = self._calls[index]
        self._pull(job, index, info, left)
        log = info.get("log") or ""
        if log:
            self._output.write(log.encode())
        try:
            outcome: tuple[bool, Any] = (True, self._settle(job, index, state, info))
        except (RemoteError, RunTimeout) as exc:
            outcome = (False, exc)
        self._reported.add(index)
        code = info.get("code")
        self._on_task(
            f"input {index} (run {call.run_id}): " + ("returned" if outcome[0] else f"failed: {outcome[1]}")
            + (f" (exit code {code})" if code is not None else f" (Slurm: {state.state})")
        )
        (self._sink.finished if outcome[0] else self._sink.failed)(index, outcome[1])

    def _settle(self, job: RemoteJob, index: int, state: JobState, info: dict) -> Any:
        call, job_id = self._calls[index], self.job_ids[job.run_dir]
        code, result = info.get("code"), info.get("result") or None
        if code is None:  # Slurm ended the task before its script wrote its code: Slurm's end stands
            if state.state == "TIMEOUT":
                raise RunTimeout(f"{call.label} ran past its --time in Slurm job {job_id}_{index}; Slurm stopped it")
            code = state.exit_code if state.exit_code else (0 if result else 1)
            if result is None:
                raise RemoteError(
                    "RunplzSupervisorLost",
                    f"Slurm job {job_id}_{index} {state.why()} (sacct: {state.state}, exit code {code})",
                    "", code or 255,
                )
        return settle_text(result, code, call.run_id or "")

    def _pull(self, job: RemoteJob, index: int, info: dict, left: dict | None = None) -> None:
        """Move the task's outputs (its folder only) into the input's own outputs folder.
        What stays on the cluster is warned about here, or (``left`` given) noted
        there by index for one warning."""
        call = self._calls[index]
        local = call.outputs
        if not local:
            return
        os.makedirs(local, exist_ok=True)
        if not info.get("out"):
            return
        remote = posixpath.join(job.run_dir, TASKS, str(index), OUT)
        try:
            self._transport.connect(wait=min(self._ready_wait, 60))
            pulled = self._transport.pull(remote, local, move=True)
        except TransportError as exc:
            if left is not None:
                left[index] = str(exc)
            else:
                self._console.warn(f"{exc}; input {index}'s outputs stay on {self._transport.name} in {remote}")
            return
        self.received += pulled.received
        for path, why in pulled.dropped:
            if left is not None:
                left.setdefault(index, f"{path}: {why}")
            else:
                self._console.warn(f"left {path} of input {index}'s outputs on {self._transport.name}: {why}")

    # ---------------------------------------------------------------- stop

    def _wind_down(self, job: RemoteJob, job_id: str) -> None:
        """Cancel the whole array, then read every input not yet reported: one that
        ended by itself (its exit code or result is there) is settled and reported
        as it ended; one the cancel stopped is `ItemCancelled`; both have their
        outputs brought home first. One that never started is only noted (the map
        reports no input it did not start). What stays on the cluster is said in
        one warning."""
        self._scancel(job_id)
        open_ = [index for index in range(len(self._calls)) if index not in self._reported]
        if not open_:
            return
        states = self._ends(job_id)
        unread = False
        try:
            seen = self._late(job, states, self._read(job, [f"e{index}" for index in open_]))
        except (TransportError, CommandError):
            seen, unread = {}, True
        left: dict[int, str] = {}
        for index in open_:
            info, run = seen.get(index), self._calls[index].run_id
            if not (index in self._started or ran(info)):
                self._reported.add(index)
                self._on_task(f"input {index} (run {run}): cancelled before it started")
                if unread:
                    left[index] = "its folder could not be read"
                continue
            if index not in self._started:
                self._started.add(index)
                self._sink.started(index)
            if has_end(info):
                self._finish(job, index, states[index], info or {}, left)
                continue
            self._pull(job, index, info or {"out": unread}, left)
            self._reported.add(index)
            self._on_task(f"input {index} (run {run}): cancelled")
            self._sink.failed(index, ItemCancelled(f"input {index} was cancelled (Slurm job {job_id}_{index})"))
        if left:
            folder = f"{run_home(job)}/{job.run_dir}/{TASKS}"
            first = left[min(left)]
            self._console.warn(
                f"outputs of {inputs_text(left)} of the cancelled job array {job_id} may be left on "
                f"{self._transport.name} in {folder}/<index>/{OUT} ({first})"
            )

    def _ends(self, job_id: str) -> list[JobState]:
        """The tasks' states once cancelled (UNKNOWN where the scheduler does not answer)."""
        count = len(self._calls)
        try:
            return self._scheduler.tasks(job_id, count)
        except (TransportError, CommandError, SchedulerError):
            return [JobState(f"{job_id}_{index}", "UNKNOWN") for index in range(count)]

    def _late(self, job: RemoteJob, states: list[JobState], seen: dict[int, dict]) -> dict[int, dict]:
        """Read again, for a while, the tasks Slurm says ended by themselves whose
        exit code and result the login node does not show yet."""
        waiting = [index for index, info in seen.items() if lagging(states[index], info)]
        deadline = self._clock.monotonic() + SETTLE_GRACE
        while waiting and self._clock.monotonic() < deadline:
            self._clock.sleep(1.0)
            again = self._read(job, [f"e{index}" for index in waiting])
            for index in list(waiting):
                if has_end(again.get(index)):
                    seen[index] = again[index]
                    waiting.remove(index)
        return seen

    def _scancel(self, job_id: str) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._cancel_job(job_id, len(self._calls))

    def stop(self, job: RemoteJob) -> None:
        job_id = self.job_ids.get(job.run_dir)
        if job_id is not None:
            self._scancel(job_id)

    def fetch_outputs(self, job: RemoteJob, local: str) -> int:
        """Each input's outputs came home as it ended: nothing is left to fetch."""
        return self.received
