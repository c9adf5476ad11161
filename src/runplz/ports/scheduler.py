"""Port: a batch scheduler (Slurm) that runs submitted scripts on its nodes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..domain.slurm_state import JobState


@runtime_checkable
class BatchScheduler(Protocol):
    """A cluster's scheduler, reached where its client commands run.

    Contract:
    - ``submit(script)`` queues the batch script ``script`` (its text, with its
      ``#SBATCH`` lines; nothing of it appears on a command line) and returns
      the job's id. A refused script is `SchedulerError` with the scheduler's
      words; the job is not queued.
    - ``state(job)`` is the job as the scheduler sees it now (`JobState`):
      while it lives, from the queue (PENDING with its reason, RUNNING, ...);
      once it ended, from accounting (COMPLETED, FAILED, CANCELLED, TIMEOUT,
      ... with the script's exit code, 128+N when signal N ended it). A job
      that accounting does not list yet is UNKNOWN.
    - ``cancel(job)`` asks the scheduler to end the job, pending or running;
      its state becomes CANCELLED and it leaves the queue. Cancelling a job
      that already ended is no error.
    - A script with ``--array=0-(N-1)%K`` is ONE job of N tasks, at most K of
      them running at a time; each task runs the script with
      ``SLURM_ARRAY_TASK_ID`` (its index) and ``SLURM_ARRAY_JOB_ID`` (the
      job's id) set, and ``%A``/``%a`` in ``--output`` are the job's id and
      the task's index. ``state(job)`` of an array job is a live task's state
      while one lives, else an ended one's; ``cancel(job)`` ends every task.
    - ``tasks(job, count)`` is tasks 0..count-1 of array job ``job``, in index
      order, each a `JobState` with ``job_id`` ``JOB_INDEX``: queued, running
      (with a waiting task's reason), or ended with its script's exit code;
      UNKNOWN for one the scheduler lists nowhere (yet).
    - Failing to reach the scheduler is `TransportError` (or `SchedulerError`
      when its client answers with an error), naming where.
    """

    name: str

    def submit(self, script: str) -> str: ...

    def state(self, job: str) -> JobState: ...

    def cancel(self, job: str) -> None: ...

    def tasks(self, job: str, count: int) -> list[JobState]: ...
