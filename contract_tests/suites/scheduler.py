"""The `BatchScheduler` contract (ports/scheduler.py)."""

from __future__ import annotations

import os
import time

import pytest

from runplz.domain.slurm_state import SchedulerError
from runplz.ports.scheduler import BatchScheduler


class SchedulerFixtures:
    @pytest.fixture
    def scheduler(self) -> BatchScheduler:
        raise NotImplementedError

    @pytest.fixture
    def shared(self) -> str:
        """A folder the jobs and this test both see (the cluster's shared file system)."""
        raise NotImplementedError

    @pytest.fixture
    def cpus(self) -> int:
        """How many CPUs the one node has (and it has two GPUs)."""
        raise NotImplementedError

    @pytest.fixture
    def requeue(self):
        """``requeue(task)``: what a cluster admin's ``scontrol requeue TASK`` does
        (`SchedulerError` when refused), letting the task start again at once."""
        raise NotImplementedError

    @pytest.fixture
    def read(self, shared):
        """Read a file the jobs wrote under ``shared``."""
        def read(name: str) -> str:
            with open(os.path.join(shared, name)) as handle:
                return handle.read()

        return read


def script(shared: str, body: str, *options: str) -> str:
    lines = ["#!/bin/bash", f"#SBATCH --chdir={shared}", f"#SBATCH --output={shared}/%j.out", "#SBATCH --mem=100M"]
    lines += [f"#SBATCH {option}" for option in options]
    return "\n".join(lines) + "\n" + body + "\n"


def wait_for(scheduler, job: str, done, timeout: float = 60):
    deadline = time.monotonic() + timeout
    state = scheduler.state(job)
    while not done(state) and time.monotonic() < deadline:
        time.sleep(0.2)
        state = scheduler.state(job)
    return state


def ended(scheduler, job: str, timeout: float = 60):
    return wait_for(scheduler, job, lambda state: state.ended, timeout)


def watch_tasks(scheduler, job: str, count: int, done, timeout: float = 60):
    """Poll ``tasks`` until ``done(states)``; returns every look (the last one last)."""
    deadline = time.monotonic() + timeout
    looks = [scheduler.tasks(job, count)]
    while not done(looks[-1]) and time.monotonic() < deadline:
        time.sleep(0.2)
        looks.append(scheduler.tasks(job, count))
    return looks


class AbstractSchedulerTests:
    def test_is_a_scheduler(self, scheduler):
        assert isinstance(scheduler, BatchScheduler)
        assert scheduler.name

    def test_a_job_that_exits_0_completes_and_its_output_is_written(self, scheduler, shared, read):
        job = scheduler.submit(script(shared, 'echo "hello from $SLURM_JOB_ID"'))
        assert job.isdigit()
        state = ended(scheduler, job)
        assert (state.state, state.exit_code) == ("COMPLETED", 0)
        assert read(f"{job}.out") == f"hello from {job}\n"

    def test_a_failing_job_ends_failed_with_its_exact_exit_code(self, scheduler, shared):
        job = scheduler.submit(script(shared, "exit 3"))
        state = ended(scheduler, job)
        assert (state.state, state.exit_code) == ("FAILED", 3)

    def test_a_job_killed_by_a_signal_reports_128_plus_the_signal(self, scheduler, shared):
        job = scheduler.submit(script(shared, "kill -KILL $$"))
        state = ended(scheduler, job)
        assert (state.state, state.exit_code) == ("FAILED", 137)

    def test_a_held_job_is_pending_with_its_reason_until_cancelled(self, scheduler, shared):
        job = scheduler.submit(script(shared, "true", "--hold"))
        state = scheduler.state(job)
        assert (state.state, state.reason) == ("PENDING", "JobHeldUser")
        assert state.waiting and not state.ended
        scheduler.cancel(job)
        assert ended(scheduler, job).state == "CANCELLED"

    def test_a_running_job_is_cancelled(self, scheduler, shared):
        job = scheduler.submit(script(shared, "sleep 300"))
        assert wait_for(scheduler, job, lambda state: state.state == "RUNNING").state == "RUNNING"
        scheduler.cancel(job)
        assert ended(scheduler, job).state == "CANCELLED"
        scheduler.cancel(job)  # again: no error

    def test_a_job_waits_for_resources_while_the_node_is_full(self, scheduler, shared, cpus):
        whole = scheduler.submit(script(shared, "sleep 300", f"--cpus-per-task={cpus}"))
        try:
            assert wait_for(scheduler, whole, lambda state: state.state == "RUNNING").state == "RUNNING"
            waiting = scheduler.submit(script(shared, "true", "--cpus-per-task=1"))
            state = wait_for(scheduler, waiting, lambda state: state.reason == "Resources")
            assert (state.state, state.reason) == ("PENDING", "Resources")
            scheduler.cancel(waiting)
        finally:
            scheduler.cancel(whole)
        assert ended(scheduler, whole).state == "CANCELLED"

    def test_an_impossible_job_is_refused_at_submit(self, scheduler, shared):
        with pytest.raises(SchedulerError, match="refused the job: Requested node configuration is not available"):
            scheduler.submit(script(shared, "true", "--gres=gpu:3"))
        with pytest.raises(SchedulerError, match="refused the job: Invalid generic resource"):
            scheduler.submit(script(shared, "true", "--gres=tpu:1"))

    def test_a_gpu_job_sees_its_devices(self, scheduler, shared, read):
        job = scheduler.submit(script(shared, 'echo "$CUDA_VISIBLE_DEVICES"', "--gres=gpu:2"))
        assert ended(scheduler, job).state == "COMPLETED"
        assert read(f"{job}.out") == "0,1\n"

    # --- job arrays (a `.map()`) ---

    def test_an_array_is_one_job_whose_tasks_see_their_index(self, scheduler, shared, read):
        job = scheduler.submit(script(
            shared, 'echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID"; exit "$SLURM_ARRAY_TASK_ID"',
            "--array=0-3%2", f"--output={shared}/%A-%a.log",
        ))
        deadline = time.monotonic() + 60
        states = scheduler.tasks(job, 4)
        while not all(state.ended for state in states) and time.monotonic() < deadline:
            time.sleep(0.2)
            states = scheduler.tasks(job, 4)
        assert [s.job_id for s in states] == [f"{job}_{index}" for index in range(4)]
        assert [(s.state, s.exit_code) for s in states] == [
            ("COMPLETED", 0), ("FAILED", 1), ("FAILED", 2), ("FAILED", 3)
        ]
        assert [read(f"{job}-{index}.log") for index in range(4)] == [f"{job} {index}\n" for index in range(4)]
        assert ended(scheduler, job).ended

    def test_an_array_runs_at_most_its_limit_at_once_and_cancel_ends_every_task(self, scheduler, shared):
        job = scheduler.submit(script(shared, "sleep 300", "--array=0-2%1", f"--output={shared}/%A-%a.log"))
        states = scheduler.tasks(job, 3)
        deadline = time.monotonic() + 60
        while states[0].state != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
            states = scheduler.tasks(job, 3)
        assert states[0].state == "RUNNING"
        assert [s.state for s in states[1:]] == ["PENDING", "PENDING"]
        assert scheduler.state(job).state in ("RUNNING", "PENDING")
        scheduler.cancel(job)
        deadline = time.monotonic() + 60
        while not all(s.ended for s in states) and time.monotonic() < deadline:
            time.sleep(0.2)
            states = scheduler.tasks(job, 3)
        assert [s.state for s in states] == ["CANCELLED"] * 3
        assert ended(scheduler, job).state == "CANCELLED"

    def test_tasks_of_an_unknown_job_are_unknown(self, scheduler):
        assert [s.state for s in scheduler.tasks("999999", 2)] == ["UNKNOWN", "UNKNOWN"]

    # --- what a map's follower relies on when it winds down or a task is requeued ---

    def test_cancelling_an_array_keeps_the_ends_of_tasks_that_ended_and_starts_no_pending_one(
        self, scheduler, shared
    ):
        body = 'case "$SLURM_ARRAY_TASK_ID" in 0) exit 0;; 1) exit 3;; *) sleep 300;; esac'
        job = scheduler.submit(script(shared, body, "--array=0-3%1", f"--output={shared}/%A-%a.log"))
        looks = watch_tasks(scheduler, job, 4, lambda s: s[1].ended and s[2].state == "RUNNING", timeout=120)
        assert [s.state for s in looks[-1]] == ["COMPLETED", "FAILED", "RUNNING", "PENDING"]
        scheduler.cancel(job)
        states = watch_tasks(scheduler, job, 4, lambda s: all(t.ended for t in s))[-1]
        assert [(s.state, s.exit_code) for s in states[:2]] == [("COMPLETED", 0), ("FAILED", 3)]
        assert [s.state for s in states[2:]] == ["CANCELLED", "CANCELLED"]
        assert [os.path.exists(os.path.join(shared, f"{job}-{i}.log")) for i in range(4)] == [True, True, True, False]

    def test_a_requeued_array_task_waits_again_then_runs_from_its_start(self, scheduler, shared, read, requeue):
        body = (
            'echo "run ${SLURM_RESTART_COUNT:-0}" >> "runs-$SLURM_ARRAY_JOB_ID-$SLURM_ARRAY_TASK_ID"\n'
            '[ -n "$SLURM_RESTART_COUNT" ] || sleep 300'
        )
        job = scheduler.submit(script(shared, body, "--array=0-1", "--requeue", f"--output={shared}/%A-%a.log"))
        try:
            looks = watch_tasks(scheduler, job, 2, lambda s: [t.state for t in s] == ["RUNNING"] * 2)
            assert [s.state for s in looks[-1]] == ["RUNNING", "RUNNING"]
            runs = os.path.join(shared, f"runs-{job}-0")
            deadline = time.monotonic() + 60
            while not os.path.exists(runs) and time.monotonic() < deadline:  # its first run is under way
                time.sleep(0.1)
            requeue(f"{job}_0")
            looks = watch_tasks(scheduler, job, 2, lambda s: s[0].ended, timeout=300)
            first = [look[0] for look in looks]
            assert (first[-1].state, first[-1].exit_code) == ("COMPLETED", 0)
            assert not any(state.ended for state in first[:-1]), first  # never an end before its real one
            assert any(state.waiting for state in first), first
            assert read(f"runs-{job}-0") == "run 0\nrun 1\n"  # it ran again from its start
            assert looks[-1][1].state == "RUNNING"  # the other task ran on
        finally:
            scheduler.cancel(job)

    def test_a_task_of_a_no_requeue_array_is_not_requeued(self, scheduler, shared, requeue):
        options = ("--array=0-0", "--no-requeue", f"--output={shared}/%A-%a.log")
        job = scheduler.submit(script(shared, "sleep 300", *options))
        try:
            looks = watch_tasks(scheduler, job, 1, lambda s: s[0].state == "RUNNING")
            assert looks[-1][0].state == "RUNNING"
            with pytest.raises(SchedulerError, match="Requested operation is presently disabled"):
                requeue(f"{job}_0")
            assert scheduler.tasks(job, 1)[0].state == "RUNNING"
        finally:
            scheduler.cancel(job)
