"""Slurm runs whose driver is gone: what `runplz ps` / `status` read on the
cluster (`slurm_views`), and what `runplz down` does there (`SlurmDown`).

Both work over one connection to the run's login node (a `Transport`) and
the `BatchScheduler` on it. `slurm_views` only reads: the run folders (one
``python3`` for all of them, `FOLDER_SCRIPT`), then, per run, squeue/sacct
through the scheduler (`state`, or `tasks` for an array). `SlurmDown` cancels
the job (``scancel``), waits a bounded time for it to leave the queue, then
moves its outputs home where the live driver would have put them: one job's
``out/`` into the run's outputs folder, each array task's into
``<outputs>/<index>/``, through `Transport.pull` (which brings back only what
stays inside the folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..domain.errors import CommandError, TransportError
from ..domain.remote_layout import OUT
from ..domain.run_liveness import BackendView
from ..domain.run_summary import RunSummary
from ..domain.slurm_liveness import (
    FOLDER_SCRIPT,
    NO_JOB,
    SlurmFolder,
    array_view,
    folder_argv,
    job_view,
    parse_folders,
    run_folder,
    task_out,
)
from ..domain.slurm_state import SchedulerError, noted_job
from ..ports.clock import Clock
from ..ports.scheduler import BatchScheduler
from ..ports.transport import Pulled, Transport

READ_SECONDS = 10.0  # the run folders' read, once connected
QUEUE_WAIT = 60.0  # for a cancelled job to leave the queue (Slurm's KillWait is 30 s by default)


def read_folders(transport: Transport, folders: Sequence[str]) -> dict[str, SlurmFolder]:
    """What `FOLDER_SCRIPT` finds in ``folders`` on the login node; {} when it could not run."""
    if not folders:
        return {}
    done = transport.run(folder_argv(folders), input=FOLDER_SCRIPT.encode(), timeout=READ_SECONDS)
    return parse_folders(done.stdout)


def slurm_views(transport: Transport, scheduler: BatchScheduler, summaries: Sequence[RunSummary]) -> dict[str, BackendView]:
    """The cluster's view of each of ``summaries``' runs (all on ``transport``'s login node)."""
    jobs = {s.run: noted_job(s.notes) for s in summaries}
    folders = {s.run: run_folder(s.run, s.notes) for s in summaries}
    report = read_folders(transport, [folders[run] for run, job in jobs.items() if job is not None])
    views: dict[str, BackendView] = {}
    for run, job in jobs.items():
        if job is None:
            views[run] = NO_JOB
            continue
        folder = report.get(folders[run])
        folder = folder if folder is not None and folder.found else None
        if folder is not None and folder.tasks is not None:
            views[run] = array_view(run, job, scheduler.tasks(job, folder.tasks), folder)
        else:
            views[run] = job_view(run, job, scheduler.state(job), folder)
    return views


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class DownSaid:
    """What `runplz down` did after a dead driver, in words, and whether the run
    may now be recorded as ended: ``settled`` only once its job is seen gone and
    its outputs are home (or stay behind by design, as escaping links do). An
    unsettled run stays open, so `runplz ps` keeps asking and `down` can be run
    again; ``bad_input``: its record names something unusable (exit code 2)."""

    words: str
    settled: bool = True
    bad_input: bool = False


class SlurmDown:
    """`runplz down` of a Slurm run whose driver is gone, on its login node."""

    def __init__(self, transport: Transport, scheduler: BatchScheduler, clock: Clock, wait: float = QUEUE_WAIT) -> None:
        self._transport = transport
        self._scheduler = scheduler
        self._clock = clock
        self._wait = wait

    def stop(self, run: str, outputs: str, notes: Iterable[str], where: str) -> DownSaid:
        """Cancel the run's job, wait for the queue, bring its outputs home; what happened."""
        notes = tuple(notes)
        job = noted_job(notes)
        if job is None:
            return DownSaid("its record names no Slurm job (it was never submitted)")
        folder = run_folder(run, notes)
        said: list[tuple[str, bool]] = []
        try:
            self._transport.connect(wait=60)
            try:
                said.append(self._cancel(job, where))
                said.append(self._bring_home(folder, outputs, where))
            finally:
                self._transport.close()
        except (TransportError, CommandError, SchedulerError, OSError) as exc:
            if not said:
                return DownSaid(f"could not cancel Slurm job {job} on {where}: {exc} (run `scancel {job}` there)", False)
            said.append((f"then the connection failed: {exc}; its outputs may stay in {folder} on {where}", False))
        return DownSaid("; ".join(words for words, _ in said if words), all(done for _, done in said))

    def _cancel(self, job: str, where: str) -> tuple[str, bool]:
        """``scancel``, then the queue; the words, and whether the job was seen gone."""
        self._scheduler.cancel(job)
        deadline = self._clock.monotonic() + self._wait
        while True:
            try:
                state = self._scheduler.state(job)
            except (SchedulerError, TransportError, CommandError) as exc:  # cancelled, but not seen to end
                return f"cancelled Slurm job {job} on {where} (could not see it leave the queue: {exc})", False
            if state.ended or state.state == "UNKNOWN":  # UNKNOWN: neither squeue nor sacct lists it
                return f"cancelled Slurm job {job} on {where}", True
            if self._clock.monotonic() >= deadline:
                return f"cancelled Slurm job {job} on {where}, but it was still {state.state} after {self._wait:g}s", False
            self._clock.sleep(0.5)

    def _bring_home(self, folder: str, outputs: str, where: str) -> tuple[str, bool]:
        """Move what the job left in ``folder`` to ``outputs``; the words, and
        whether nothing stays on the cluster that runplz should still bring."""
        try:
            found = read_folders(self._transport, [folder]).get(folder)
        except (TransportError, CommandError, OSError) as exc:
            return f"could not read its run folder {folder}: {exc}; its outputs stay there", False
        if found is None:
            return f"could not read its run folder {folder} on {where} (is python3 there?); its outputs stay there", False
        if not found.found:  # nothing runplz can find to bring: a second `down` would find no more
            return f"found no run folder {folder} on {where} (a SlurmConfig.workdir?): bring its outputs home by hand", True
        if not outputs:
            return "its record names no outputs folder; its outputs stay in its run folder", True
        if found.tasks is None:
            if not found.outputs_left:
                return "it left no outputs on the cluster", True
            pulled = [self._pull(f"{folder}/{OUT}", outputs)]
            return self._brought(pulled, outputs, folder, where)
        if not found.left:
            return f"no task of its {_plural(found.tasks, 'input')} left outputs on the cluster", True
        pulled = [self._pull(task_out(folder, index), os.path.join(outputs, str(index))) for index in found.left]
        return self._brought(pulled, f"{outputs}/<index> for {_plural(len(found.left), 'task')}", folder, where)

    def _pull(self, remote: str, local: str) -> Pulled | str:
        """One folder home; what went wrong, in words, when it did not come."""
        try:
            os.makedirs(local, exist_ok=True)
            return self._transport.pull(remote, local, move=True)
        except TransportError as exc:
            return f"{remote}: {exc}"
        except OSError as exc:  # this machine's side: the folder, a write, the disk
            return f"{remote} could not be written to {local}: {exc.strerror or exc}"

    @staticmethod
    def _brought(pulled: Sequence[Pulled | str], into: str, folder: str, where: str) -> tuple[str, bool]:
        got = [p for p in pulled if isinstance(p, Pulled)]
        failed = [p for p in pulled if isinstance(p, str)]
        said = []
        if got:
            said.append(f"brought {sum(p.received for p in got)} bytes of outputs to {into}")
            dropped = [item for p in got for item in p.dropped]
            if dropped:  # by design: what would reach outside the outputs folder stays behind
                path, why = dropped[0]
                said[-1] += f" (left {_plural(len(dropped), 'path')} on the cluster; {path}: {why})"
        if failed:
            said.append(f"{_plural(len(failed), 'download')} failed, so those outputs stay in {folder} on {where} "
                        f"({failed[0]})")
        return "; ".join(said), not failed
