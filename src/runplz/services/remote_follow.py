"""A started remote run to its end: its log followed, its outputs home, its
value settled (or its time limit, an interrupt, a lost supervisor reported)."""

from __future__ import annotations

from typing import Any

from .map_shield import release, shielded
from ..domain.errors import ItemCancelled, RemoteError, RunTimeout, TransportError, says_no_space
from ..domain.limits import RunLimit
from ..domain.remote_layout import OUT
from ..domain.spec import FunctionSpec
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.transport import Transport
from .remote_run import Finished, PastDeadline, RemoteJob, RemoteJobs
from .remote_upload import free_mb, size_text
from .runs import settle_text


class RunFollower:
    def __init__(self, transport: Transport, jobs: RemoteJobs, console: Console, clock: Clock) -> None:
        self._transport = transport
        self._jobs = jobs
        self._console = console
        self._clock = clock

    def finish(self, job: RemoteJob, spec: FunctionSpec, outputs: str, run: str, limit: RunLimit | None) -> Any:
        """Follow ``job`` until it ends, bring its outputs into ``outputs``, return its value."""
        jobs, where = self._jobs, self._transport.name
        started = self._clock.monotonic()
        timed_out = RunTimeout(
            f"{spec.name} ran past {limit.reason if limit else 'its time limit'} on {where}; killed this run's "
            "process group (other jobs on the box were not touched)"
        )
        try:
            release()  # a map's stop held since the job was started lands here, and stops it
            finished = jobs.follow(job, started + limit.seconds + 5 if limit else None)
        except PastDeadline:
            jobs.stop(job)
            self._outputs_anyway(job, outputs)
            raise timed_out from None
        except KeyboardInterrupt as exc:
            if not isinstance(exc, ItemCancelled):  # a map's input stopped by the map says nothing
                self._console.warn(f"interrupted: stopping the run on {where}")
            jobs.stop(job)
            self._outputs_anyway(job, outputs)
            raise
        try:
            with shielded():  # a map's stop of this input waits for its outputs
                received = jobs.fetch_outputs(job, outputs)
        except TransportError as exc:
            raise type(exc)(
                f"{exc}; the outputs stay on {where} in ~/{job.run_dir}/{OUT} ({spec.name} itself "
                f"finished with exit code {finished.exit_code})"
            ) from None
        if finished.timed_out:
            raise timed_out
        self._console.info(
            f"{spec.name} finished with exit code {finished.exit_code} in "
            f"{self._clock.monotonic() - started:.1f}s; {size_text(received)} of outputs in {outputs}"
        )
        return self._settle(finished, run)

    def _outputs_anyway(self, job: RemoteJob, outputs: str) -> None:
        """Bring outputs home on the way out of a failed run, without hiding why it failed."""
        try:
            with shielded():
                self._jobs.fetch_outputs(job, outputs)
        except TransportError as exc:
            self._console.warn(f"{exc}; the outputs stay on {self._transport.name} in ~/{job.run_dir}/{OUT}")

    def _settle(self, finished: Finished, run: str) -> Any:
        if finished.note and finished.result is None:
            raise RemoteError("RunplzSupervisorLost", finished.note, "", finished.exit_code or 255)
        if finished.note:
            self._console.warn(finished.note)
        try:
            return settle_text(finished.result, finished.exit_code, run)
        except RemoteError as exc:
            if says_no_space(f"{exc.remote_message}\n{exc.remote_traceback}"):
                free = free_mb(self._transport)
                self._console.warn(
                    f"no space left on {self._transport.name} "
                    f"({free if free is not None else '?'} MB free in ~/.runplz)"
                )
            raise
