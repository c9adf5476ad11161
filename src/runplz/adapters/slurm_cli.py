"""`BatchScheduler` through Slurm's own client commands (sbatch, squeue, sacct,
scancel) run over a `Transport`: on a login node over ssh, or here."""

from __future__ import annotations

import re

from ..domain.errors import TransportError
from ..domain.slurm_state import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    JobState,
    SchedulerError,
    parse_job_id,
    parse_sacct,
    parse_squeue,
    parse_tasks,
)
from ..ports.transport import Transport

TIMEOUT = 120.0


def _words(text: str) -> str:
    """A client's error lines as one, without its ``sbatch: error:`` prefixes."""
    lines = [re.sub(r"^\w+: error: (Batch job submission failed: )?", "", line.strip()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    return " / ".join(lines)[-500:] or "no message"


class SlurmCli:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.name = transport.name

    def submit(self, script: str) -> str:
        done = self._transport.run(["sbatch", "--parsable"], input=script.encode(), timeout=TIMEOUT)
        if done.exit_code == 127:
            raise TransportError(f"sbatch is not installed on {self.name} (is it a Slurm login node?)")
        job = parse_job_id(done.stdout) if done.exit_code == 0 else None
        if job is None:
            raise SchedulerError(f"sbatch on {self.name} refused the job: {_words(done.stderr or done.stdout)}")
        return job

    def state(self, job: str) -> JobState:
        queued = self._transport.run(["squeue", "-h", "-j", job, "-o", SQUEUE_FORMAT], timeout=TIMEOUT)
        if queued.exit_code == 0:
            found = parse_squeue(queued.stdout, job)
            if found is not None and not found.ended:
                return found
        accounted = self._transport.run(
            ["sacct", "-n", "-P", "-X", "-j", job, "-o", ",".join(SACCT_FIELDS)], timeout=TIMEOUT
        )
        if accounted.exit_code != 0:
            raise SchedulerError(f"sacct on {self.name} failed for job {job}: {_words(accounted.stderr)}")
        return parse_sacct(accounted.stdout, job) or JobState(job, "UNKNOWN")

    def cancel(self, job: str) -> None:
        done = self._transport.run(["scancel", job], timeout=TIMEOUT)
        if done.exit_code != 0 and "already completed" not in done.stderr.lower() and "invalid job id" not in done.stderr.lower():
            raise SchedulerError(f"scancel {job} on {self.name} failed: {_words(done.stderr)}")

    def tasks(self, job: str, count: int) -> list[JobState]:
        """squeue's view of the live tasks; sacct is asked only when some task is not listed there."""
        queued = self._transport.run(["squeue", "-h", "-r", "-j", job, "-o", SQUEUE_FORMAT], timeout=TIMEOUT)
        live = queued.stdout if queued.exit_code == 0 else ""
        found = parse_tasks(live, "", job, count)
        if all(state.state != "UNKNOWN" for state in found):
            return found
        accounted = self._transport.run(
            ["sacct", "-n", "-P", "-X", "-j", job, "-o", ",".join(SACCT_FIELDS)], timeout=TIMEOUT
        )
        if accounted.exit_code != 0:
            raise SchedulerError(f"sacct on {self.name} failed for job {job}: {_words(accounted.stderr)}")
        return parse_tasks(live, accounted.stdout, job, count)
