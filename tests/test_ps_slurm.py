"""`runplz ps` / `status` for a Slurm run whose driver is gone: the job in
squeue (PENDING with its reason, RUNNING), else its end in sacct; a job
array as a count of its tasks by state; one connection per login node; an
unreachable login node is one warning.

Fast: the pure views, the run-folder read by a real ``python3`` over a
`LocalTransport` (changing nothing), the service and the CLI over `FakeSlurm`.
Then, marked ``real``: `runplz ps` / `status` as commands after a driver
killed with -9, on the throwaway Slurm cluster through its login node.
"""

from __future__ import annotations

import os
import re
import secrets
import time

import pytest

from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.run_liveness import NOT_REACHED, BackendView
from runplz.domain.run_record import Note
from runplz.domain.run_summary import summarize
from runplz.domain.slurm_liveness import (
    FOLDER_MARK,
    FOLDER_SCRIPT,
    NO_JOB,
    RUNS,
    SlurmFolder,
    array_view,
    folder_argv,
    folder_note,
    job_view,
    parse_folders,
    run_folder,
)
from runplz.domain.slurm_state import JobState, job_note
from runplz.services.run_reconcile import RunReconciler
from runplz.testing import FakeBrev, FakeClock, FakeContainerEngine, FakeRunStore, FakeSlurm, FakeTransport
from testsupport.sshd import free_port

from .ps_world import T0, Runplz, record, snapshot, write_record

R = "20240501-100001-abcdef"


# ---------------------------------------------------------------- the pure views

def test_the_run_folder_is_the_noted_one_else_the_default():
    assert run_folder(R, ["slurm job 42 submitted on login1"]) == f".runplz/slurm-runs/{R}"
    assert run_folder(R, [folder_note("/work/x/.runplz/slurm-runs/" + R)]) == f"/work/x/.runplz/slurm-runs/{R}"
    from runplz.services.slurm_backend import RUNS_FOLDER

    assert RUNS == RUNS_FOLDER  # where the slurm backend puts them


def test_the_folder_report_is_read_from_marked_lines_only():
    text = (
        "Welcome to the cluster!\n"
        f'{FOLDER_MARK}{{"folder": "a", "found": true, "out": true}}\n'
        f'{FOLDER_MARK}{{"folder": "b", "found": true, "out": false, "tasks": 4, "left": [1, 3]}}\n'
        f'{FOLDER_MARK}{{"folder": "c", "found": false}}\n'
        f'{FOLDER_MARK}{{"folder": "d", "found": true, "tasks": "many"}}\n'
        f"{FOLDER_MARK}not json\n"
        '{"folder": "e", "found": true}\n'
    )
    assert parse_folders(text) == {
        "a": SlurmFolder(True, True),
        "b": SlurmFolder(True, False, 4, (1, 3)),
        "c": SlurmFolder(False),
    }


def test_views_of_one_job():
    held = job_view(R, "42", JobState("42", "PENDING", "JobHeldUser"), None)
    assert held == BackendView("Slurm job 42 PENDING (JobHeldUser)", True, f"cancel it: `runplz down {R}`")
    assert job_view(R, "42", JobState("42", "RUNNING"), None).text == "Slurm job 42 RUNNING"
    failed = job_view(R, "42", JobState("42", "FAILED", exit_code=3), SlurmFolder(True, True))
    assert failed.line() == f"Slurm job 42 FAILED (exit 3), driver gone, outputs not collected; run `runplz down {R}`"
    assert failed.live is False
    done = job_view(R, "42", JobState("42", "COMPLETED", exit_code=0), SlurmFolder(True, False))
    assert done.text == "Slurm job 42 COMPLETED (exit 0), driver gone"
    assert job_view(R, "42", JobState("42", "UNKNOWN"), None) == BackendView("Slurm lists no job 42")
    assert NO_JOB.text == "no Slurm job was submitted"


def test_views_of_a_job_array_count_its_tasks_by_state():
    tasks = [JobState(f"7_{i}", s, r) for i, (s, r) in enumerate([
        ("COMPLETED", ""), ("RUNNING", ""), ("PENDING", "JobArrayTaskLimit"), ("PENDING", "JobArrayTaskLimit"),
        ("FAILED", ""), ("PENDING", "Priority"),
    ])]
    live = array_view(R, "7", tasks, None)
    assert live.text == "Slurm job array 7 (6 tasks): 3 PENDING (JobArrayTaskLimit), 1 RUNNING, 1 COMPLETED, 1 FAILED"
    assert live.live is True and live.hint == f"cancel it: `runplz down {R}`"
    ended = [JobState("7_0", "COMPLETED", exit_code=0), JobState("7_1", "CANCELLED", exit_code=0)] * 2
    view = array_view(R, "7", ended, SlurmFolder(True, False, 4, (1, 3)))
    assert view.line() == (
        "Slurm job array 7 (4 tasks) ended: 2 CANCELLED, 2 COMPLETED, driver gone, "
        f"outputs of 2 tasks not collected; run `runplz down {R}`")
    assert view.live is False
    assert array_view(R, "7", [JobState("7_0", "UNKNOWN")], None).text == "Slurm lists no task of job array 7 (1 task)"


# ---------------------------------------------------------------- the run-folder read, with a real python3

def cluster_home(tmp_path, runs: dict[str, str]):
    """A login home with a slurm run folder per entry of ``runs`` (run -> "job" or
    "array"): a job with outputs left, an array of 4 tasks with outputs left in 1 and 3."""
    home = tmp_path / "home"
    for run, kind in runs.items():
        folder = home / RUNS / run
        (folder / "ctl").mkdir(parents=True)
        (folder / "out").mkdir()
        if kind == "job":
            (folder / "out" / "model.bin").write_bytes(b"weights")
            continue
        for index in range(4):
            (folder / "tasks" / str(index) / "out").mkdir(parents=True)
        (folder / "tasks" / "1" / "out" / "part.txt").write_text("one")
        (folder / "tasks" / "3" / "out" / "deep").mkdir()
        (folder / "tasks" / "3" / "out" / "deep" / "part.txt").write_text("three")
        (folder / "tasks" / "notes").mkdir()  # not a task's folder
    home.mkdir(exist_ok=True)
    return home


def test_the_folder_read_finds_jobs_arrays_and_leftovers_and_changes_nothing(tmp_path):
    home = cluster_home(tmp_path, {"r-job": "job", "r-array": "array"})
    (home / RUNS / "r-empty" / "out").mkdir(parents=True)
    before = snapshot(home)
    transport = LocalTransport(SubprocessRunner(), str(home))
    transport.connect()
    folders = [f"{RUNS}/r-job", f"{RUNS}/r-array", f"{RUNS}/r-empty", f"{RUNS}/r-missing"]
    result = transport.run(folder_argv(folders), input=FOLDER_SCRIPT.encode())
    assert result.exit_code == 0, result.stderr
    assert parse_folders(result.stdout) == {
        f"{RUNS}/r-job": SlurmFolder(True, True),
        f"{RUNS}/r-array": SlurmFolder(True, False, 4, (1, 3)),
        f"{RUNS}/r-empty": SlurmFolder(True, False),
        f"{RUNS}/r-missing": SlurmFolder(False),
    }
    assert snapshot(home) == before


# ---------------------------------------------------------------- the service and the CLI over FakeSlurm

def _wait_state(slurm: FakeSlurm, job: str, state: str) -> None:
    deadline = time.monotonic() + 20
    while slurm.state(job).state != state:
        assert time.monotonic() < deadline, (job, slurm.state(job))
        time.sleep(0.05)


class Cluster:
    """FakeSlurm and login homes: "login1" (a real home, `LocalTransport`),
    "local" (this machine as the login node: the same home), any other
    refuses. Records of slurm runs in a `FakeRunStore`."""

    def __init__(self, tmp_path):
        self.spool = str(tmp_path / "slurm")
        self.slurm = FakeSlurm(cpus=4, folder=self.spool)
        self.store = FakeRunStore()
        self.made: list[str] = []
        self.runs: dict[str, str] = {}
        self.jobs: dict[str, str] = {}
        self.home = cluster_home(tmp_path, {})

    def submit(self, *directives: str, body: str = "sleep 60") -> str:
        """A job for FakeSlurm (its log goes to the folder it keeps its scripts in)."""
        lines = "".join(f"#SBATCH {d}\n" for d in (f"--chdir={self.spool}", *directives))
        return self.slurm.submit(f"#!/bin/bash\n{lines}{body}\n")

    def run(self, name: str, target: str, n: int, job: str | None, kind: str = "job") -> str:
        run = record(self.store, n, "slurm", target, dead=False)
        if job is not None:
            self.store.append(run, Note(job_note(job, target), T0 + n + 1.5))
            self.jobs[name] = job
        self.store.end_driver(n)
        self.runs[name] = run
        if kind:
            cluster_home(self.home.parent, {run: kind})
        return run

    def transports(self, target):
        self.made.append(target.host)
        if target.host == "login1":
            return LocalTransport(SubprocessRunner(), str(self.home), name="login1")
        refused = FakeTransport(name=str(target))
        refused.unreachable_until = float("inf")
        return refused

    def login(self):
        self.made.append("<local>")
        return LocalTransport(SubprocessRunner(), str(self.home), name="this machine")

    def reconciler(self, **kw) -> RunReconciler:
        parts = dict(transports=self.transports, schedulers=lambda transport: self.slurm, login=self.login)
        return RunReconciler(FakeContainerEngine(), FakeBrev(), clock=FakeClock(), seconds=5.0, **{**parts, **kw})

    def rows(self, *names):
        chosen = [self.runs[n] for n in names] if names else list(self.runs.values())
        return [summarize(self.store.events(r), self.store.driver_alive(r), T0 + 100, r) for r in chosen]

    def close(self):
        leftover = self.slurm.queue()
        for job in {j.split("_")[0] for j in leftover}:
            self.slurm.cancel(job)


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path)
    yield made
    made.close()


def _fill(cluster: Cluster) -> None:
    slurm = cluster.slurm
    cluster.run("held", "login1", 1, cluster.submit("--hold"))
    cluster.run("running", "login1", 2, cluster.submit())
    failed = cluster.submit(body="exit 3")
    _wait_state(slurm, failed, "FAILED")
    cluster.run("failed", "login1", 3, failed)
    cluster.run("array", "login1", 4, cluster.submit("--array=0-3%1"), kind="array")
    cluster.run("here", "local", 5, cluster.submit("--hold"), kind="")
    cluster.run("never", "login1", 6, None, kind="")
    cluster.run("far", "me@nowhere:2222", 7, "99")


def test_each_login_node_is_asked_once_and_only_read(cluster):
    _fill(cluster)
    before = snapshot(cluster.home)
    submitted = len(cluster.slurm.submitted)
    got = cluster.reconciler().check(cluster.rows())
    views = {name: got.views.get(run) for name, run in cluster.runs.items()}
    jobs = cluster.jobs
    assert views["held"].line() == f"Slurm job {jobs['held']} PENDING (JobHeldUser); cancel it: `runplz down {cluster.runs['held']}`"
    assert views["running"] == BackendView(f"Slurm job {jobs['running']} RUNNING", True,
                                           f"cancel it: `runplz down {cluster.runs['running']}`")
    assert views["failed"].text == f"Slurm job {jobs['failed']} FAILED (exit 3), driver gone, outputs not collected"
    assert views["array"].text == f"Slurm job array {jobs['array']} (4 tasks): 3 PENDING (JobArrayTaskLimit), 1 RUNNING"
    assert views["here"].text == f"Slurm job {jobs['here']} PENDING (JobHeldUser)"
    assert views["never"] == NO_JOB
    assert views["far"] == NOT_REACHED
    assert got.warnings == ("could not check Slurm login node me@nowhere:2222: me@nowhere:2222 did not answer within 0s",)
    assert sorted(cluster.made) == ["<local>", "login1", "nowhere"]  # one connection per login node
    assert snapshot(cluster.home) == before and len(cluster.slurm.submitted) == submitted
    assert cluster.slurm.state(jobs["running"]).state == "RUNNING"  # nothing was cancelled


def test_an_ended_array_shows_its_ends_and_the_outputs_left(cluster):
    array = cluster.submit("--array=0-3", body="exit $((SLURM_ARRAY_TASK_ID % 2))")
    cluster.run("array", "login1", 1, array, kind="array")
    deadline = time.monotonic() + 20
    while not all(t.ended for t in cluster.slurm.tasks(array, 4)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (view,) = cluster.reconciler().check(cluster.rows()).views.values()
    assert view.line() == (f"Slurm job array {array} (4 tasks) ended: 2 COMPLETED, 2 FAILED, driver gone, "
                           f"outputs of 2 tasks not collected; run `runplz down {cluster.runs['array']}`")


def test_without_a_slurm_client_a_slurm_run_is_one_warning(cluster):
    cluster.run("held", "login1", 1, cluster.submit("--hold"))
    got = cluster.reconciler(schedulers=None).check(cluster.rows())
    assert got.views == {cluster.runs["held"]: NOT_REACHED}
    assert got.warnings == ("could not check Slurm login node login1: this runplz has no Slurm client wired in",)


def test_ps_and_status_show_the_cluster_s_answer(cluster):
    _fill(cluster)

    def invoke(*args):
        from click.testing import CliRunner

        from runplz.cli.main import cli
        from runplz.testing import fake_container

        container = fake_container(run_store=cluster.store)
        container.run_reconciler.add_kwargs(
            transports=lambda **kw: cluster.transports(**kw), schedulers=lambda **kw: cluster.slurm, login=cluster.login)
        return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)

    done = invoke("ps")
    assert done.exit_code == 0, done.output
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert rows[cluster.runs["array"]].endswith("3 PENDING (JobArrayTaskLimit), 1 RUNNING; cancel it: "
                                                f"`runplz down {cluster.runs['array']}`")
    assert done.stderr.splitlines() == [
        "runplz: warning: could not check Slurm login node me@nowhere:2222: me@nowhere:2222 did not answer within 0s"]
    status = invoke("status", cluster.runs["failed"])
    assert f"on backend  Slurm job {cluster.jobs['failed']} FAILED (exit 3), driver gone" in status.stdout


# ---------------------------------------------------------------- real parts: the throwaway cluster

SLURM_JOB = '''
import os, sys, time
from runplz import App, Image, SlurmConfig

app = App("ps-slurm", slurm_config=SlurmConfig(account="runplz", poll_seconds=0.5, max_poll_seconds=2))


@app.function(image=Image.from_registry("python:3.11-slim"), min_memory=0.1, timeout=600)
def held(gate: str, code: int = 3) -> None:
    open(os.path.join(os.environ["RUNPLZ_OUT"], "early.txt"), "w").write("early")
    print("held-started", flush=True)
    while not os.path.exists(gate):
        time.sleep(0.2)
    sys.exit(code)
'''
LOGIN = "runplz-slurm"


@pytest.fixture
def real_cluster(slurm_queue_emptied):
    return slurm_queue_emptied


@pytest.mark.real
def test_a_killed_drivers_job_is_seen_running_then_failed_and_an_unreachable_login_is_a_warning(tmp_path, real_cluster):
    runplz = Runplz(tmp_path, SLURM_JOB)
    gate = os.path.join(real_cluster.shared, f"ps-gate-{secrets.token_hex(6)}")
    run = runplz.killed_mid_run("slurm", "--host", LOGIN, "job.py", "--gate", gate)
    (job,) = real_cluster.queue()
    nobody = f"runplz@127.0.0.1:{free_port()}"
    old = "20000101-000000-abcdef"
    write_record(runplz.state, old, nobody, backend="slurm")

    started = time.monotonic()
    row, done = runplz.ps_row(run)
    assert time.monotonic() - started < 30
    assert "driver died during run" in row, done.stdout
    assert row.endswith(f"  Slurm job {job} RUNNING; cancel it: `runplz down {run}`"), done.stdout + done.stderr
    (warning,) = done.stderr.splitlines()
    assert warning.startswith(f"runplz: warning: could not check Slurm login node {nobody}: "), warning
    assert next(line for line in done.stdout.splitlines() if line.startswith(old)).endswith("not reached (see the warning)")
    status = runplz("status", run)
    assert f"\non backend  Slurm job {job} RUNNING; cancel it" in status.stdout, status.stdout + status.stderr
    assert real_cluster.queue() == [job]  # ps and status only read

    with open(gate, "w"):
        pass
    try:
        row = runplz.wait_row(
            run, f"Slurm job {job} FAILED (exit 3), driver gone, outputs not collected; run `runplz down {run}`")
        down = runplz("down", run, timeout=180)
        assert down.returncode == 0, down.stdout + down.stderr
        out = runplz.repo / "out"
        brought = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
        assert re.search(rf"cancelled Slurm job {job} on {LOGIN}; brought \d+ bytes of outputs to {out}$", down.stdout, re.M), (
            down.stdout, brought)
        assert (out / "early.txt").read_text() == "early", brought
        assert runplz.ps_row(run)[0].split()[4] == "interrupted"  # ended: no longer asked about
    finally:
        os.unlink(gate)
