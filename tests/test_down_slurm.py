"""`runplz down` of a Slurm run whose driver is gone: ``scancel`` the job (or
the whole array), wait for the queue to empty (bounded), then bring the
outputs home where the live driver would have put them (one job: the run's
outputs folder; an array: ``<outputs>/<index>/`` for each task that left
some), never anything that reaches outside it; then record the run's end.
Only then: a job not cancelled, or outputs that did not come home, leave the
run open (a note says why; `down` fails with one line and can be run again).

Fast: `RunDown` over `FakeSlurm` and a login home reached through a
`LocalTransport` (real files, the real pull). Then, marked ``real``: the CLI
after a driver killed with -9, on the throwaway Slurm cluster through its
login node, for one job and for a map's job array.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.run_record import Ended, Note, Phase, Started
from runplz.domain.slurm_liveness import RUNS, folder_note
from runplz.domain.slurm_state import JobState, job_note
from runplz.domain.errors import TransportError
from runplz.domain.slurm_state import SchedulerError
from runplz.services.run_down import DownRefused, DownUnfinished, RunDown
from runplz.testing import FakeBrev, FakeClock, FakeContainerEngine, FakeLedger, FakeRunStore, FakeSlurm, RecordingConsole

from .ps_world import Runplz

RUN = "20261129-100000-abcdef"


class Parts:
    """A dead driver's slurm run record, FakeSlurm, and a login home ("login1",
    or this machine as the login node) holding the run folder."""

    def __init__(self, tmp_path):
        self.spool = str(tmp_path / "slurm")
        self.slurm = FakeSlurm(cpus=4, folder=self.spool)
        self.store = FakeRunStore()
        self.clock = FakeClock()
        self.home = tmp_path / "home"
        self.folder = self.home / RUNS / RUN
        (self.folder / "out").mkdir(parents=True)
        self.outputs = tmp_path / "mine" / "out"
        self.made: list[str] = []
        self.scheduler = None  # another BatchScheduler than FakeSlurm

    def record(self, target: str = "login1", job: str | None = None, *notes: str) -> None:
        self.store.begin(Started(RUN, "slurm", target, "demo", "train", (), (), str(self.outputs), 1.0))
        self.store.append(RUN, Phase("run", 2.0))
        if job is not None:
            self.store.append(RUN, Note(job_note(job, target), 2.5))
        for text in notes:
            self.store.append(RUN, Note(text, 2.6))
        self.store.kill(RUN)

    def submit(self, *directives: str, body: str = "sleep 60") -> str:
        lines = "".join(f"#SBATCH {d}\n" for d in (f"--chdir={self.spool}", *directives))
        job = self.slurm.submit(f"#!/bin/bash\n{lines}{body}\n")
        deadline = time.monotonic() + 20
        while self.slurm.state(job).state not in ("RUNNING", "PENDING") and not self.slurm.state(job).ended:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return job

    def transports(self, target):
        self.made.append(target.host)
        return LocalTransport(SubprocessRunner(), str(self.home), name=target.host)

    def login(self):
        self.made.append("<local>")
        return LocalTransport(SubprocessRunner(), str(self.home), name="this machine")

    def down(self, scheduler=None) -> RunDown:
        return RunDown(
            self.store, self.clock, RecordingConsole(), FakeContainerEngine(), FakeBrev(clock=self.clock), FakeLedger(),
            transports=self.transports, bundle_digest=lambda: "0" * 64,
            schedulers=lambda transport: scheduler or self.scheduler or self.slurm, login=self.login,
        )

    def close(self):
        for job in {j.split("_")[0] for j in self.slurm.queue()}:
            self.slurm.cancel(job)


@pytest.fixture
def parts(tmp_path):
    made = Parts(tmp_path)
    yield made
    made.close()


def _open(parts: Parts, error: type = DownUnfinished) -> str:
    """`down` fails with one line, notes why, and leaves the run open; the line."""
    with pytest.raises(error) as failed:
        parts.down().down(RUN)
    line = str(failed.value)
    assert "\n" not in line and line.endswith(f"the run stays open: `runplz down {RUN}` tries again"), line
    events = parts.store.events(RUN)
    assert not any(isinstance(e, Ended) for e in events)
    assert isinstance(events[-1], Note) and events[-1].text.endswith("; the run stays open"), events[-1]
    return line


def _ended(store: FakeRunStore) -> Ended:
    (ended,) = [e for e in store.events(RUN) if isinstance(e, Ended)]
    return ended


def test_one_job_is_cancelled_then_its_outputs_come_home_and_nothing_reaches_outside(parts):
    job = parts.submit()
    (parts.folder / "out" / "model.bin").write_bytes(b"weights")
    (parts.folder / "out" / "logs").mkdir()
    (parts.folder / "out" / "logs" / "train.log").write_text("step 1\n")
    secret = parts.home / "secret.txt"
    secret.write_text("not yours")
    (parts.folder / "out" / "escape").symlink_to(secret)  # points outside the run's outputs
    (parts.folder / "out" / "up").symlink_to("../../..")
    parts.record("login1", job)

    line = parts.down().down(RUN)

    assert line.startswith(f"run {RUN}: its driver was gone; cancelled Slurm job {job} on login1; brought 14 bytes "
                           f"of outputs to {parts.outputs} (left 2 paths on the cluster;"), line
    assert parts.slurm.state(job).state == "CANCELLED" and parts.slurm.queue() == []
    assert (parts.outputs / "model.bin").read_bytes() == b"weights"
    assert (parts.outputs / "logs" / "train.log").read_text() == "step 1\n"
    assert sorted(os.listdir(parts.outputs)) == ["logs", "model.bin"]  # the links stayed behind
    assert not (parts.folder / "out" / "model.bin").exists()  # moved, as the live driver moves them
    assert secret.read_text() == "not yours"
    assert _ended(parts.store).outcome == "interrupted"
    assert parts.made == ["login1"]
    assert "runplz down: its driver was gone; cancelled Slurm job" in parts.store.events(RUN)[-2].text
    assert "already ended" in parts.down().down(RUN)


def test_an_array_is_cancelled_whole_and_each_task_s_outputs_go_to_its_index(parts):
    job = parts.submit("--array=0-3%2")
    for index in range(4):
        (parts.folder / "tasks" / str(index) / "out").mkdir(parents=True)
    (parts.folder / "tasks" / "1" / "out" / "item.txt").write_text("1")
    (parts.folder / "tasks" / "3" / "out" / "item.txt").write_text("3")
    parts.outputs.mkdir(parents=True)
    (parts.outputs / "0").mkdir()
    (parts.outputs / "0" / "item.txt").write_text("0")  # brought home by the driver before it died
    parts.record("login1", job)

    line = parts.down().down(RUN)

    assert f"cancelled Slurm job {job} on login1; brought 2 bytes of outputs to {parts.outputs}/<index> for 2 tasks" in line
    assert [s.state for s in parts.slurm.tasks(job, 4)] == ["CANCELLED"] * 4
    assert {name: (parts.outputs / name / "item.txt").read_text() for name in os.listdir(parts.outputs)} == {
        "0": "0", "1": "1", "3": "3"}
    assert not (parts.outputs / "2").exists()
    assert _ended(parts.store).outcome == "interrupted"


def test_on_the_login_node_itself_and_with_a_noted_folder(parts, tmp_path):
    work = tmp_path / "work" / RUN
    (work / "out").mkdir(parents=True)
    (work / "out" / "hi.txt").write_text("hi")
    job = parts.submit()
    parts.record("local", job, folder_note(str(work)))
    line = parts.down().down(RUN)
    assert f"cancelled Slurm job {job} on local; brought 2 bytes of outputs to {parts.outputs}" in line, line
    assert parts.made == ["<local>"] and (parts.outputs / "hi.txt").read_text() == "hi"


def test_a_job_that_already_ended_still_gets_its_outputs_home(parts):
    job = parts.submit(body="echo done")
    deadline = time.monotonic() + 20
    while not parts.slurm.state(job).ended:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (parts.folder / "out" / "result.txt").write_text("42")
    parts.record("login1", job)
    line = parts.down().down(RUN)
    assert f"cancelled Slurm job {job} on login1; brought 2 bytes" in line
    assert parts.slurm.state(job).state == "COMPLETED"  # cancelling an ended job changes nothing
    assert (parts.outputs / "result.txt").read_text() == "42"


def test_a_missing_run_folder_or_no_outputs_is_said_and_the_run_still_ends(parts):
    job = parts.submit()
    parts.record("login1", job)
    assert "it left no outputs on the cluster" in parts.down().down(RUN)
    assert _ended(parts.store).outcome == "interrupted"


def test_a_run_folder_that_is_not_there_is_named(parts, tmp_path):
    job = parts.submit()
    parts.record("login1", job, folder_note(str(tmp_path / "elsewhere")))
    line = parts.down().down(RUN)
    assert f"cancelled Slurm job {job} on login1; found no run folder {tmp_path / 'elsewhere'} on login1" in line


def test_a_login_node_without_python3_keeps_the_outputs_and_says_so(parts):
    from runplz.testing import FakeTransport

    job = parts.submit()
    (parts.folder / "out" / "a.txt").write_text("a")
    parts.record("login1", job)
    parts.transports = lambda target: FakeTransport(name="login1")  # runs no program: python3 is exit 127
    line = _open(parts)
    assert f"cancelled Slurm job {job} on login1; could not read its run folder {RUNS}/{RUN} on login1" in line, line
    assert not parts.outputs.exists()
    assert parts.slurm.state(job).state == "CANCELLED"


class Stuck:
    """A scheduler whose job never leaves the queue."""

    def __init__(self):
        self.cancelled = []

    def cancel(self, job):
        self.cancelled.append(job)

    def state(self, job):
        return JobState(job, "RUNNING")


def test_a_job_still_queued_after_the_wait_is_said_and_its_outputs_still_come(parts):
    (parts.folder / "out" / "a.txt").write_text("a")
    parts.record("login1", "77")
    stuck = Stuck()
    parts.scheduler = stuck
    line = _open(parts)  # a job still in the queue may still write: the run stays open, `ps` keeps asking
    assert "cancelled Slurm job 77 on login1, but it was still RUNNING after 60s; brought 1 bytes" in line, line
    assert stuck.cancelled == ["77"] and 60 <= sum(parts.clock.sleeps) <= 61
    assert (parts.outputs / "a.txt").read_text() == "a"


def test_a_record_that_names_no_job_says_so(parts):
    parts.record("login1", None)
    assert "its record names no Slurm job (it was never submitted)" in parts.down().down(RUN)


def test_an_unreachable_login_node_says_how_to_cancel_by_hand(tmp_path):
    parts = Parts(tmp_path)
    parts.record("runplz@127.0.0.1:1", "55")
    from runplz.testing import FakeTransport

    def refused(target):
        transport = FakeTransport(name=str(target))
        transport.unreachable_until = float("inf")
        return transport

    parts.transports = refused
    line = _open(parts)
    assert "could not cancel Slurm job 55 on runplz@127.0.0.1:1: " in line and "(run `scancel 55` there)" in line
    assert "could not cancel Slurm job 55" in parts.store.events(RUN)[-1].text


def test_a_failed_down_is_not_forgotten_a_second_down_finishes_it(parts):
    job = parts.submit()
    (parts.folder / "out" / "a.txt").write_text("a")
    parts.record("login1", job)
    reach = parts.transports

    def refused(target):
        raise TransportError(f"ssh to {target.host} failed: Connection refused")

    parts.transports = refused
    assert "could not reach login1 to cancel Slurm job" in _open(parts)
    assert parts.slurm.state(job).state == "RUNNING"
    parts.transports = reach  # the login node is back
    line = parts.down().down(RUN)
    assert f"cancelled Slurm job {job} on login1; brought 1 bytes of outputs to {parts.outputs}" in line, line
    assert _ended(parts.store).outcome == "interrupted" and (parts.outputs / "a.txt").read_text() == "a"


class Refusing:
    """A scheduler whose scancel fails."""

    def cancel(self, job):
        raise SchedulerError(f"scancel {job} failed: Access/permission denied")


def test_a_scancel_that_fails_keeps_the_run_open_and_the_outputs_where_they_are(parts):
    (parts.folder / "out" / "a.txt").write_text("a")
    parts.record("login1", "88")
    parts.scheduler = Refusing()
    line = _open(parts)
    assert "could not cancel Slurm job 88 on login1: scancel 88 failed: Access/permission denied (run `scancel 88` there)" in line
    assert (parts.folder / "out" / "a.txt").exists() and not parts.outputs.exists()


class Blind:
    """A scheduler whose scancel works, then the connection breaks before squeue."""

    def __init__(self):
        self.cancelled = []

    def cancel(self, job):
        self.cancelled.append(job)

    def state(self, job):
        from runplz.domain.errors import ConnectionLost

        raise ConnectionLost("the connection to login1 broke")


def test_a_job_cancelled_but_not_seen_to_end_is_not_called_uncancelled_and_stays_open(parts):
    (parts.folder / "out" / "a.txt").write_text("a")
    parts.record("login1", "99")
    parts.scheduler = blind = Blind()
    line = _open(parts)
    assert "cancelled Slurm job 99 on login1 (could not see it leave the queue: the connection to login1 broke); " in line
    assert "could not cancel" not in line and blind.cancelled == ["99"]


@pytest.mark.parametrize("array", [False, True])
def test_outputs_this_machine_cannot_write_are_said_to_stay_on_the_cluster_after_a_real_cancel(parts, array):
    job = parts.submit(*(["--array=0-1"] if array else []))
    out = parts.folder / "tasks" / "1" / "out" if array else parts.folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.txt").write_text("a")
    parts.outputs.parent.mkdir(parents=True)
    parts.outputs.parent.rmdir()
    parts.outputs.parent.write_text("a file where the outputs folder's parent should be")
    parts.record("login1", job)

    line = _open(parts)

    assert f"cancelled Slurm job {job} on login1; 1 download failed, so those outputs stay in {RUNS}/{RUN} on login1 (" in line
    assert "could not be written to" in line and "Not a directory" in line and "could not cancel" not in line, line
    assert parts.slurm.state(job).state == "CANCELLED" and (out / "a.txt").read_text() == "a"
    parts.outputs.parent.unlink()  # the person makes room; down again brings them
    assert "brought 1 bytes of outputs" in parts.down().down(RUN)
    assert _ended(parts.store).outcome == "interrupted"
    assert (parts.outputs / "1" / "a.txt" if array else parts.outputs / "a.txt").read_text() == "a"


def test_no_way_to_slurm_keeps_the_run_open(tmp_path):
    parts = Parts(tmp_path)
    parts.record("login1", "12")
    down = RunDown(parts.store, parts.clock, RecordingConsole(), FakeContainerEngine(), FakeBrev(clock=parts.clock),
                   FakeLedger())
    with pytest.raises(DownUnfinished, match=r"could not reach Slurm to cancel job 12: run `scancel 12`"):
        down.down(RUN)
    assert not any(isinstance(e, Ended) for e in parts.store.events(RUN))


class Container:
    def __init__(self, down):
        self.down = down

    def run_down(self):
        return self.down


@pytest.mark.parametrize("target, fails, code, said", [
    ("login1", TransportError("ssh to login1 failed: no route to host"), 1,
     "could not reach login1 to cancel Slurm job 55: ssh to login1 failed: no route to host"),
    ("login1", PermissionError(13, "Permission denied", "/home/me/.ssh/config"), 1,
     "could not reach login1 to cancel Slurm job 55: [Errno 13] Permission denied"),
    ("-oProxyCommand=x@h", None, 2, "its record's login node '-oProxyCommand=x@h' is not usable"),
])
def test_a_login_node_that_cannot_be_reached_or_named_is_one_line_from_the_cli(parts, target, fails, code, said):
    from click.testing import CliRunner

    from runplz.cli.main import cli

    parts.record(target, "55")
    if fails is not None:
        def failing(target):
            raise fails

        parts.transports = failing
    result = CliRunner().invoke(cli, ["down", RUN], obj=Container(parts.down()))
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"runplz: error: run {RUN}: its driver was gone; ") and said in lines[0], (
        result.output)
    assert "Traceback" not in result.output and parts.made == []
    assert not any(isinstance(e, Ended) for e in parts.store.events(RUN))
    if code == 2:
        with pytest.raises(DownRefused):
            parts.down().down(RUN)


# ---------------------------------------------------------------- real parts: the throwaway cluster

JOB = '''
import os, time
from runplz import App, Image, SlurmConfig

app = App("down-slurm", slurm_config=SlurmConfig(account="runplz", poll_seconds=0.5, max_poll_seconds=2))


@app.function(image=Image.from_registry("python:3.11-slim"), min_memory=0.1, timeout=600)
def item(x: int, gate: str) -> int:
    open(os.path.join(os.environ["RUNPLZ_OUT"], "early.txt"), "w").write(f"early {x}")
    print("item-started", x, flush=True)
    while not os.path.exists(gate):
        time.sleep(0.2)
    return x


@app.local_entrypoint()
def main(gate: str, count: int = 0):
    if count:
        print(list(item.map(range(count), [gate] * count, concurrency=2)))
    else:
        print(item.remote(7, gate))
'''
LOGIN = "runplz-slurm"


@pytest.fixture
def cluster(slurm_queue_emptied):
    return slurm_queue_emptied


def _detached_then_killed(runplz, cluster, *args: str) -> str:
    """`runplz slurm --detach`, its background driver killed with SIGKILL once the
    cluster runs a task of it; the run's id."""
    done = runplz("slurm", "--host", LOGIN, "--detach", "job.py", *args, timeout=240)
    found = re.search(r"run (\S+) goes on in the background", done.stderr)
    assert done.returncode == 0 and found, done.stdout + done.stderr
    run = found.group(1)
    deadline = time.monotonic() + 240
    while "RUNNING" not in cluster.run("squeue", "-h", "-r", "-o", "%T").stdout:
        assert time.monotonic() < deadline, runplz("logs", run).stdout[-3000:]
        time.sleep(0.5)
    status = runplz("status", "--no-check", run).stdout
    pid = int(re.search(r"^driver\s+pid (\d+) on \S+ \(running\)$", status, re.M).group(1))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "(gone)" not in runplz("status", "--no-check", run).stdout:
        assert time.monotonic() < deadline, "the driver never went"
        time.sleep(0.2)
    return run


@pytest.mark.real
def test_down_cancels_a_killed_detached_drivers_running_job_and_brings_its_outputs_home(tmp_path, cluster, slurm_login):
    # A workdir of its own (not $HOME): `down` finds the run folder by the record's note.
    workdir = os.path.join(cluster.shared, f"wd-{RUN}")
    runplz = Runplz(tmp_path, JOB.replace('SlurmConfig(account="runplz",', f'SlurmConfig(account="runplz", workdir="{workdir}",'))
    gate = os.path.join(cluster.shared, f"never-{RUN}")
    run = _detached_then_killed(runplz, cluster, "--gate", gate)
    (job,) = cluster.queue()
    deadline = time.monotonic() + 60  # the job's first lines: it wrote its early output
    while "item-started" not in slurm_login.ssh(f"cat {workdir}/{RUNS}/{run}/ctl/job.log 2>/dev/null").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.3)

    down = runplz("down", run, timeout=240)

    assert down.returncode == 0, down.stdout + down.stderr
    out = runplz.repo / "out"
    brought = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert re.search(rf"cancelled Slurm job {job} on {LOGIN}; brought \d+ bytes of outputs to {out}$", down.stdout, re.M), (
        down.stdout, brought)
    assert cluster.queue() == []
    assert (out / "early.txt").read_text() == "early 7", brought
    status = runplz("status", run).stdout
    assert "interrupted" in status and "runplz down: its driver was gone; cancelled Slurm job" in status, status


@pytest.mark.real
def test_a_killed_drivers_job_array_is_counted_by_ps_and_down_brings_each_task_s_outputs_to_its_index(
    tmp_path, cluster, slurm_login,
):
    runplz = Runplz(tmp_path, JOB)
    gate = os.path.join(cluster.shared, f"never-array-{RUN}")
    run = _detached_then_killed(runplz, cluster, "--gate", gate, "--count", "4")
    job = cluster.queue()[0].split("_")[0]
    view = f"Slurm job array {job} (4 tasks): 2 PENDING (JobArrayTaskLimit), 2 RUNNING; cancel it: `runplz down {run}`"
    row = runplz.wait_row(run, view, seconds=60)
    assert "driver died during run" in row
    assert f"on backend  {view}" in runplz("status", run).stdout

    deadline = time.monotonic() + 60  # both running tasks wrote their early output
    while len(slurm_login.ssh(f"ls {RUNS}/{run}/tasks/*/out/early.txt 2>/dev/null").stdout.split()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    down = runplz("down", run, timeout=240)

    assert down.returncode == 0, down.stdout + down.stderr
    out = runplz.repo / "out"
    brought = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert re.search(rf"cancelled Slurm job {job} on {LOGIN}; brought \d+ bytes of outputs to {out}/<index> for 2 tasks$",
                     down.stdout, re.M), (down.stdout, brought)
    assert cluster.queue() == []
    started = sorted(os.listdir(out))
    assert len(started) == 2 and all((out / i / "early.txt").read_text() == f"early {i}" for i in started), brought
    assert runplz.ps_row(run)[0].split()[4] == "interrupted"
