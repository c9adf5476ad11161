"""A detached job on a remote box: start it, follow its log across dropped
connections, stop it, bring its outputs back. Shared by the remote backends."""

from __future__ import annotations

import json
from typing import Mapping

import attrs

from ..domain.errors import CommandError, CommandTimeout, ConnectionLost, NoSpaceLeft, TransportError
from ..domain.layout import BOOT_SCRIPT
from ..domain.remote_layout import NOSPACE_MARK, OUT, PENDING_MARK, RESULT_MARK
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.job_output import JobOutput
from ..ports.transport import Transport
from .map_shield import forget, hold

# How long one `agent follow` call may stream before the driver asks again:
# it bounds how long a dead driver's session (and so its ssh master) lives on.
FOLLOW_SECONDS = 30


@attrs.frozen
class RemoteJob:
    run_dir: str  # relative to the login folder
    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    payload: str
    container: str | None = None
    docker: tuple[str, ...] = ("docker",)  # the argv prefix that calls docker on the box (to stop the container)
    limit: float | None = None  # seconds; the box stops the job on its own after this
    basis: tuple[str, str] | None = None  # (the run's repo, the upload basis to refresh from it)


@attrs.frozen
class RunPlace:
    """One run's places: the repo here, and its folder and the bundle on the box
    (relative to the login folder)."""

    run: str
    folder: str
    bundle: str
    repo_root: str
    payload: str  # the encoded dispatch


@attrs.frozen
class Finished:
    exit_code: int
    result: str | None  # the result record's text, if the job wrote one
    timed_out: bool = False  # the box's watchdog stopped it
    note: str | None = None  # what the box has to say about how it ended


class PastDeadline(Exception):
    """The run went past the time it was allowed."""


def _marked(text: str, mark: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(mark):
            return line[len(mark):].strip()
    return None


class RemoteJobs:
    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        console: Console,
        output: JobOutput,
        bundle: str,
        ready_wait: float,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._console = console
        self._output = output
        self._boot = f"{bundle}/{BOOT_SCRIPT}"
        self._ready_wait = ready_wait

    def _agent(self, *args: str) -> list[str]:
        return ["python3", self._boot, "agent", *args]

    def start(self, job: RemoteJob) -> None:
        """Start ``job`` on the box. A map's stop of this input is held from here
        until `RunFollower.finish` takes the job over (it then stops the job), so
        a stop landing in between cannot leave the job running; if the start
        fails, the hold ends with it."""
        try:
            hold()
            self._start(job)
        except BaseException:
            forget()  # nothing started to hand over (an interrupt here: the caller stops the job)
            raise

    def _start(self, job: RemoteJob) -> None:
        spec = {
            "argv": list(job.argv), "cwd": job.cwd, "env": dict(job.env), "payload": job.payload,
            "container": job.container, "docker": list(job.docker), "limit": job.limit,
            "basis": list(job.basis) if job.basis else None,
        }
        result = self._transport.run(self._agent("start", job.run_dir), input=json.dumps(spec).encode())
        if result.exit_code == 0:
            return
        free = _marked(result.stderr, NOSPACE_MARK)
        if free is not None:
            raise NoSpaceLeft(
                f"no space left on {self._transport.name} ({int(free or 0) // 1024} MB free in ~/.runplz) "
                "while starting the job"
            )
        raise TransportError(
            f"starting the job on {self._transport.name} failed: {result.stderr.strip()[-500:]}"
        )

    def follow(self, job: RemoteJob, deadline: float | None) -> Finished:
        """Stream the job's log until it ends; reconnect when the connection drops."""
        offset = 0

        def take(chunk: bytes) -> None:
            nonlocal offset
            offset += len(chunk)
            self._output.write(chunk)

        while True:
            timeout = None
            if deadline is not None:
                timeout = deadline - self._clock.monotonic()
                if timeout <= 0:
                    raise PastDeadline()
            try:
                result = self._transport.run(
                    self._agent("follow", job.run_dir, str(offset), str(FOLLOW_SECONDS)),
                    on_output=take, timeout=timeout,
                )
            except CommandTimeout:
                raise PastDeadline() from None
            except ConnectionLost as exc:
                self._reconnect(str(exc))
                continue
            record = _marked(result.stderr, RESULT_MARK)
            if record is not None:
                data = json.loads(record)
                return Finished(
                    int(data["exit_code"]), data.get("result"), bool(data.get("timed_out")), data.get("note")
                )
            if _marked(result.stderr, PENDING_MARK) is not None:
                continue
            if result.exit_code == 255:
                self._reconnect(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
                continue
            raise TransportError(
                f"following the job on {self._transport.name} failed: {result.stderr.strip()[-500:]}"
            )

    def _reconnect(self, reason: str) -> None:
        """One warning per outage, however many tries it takes to get back."""
        where = self._transport.name
        prefix = f"lost the connection to {where}"
        reason = reason.strip()
        if reason.startswith(prefix):
            reason = reason[len(prefix):].lstrip(" :")
        reason = reason or "the connection dropped"
        self._console.warn(
            f"{prefix} ({reason}); the job keeps running there. "
            f"Reconnecting (waiting up to {self._ready_wait:g}s)"
        )
        self._transport.connect(wait=self._ready_wait)
        self._console.info(f"reconnected to {where}; resuming the log")

    def stop(self, job: RemoteJob) -> None:
        """Kill this run's process group (and container) only."""
        try:
            self._transport.connect(wait=min(self._ready_wait, 60))
            self._transport.run(self._agent("kill", job.run_dir), timeout=120)
        except (TransportError, CommandError) as exc:
            self._console.warn(f"could not stop the run on {self._transport.name}: {exc}")

    def fetch_outputs(self, job: RemoteJob, local: str) -> int:
        """Move the run's outputs home (each file leaves the box once it arrived
        whole, so pruning knows they are safe) and say what was left behind."""
        self._transport.connect(wait=min(self._ready_wait, 60))
        pulled = self._transport.pull(f"{job.run_dir}/{OUT}", local, move=True)
        for path, why in pulled.dropped:
            self._console.warn(f"left {path} of the outputs on {self._transport.name}: {why}")
        return pulled.received

    def prune(self, runs: str) -> str:
        """Apply the box's pruning rule to ``runs``; what it freed, in its words."""
        result = self._transport.run(self._agent("prune", runs), timeout=300)
        return result.stdout.strip()

    def discard(self, run_dir: str) -> None:
        """Remove a run folder that never started (a failed upload)."""
        try:
            self._transport.run(["rm", "-rf", run_dir], timeout=300)
        except TransportError:
            pass
