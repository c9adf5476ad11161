"""A Slurm cluster's limits, read where its client commands run (over the
login's `Transport`): MaxArraySize, and the time limit a partition gives a
job without ``--time``. Best effort: a cluster that cannot be asked (no
scontrol, an error) answers None, and sbatch stays the judge.

`NoticingScheduler` says, before a job without ``--time`` is submitted, which
limit Slurm will hold it to: a warning when there is none.
"""

from __future__ import annotations

from typing import Any

from ..domain.errors import CommandError, TransportError
from ..domain.slurm_limits import (
    PartitionTime,
    directive,
    max_array_size,
    partition_time,
    partitions,
    script_run,
    time_notice,
)
from ..domain.slurm_state import JobState
from ..ports.console import Console
from ..ports.scheduler import BatchScheduler
from ..ports.transport import Transport

TIMEOUT = 60.0


class ClusterLimits:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _ask(self, argv: list[str]) -> str | None:
        try:
            done = self._transport.run(argv, timeout=TIMEOUT)
        except (TransportError, CommandError):  # CommandTimeout too
            return None
        return done.stdout if done.exit_code == 0 else None

    def max_array_size(self) -> int | None:
        """The cluster's MaxArraySize (``scontrol show config``); None: unknown."""
        text = self._ask(["scontrol", "show", "config"])
        return max_array_size(text) if text is not None else None

    def partition_time(self, partition: str | None) -> PartitionTime | None:
        """The limit a job without ``--time`` gets in ``partition`` (None: the
        default partition); None: unknown."""
        argv = ["scontrol", "show", "partition", "-o", *([partition] if partition else [])]
        text = self._ask(argv)
        return partition_time(partitions(text), partition) if text is not None else None


class NoticingScheduler:
    """A `BatchScheduler` that, before it submits a script without ``--time``,
    says in one line which limit of the partition will hold the job: a
    warning when that is UNLIMITED (a job whose driver died runs until
    cancelled), else an info line naming it."""

    def __init__(self, scheduler: BatchScheduler, limits: ClusterLimits, console: Console,
                 partition: str | None, function: str) -> None:
        self._scheduler = scheduler
        self._limits = limits
        self._console = console
        self._partition = partition
        self._function = function
        self.name = scheduler.name

    def submit(self, script: str) -> str:
        if directive(script, "time") is None:
            self._notice(script_run(script))
        return self._scheduler.submit(script)

    def _notice(self, run: str) -> None:
        limit = self._limits.partition_time(self._partition)
        if limit is None:
            where = f"partition {self._partition}" if self._partition else "the default partition"
            self._console.info(f"no timeout: {self._function}'s Slurm job gets {where}'s time limit (could not read it)")
            return
        warn, line = time_notice(limit, self._function, run)
        (self._console.warn if warn else self._console.info)(line)

    def state(self, job: str) -> JobState:
        return self._scheduler.state(job)

    def cancel(self, job: str) -> None:
        self._scheduler.cancel(job)

    def tasks(self, job: str, count: int) -> list[JobState]:
        return self._scheduler.tasks(job, count)

    def __getattr__(self, name: str) -> Any:  # what else the port offers, as it is
        return getattr(self._scheduler, name)
