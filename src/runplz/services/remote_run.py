"""A detached job on a remote box: start it, follow its log across dropped
connections, stop it, bring its outputs back. Shared by the remote backends."""

from __future__ import annotations

import json
from typing import Mapping

import attrs

from ..domain.errors import CommandTimeout, ConnectionLost, TransportError
from ..domain.layout import BOOT_SCRIPT
from ..domain.remote_layout import OUT, RESULT_MARK
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.job_output import JobOutput
from ..ports.transport import Transport


@attrs.frozen
class RemoteJob:
    run_dir: str  # relative to the login folder
    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    payload: str
    repo_from: str
    container: str | None = None


@attrs.frozen
class Finished:
    exit_code: int
    result: str | None  # the result record's text, if the job wrote one


class PastDeadline(Exception):
    """The run went past the time it was allowed."""


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
        spec = {
            "argv": list(job.argv), "cwd": job.cwd, "env": dict(job.env), "payload": job.payload,
            "repo_from": job.repo_from, "container": job.container,
        }
        result = self._transport.run(self._agent("start", job.run_dir), input=json.dumps(spec).encode())
        if result.exit_code != 0:
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
                    self._agent("follow", job.run_dir, str(offset)), on_output=take, timeout=timeout
                )
            except CommandTimeout:
                raise PastDeadline() from None
            except ConnectionLost as exc:
                self._reconnect(exc)
                continue
            for line in result.stderr.splitlines():
                if line.startswith(RESULT_MARK):
                    record = json.loads(line[len(RESULT_MARK):])
                    return Finished(int(record["exit_code"]), record.get("result"))
            if result.exit_code == 255:
                self._reconnect(ConnectionLost(result.stderr.strip()))
                continue
            raise TransportError(
                f"following the job on {self._transport.name} failed: {result.stderr.strip()[-500:]}"
            )

    def _reconnect(self, exc: Exception) -> None:
        self._console.warn(
            f"lost the connection to {self._transport.name} ({exc}); the job keeps running there. "
            f"Reconnecting (waiting up to {self._ready_wait:g}s)"
        )
        self._transport.connect(wait=self._ready_wait)
        self._console.info(f"reconnected to {self._transport.name}; resuming the log")

    def stop(self, job: RemoteJob) -> None:
        """Kill this run's process group (and container) only."""
        try:
            self._transport.connect(wait=min(self._ready_wait, 60))
            self._transport.run(self._agent("kill", job.run_dir), timeout=120)
        except TransportError as exc:
            self._console.warn(f"could not stop the run on {self._transport.name}: {exc}")

    def fetch_outputs(self, job: RemoteJob, local: str) -> int:
        self._transport.connect(wait=min(self._ready_wait, 60))
        return self._transport.pull(f"{job.run_dir}/{OUT}", local)
