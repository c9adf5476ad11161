"""`runplz ps` / `status` ask the backends how runs whose driver is gone are doing.

Fast tests: the pure mapping, the run-folder script run by a real ``sh`` over
a `LocalTransport`, and the service and CLI over the shipped fakes. Then, marked
``real``: `runplz ps` as a command, after a driver killed with -9, against a real
Docker engine, a throwaway sshd box, and the brev emulator.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from runplz.adapters.fake_brev import FakeBox
from runplz.adapters.marked_processes import ProcessFence
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.cli.main import cli
from runplz.domain.errors import Unreachable
from runplz.domain.host import SshTarget
from runplz.domain.run_liveness import (
    FOLDER_MARK,
    FOLDER_SCRIPT,
    NOT_REACHED,
    BackendView,
    FolderState,
    Probe,
    box_view,
    container_view,
    folder_argv,
    folder_view,
    parse_folder_report,
    probe_for,
)
from runplz.domain.run_record import Detached, Ended, Phase, Started
from runplz.domain.run_summary import summarize
from runplz.ports.container_engine import ContainerInfo
from runplz.services.run_reconcile import RunReconciler
from runplz.services.run_views import ps_table, status_text
from runplz.testing import FakeBrev, FakeClock, FakeContainerEngine, FakeRunStore, FakeTransport, fake_container
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator
from testsupport.signals import default_signals
from testsupport.sshd import free_port

from .jobs import make_repo

T0 = 1_714_564_800.0
READS = {"search --help", "ls"}


def run_id(n: int) -> str:
    return f"20240501-1{n:05d}-abcdef"


def record(store: FakeRunStore, n: int, backend: str, target: str, *, dead=True, ended=False, detached=False) -> str:
    run = run_id(n)
    store.driver = n
    store.begin(Started(run, backend, target, "demo", "train", (), (), "/out", T0 + n))
    store.append(run, Phase("run", T0 + n + 1))
    if detached:
        store.append(run, Detached(T0 + n + 2))
    if ended:
        store.append(run, Ended(0, "ok", T0 + n + 3))
    if dead:
        store.end_driver(n)
    return run


def summary(backend="ssh", target="gpu1", *, alive=False, ended=False, detached=False):
    events = [Started("r1", backend, target, "demo", "train", (), (), "/out", T0), Phase("run", T0 + 1)]
    events += [Detached(T0 + 2)] if detached else []
    events += [Ended(3, "failed", T0 + 3)] if ended else []
    return summarize(events, alive, T0 + 10)


# ---------------------------------------------------------------- the pure mapping

def test_only_runs_whose_driver_is_gone_before_an_end_are_asked_about():
    assert probe_for(summary("local", "docker")) == Probe("docker")
    assert probe_for(summary("ssh", "me@gpu1:2222")) == Probe("ssh", "me@gpu1:2222")
    assert probe_for(summary("brev", "my-box", detached=True)) == Probe("brev", "my-box")
    assert probe_for(summary(alive=True)) is None  # the driver knows best
    assert probe_for(summary(ended=True)) is None
    assert probe_for(summary("local", "native")) is None
    assert probe_for(summary("modal", "Modal")) is None


def test_the_folder_report_is_read_from_marked_lines_only():
    text = (
        "Welcome to the box!\n"
        f"{FOLDER_MARK}r1 running no\n"
        f"{FOLDER_MARK}r2 ended yes no 3\n"
        f"{FOLDER_MARK}r3 ended no yes 124\n"
        f"{FOLDER_MARK}r4 orphaned yes\n"
        f"{FOLDER_MARK}r5 missing no\n"
        f"{FOLDER_MARK}r6 pending no\n"
        f"{FOLDER_MARK}r7 exploded no\n"
        f"{FOLDER_MARK}r8 ended no no \n"
        "r9 running no\n"
    )
    assert parse_folder_report(text) == {
        "r1": FolderState("running"),
        "r2": FolderState("ended", True, False, 3),
        "r3": FolderState("ended", False, True, 124),
        "r4": FolderState("orphaned", True),
        "r5": FolderState("missing"),
        "r6": FolderState("pending"),
        "r8": FolderState("ended"),
    }


def test_views_of_a_run_folder():
    run = "r1"
    assert folder_view(run, FolderState("running")) == BackendView("job running on the box", True)
    ended = folder_view(run, FolderState("ended", True, False, 3))
    assert ended.line() == "job ended (exit 3), driver gone, outputs not collected; run `runplz down r1`"
    assert ended.live is False
    assert folder_view(run, FolderState("ended", False, True, 124)).text == "job timed out (exit 124), driver gone"
    assert "supervisor died" in folder_view(run, FolderState("orphaned")).text
    assert folder_view(run, FolderState("missing")).text == "no run folder on the box"
    assert folder_view(run, FolderState("pending")).text == "no job was started on the box"
    assert folder_view(run, None).live is None


def test_views_of_a_container_and_a_box():
    others = [("runplz-x-other", {"runplz.run": "r2"}, "running", None)]
    assert container_view("r1", others) == BackendView("container gone", False)
    running = container_view("r1", others + [("runplz-x-r1", {"runplz.run": "r1"}, "running", None)])
    assert running.text == "container runplz-x-r1 running" and running.live is True
    exited = container_view("r1", [("c", {"runplz.run": "r1"}, "exited", 137)])
    assert exited.text == "container c exited (exit 137)" and exited.live is False
    assert box_view("b", None, False) == BackendView("box b deleted", False)
    assert box_view("b", "STOPPED", False, "STOPPED") == BackendView("box STOPPED", False)
    assert box_view("b", "RUNNING", False, "RUNNING, shell NOT READY").text == "box RUNNING, shell NOT READY"
    assert box_view("b", "RUNNING", True) is None  # its run folder tells


def test_the_table_gets_a_backend_column_only_when_there_is_something_to_show():
    store = FakeRunStore()
    run = record(store, 1, "ssh", "gpu1")
    rows = [summarize(store.events(run), False, T0 + 60)]
    assert "ON BACKEND" not in ps_table(rows) and "ON BACKEND" not in ps_table(rows, {})
    table = ps_table(rows, {run: BackendView("job running on the box", True)})
    header, line = table.splitlines()
    assert header.endswith("COST  ON BACKEND") and line.endswith("job running on the box")
    text = status_text(rows[0], view=BackendView("box STOPPED", False))
    assert "\non backend  box STOPPED\n" in text


# ---------------------------------------------------------------- the run-folder script, with a real sh

STATES = ("running", "ended", "timeout", "orphan", "pending")


def _home_with_runs(tmp_path, names: dict[str, str] | None = None):
    """A box home holding a run folder in each of `STATES` (``names``: the
    folder of each state, default ``r-<state>``); (home, the live job's process)."""
    names = {state: f"r-{state}" for state in STATES} | (names or {})
    home = tmp_path / "home"
    runs = home / ".runplz" / "runs"

    def folder(state, **ctl):
        path = runs / names[state]
        (path / "ctl").mkdir(parents=True)
        (path / "out").mkdir()
        for name, text in ctl.items():
            (path / "ctl" / name).write_text(text)
        return path

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--run", names["running"]])
    folder("running", **{"supervisor.pid": str(live.pid)})
    (folder("ended", **{"supervisor.pid": "1", "exit_code": "3"}) / "out" / "model.bin").write_bytes(b"x")
    folder("timeout", **{"supervisor.pid": "1", "exit_code": "124", "timed_out": "3\n"})
    folder("orphan", **{"supervisor.pid": str(os.getpid())})  # a live pid that is not this run's
    folder("pending")
    return home, live


def _snapshot(root):
    return sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*"))


def test_the_folder_script_reads_each_state_and_changes_nothing(tmp_path):
    home, live = _home_with_runs(tmp_path)
    zombie = subprocess.Popen(["true"])  # not reaped: its /proc cmdline reads empty, as a kernel thread's would
    unknown = home / ".runplz" / "runs" / "r-unknown" / "ctl"
    unknown.mkdir(parents=True)
    (unknown / "supervisor.pid").write_text(str(zombie.pid))
    try:
        while open(f"/proc/{zombie.pid}/stat").read().rpartition(")")[2].split()[0] != "Z":
            time.sleep(0.01)
        before = _snapshot(home)
        transport = LocalTransport(SubprocessRunner(), str(home))
        transport.connect()
        runs = [f"r-{state}" for state in STATES] + ["r-missing", "r-unknown"]
        assert folder_argv(runs) == ["sh", "-s", "--", *runs]  # the script comes on stdin: any login shell
        result = transport.run(folder_argv(runs), input=FOLDER_SCRIPT.encode())
        assert result.exit_code == 0, result.stderr
        assert parse_folder_report(result.stdout) == {
            "r-unknown": FolderState("unknown"),
            "r-running": FolderState("running"),
            "r-ended": FolderState("ended", True, False, 3),
            "r-timeout": FolderState("ended", False, True, 124),
            "r-orphan": FolderState("orphaned"),
            "r-pending": FolderState("pending"),
            "r-missing": FolderState("missing"),
        }
        assert _snapshot(home) == before
        assert folder_view("r-unknown", FolderState("unknown")) == BackendView(
            "cannot tell whether the job runs (its supervisor's pid shows no command line)")
    finally:
        zombie.wait()
        live.kill()
        live.wait()


# ---------------------------------------------------------------- the service over the fakes

class Blocked(FakeTransport):
    """A box that never answers (a black-holed address) until released."""

    def __init__(self, release: threading.Event, **kwargs):
        super().__init__(**kwargs)
        self._release = release

    def connect(self, wait: float = 0) -> None:
        self._release.wait(30)
        raise Unreachable(f"{self.name} did not answer")


class World:
    """Run records, a fake engine and Brev account, and boxes: "gpu1" and
    Brev's "up" share a real home (through `LocalTransport`), "hole" never
    answers, any other refuses."""

    def __init__(self, tmp_path):
        self.store = FakeRunStore()
        self.runs = {}
        for n, (name, backend, target) in enumerate([
            ("docker_live", "local", "docker"), ("docker_gone", "local", "docker"),
            ("ssh_running", "ssh", "gpu1"), ("ssh_ended", "ssh", "gpu1"), ("ssh_pending", "ssh", "gpu1"),
            ("brev_deleted", "brev", "gone-box"), ("brev_stopped", "brev", "cold"), ("brev_running", "brev", "up"),
        ], start=1):
            self.runs[name] = record(self.store, n, backend, target, detached=name == "brev_running")
        self.runs["ended"] = record(self.store, 20, "ssh", "gpu1", ended=True)
        self.runs["alive"] = record(self.store, 21, "ssh", "gpu1", dead=False)
        self.home, self.live = _home_with_runs(tmp_path, {
            "running": self.runs["ssh_running"], "ended": self.runs["ssh_ended"], "pending": self.runs["ssh_pending"],
        })
        brev_job = self.home / ".runplz" / "runs" / self.runs["brev_running"] / "ctl"
        brev_job.mkdir(parents=True)
        (brev_job / "exit_code").write_text("0")
        self.engine = FakeContainerEngine()
        self.engine.present["runplz-demo-train-x"] = ContainerInfo(
            "runplz-demo-train-x", "running", {"runplz.run": self.runs["docker_live"]})
        self.brev = FakeBrev(boxes={
            "up": FakeBox("up", "cpu", True, status="RUNNING", build_status="COMPLETED"),
            "cold": FakeBox("cold", "cpu", True, status="STOPPED", build_status="COMPLETED"),
        })
        self.release = threading.Event()
        self.made: list[SshTarget] = []

    def transports(self, target: SshTarget):
        self.made.append(target)
        if target.host in ("gpu1", "up"):
            return LocalTransport(SubprocessRunner(), str(self.home), name=target.host)
        if target.host == "hole":
            return Blocked(self.release, name="hole")
        refused = FakeTransport(name=str(target))
        refused.unreachable_until = float("inf")
        return refused

    def reconciler(self, seconds: float = 5.0) -> RunReconciler:
        return RunReconciler(self.engine, self.brev, self.transports, FakeClock(), seconds=seconds)

    def rows(self, *names: str):
        chosen = [self.runs[name] for name in names] if names else list(self.runs.values())
        return [summarize(self.store.events(r), self.store.driver_alive(r), T0 + 100, r) for r in chosen]

    def close(self):
        self.release.set()
        self.live.kill()
        self.live.wait()


@pytest.fixture
def world(tmp_path):
    made = World(tmp_path)
    yield made
    made.close()


def test_each_backend_is_asked_once_and_only_read(world):
    before = _snapshot(world.home)
    got = world.reconciler().check(world.rows())
    assert got.warnings == ()
    views = {name: got.views.get(run) for name, run in world.runs.items()}
    assert views["docker_live"].text == "container runplz-demo-train-x running" and views["docker_live"].live
    assert views["docker_gone"] == BackendView("container gone", False)
    assert views["ssh_running"] == BackendView("job running on the box", True)
    assert views["ssh_ended"].line() == (
        f"job ended (exit 3), driver gone, outputs not collected; run `runplz down {world.runs['ssh_ended']}`")
    assert views["ssh_pending"].text == "no job was started on the box"
    assert views["brev_deleted"] == BackendView("box gone-box deleted", False)
    assert views["brev_stopped"] == BackendView("box STOPPED", False)
    assert views["brev_running"].text == "job ended (exit 0), driver gone"
    assert views["ended"] is None and views["alive"] is None  # not asked about
    hosts = [target.host for target in world.made]
    assert sorted(hosts) == ["gpu1", "up"]  # one connection per box; none to a stopped or deleted box
    assert [verb for verb, _ in world.brev.calls] == ["search --help", "ls"]
    assert world.engine.removed == [] and world.engine.runs == [] and world.engine.builds == []
    assert list(world.brev.boxes) == ["up", "cold"] and world.brev.boxes["cold"].status == "STOPPED"
    assert _snapshot(world.home) == before


def test_nothing_is_asked_when_no_run_needs_it(world):
    got = world.reconciler().check(world.rows("ended", "alive"))
    assert got.views == {} and got.warnings == ()
    assert world.made == [] and world.brev.calls == []


def test_a_backend_that_cannot_be_reached_is_one_warning_and_the_rest_still_answers(world):
    refused = record(world.store, 30, "ssh", "me@nobody:2222")
    also = record(world.store, 31, "ssh", "me@nobody:2222")
    world.engine.available = False
    world.brev.faults = type(world.brev.faults)(unauthorized=True)
    rows = world.rows("ssh_running", "docker_gone", "brev_stopped") + [
        summarize(world.store.events(r), False, T0 + 100, r) for r in (refused, also)]
    got = world.reconciler().check(rows)
    assert got.views[world.runs["ssh_running"]].live is True
    assert got.views[refused] == NOT_REACHED == got.views[also]
    assert got.views[world.runs["docker_gone"]] == NOT_REACHED
    assert got.views[world.runs["brev_stopped"]] == NOT_REACHED
    assert len(got.warnings) == 3, got.warnings  # one per backend: ssh me@nobody:2222 (once for 2 runs), Docker, Brev
    assert any(w.startswith("could not check ssh box me@nobody:2222: ") for w in got.warnings)
    assert any(w.startswith("could not check the local Docker engine: ") for w in got.warnings)
    assert any(w.startswith("could not check Brev (brev ls): ") and "unauthorized" in w.lower() for w in got.warnings)


def test_a_box_that_never_answers_is_given_up_on_in_time(world):
    hole = record(world.store, 40, "ssh", "hole")
    rows = world.rows("ssh_running") + [summarize(world.store.events(hole), False, T0 + 100, hole)]
    started = time.monotonic()
    got = world.reconciler(seconds=1.0).check(rows)
    assert time.monotonic() - started < 5
    assert got.views[hole] == NOT_REACHED and got.views[world.runs["ssh_running"]].live is True
    assert got.warnings == ("could not check ssh box hole: no answer within 1s",)


def _with_arg(token: str) -> list[int]:
    """The pids of this host's processes with ``token`` on their command line."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if token.encode() in handle.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


class Hung(FakeTransport):
    """A box whose connect starts a program that hangs (an ssh stuck in its
    handshake), in a session of its own as the real runner starts it."""

    def __init__(self, token: str, **kwargs):
        super().__init__(**kwargs)
        self.token = token
        self.closed = 0

    def connect(self, wait: float = 0) -> None:
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(60)", self.token], timeout=120)
        raise Unreachable(f"{self.name} did not answer")

    def close(self) -> None:
        self.closed += 1


def test_what_an_abandoned_check_started_does_not_outlive_it_and_its_transport_is_closed(world):
    token = f"runplz-ps-hung-{secrets.token_hex(4)}"
    hung = Hung(token, name="hung")
    hole = record(world.store, 41, "ssh", "hung")
    rows = world.rows("ssh_running") + [summarize(world.store.events(hole), False, T0 + 100, hole)]
    transports = lambda target: hung if target.host == "hung" else world.transports(target)  # noqa: E731
    reconciler = RunReconciler(world.engine, world.brev, transports, FakeClock(), seconds=1.0, stragglers=ProcessFence)
    started = time.monotonic()
    got = reconciler.check(rows)
    assert time.monotonic() - started < 8
    assert got.warnings == ("could not check ssh box hung: no answer within 1s",)
    assert got.views[world.runs["ssh_running"]].live is True
    assert _with_arg(token) == [], "the hung program outlived the check"
    assert hung.closed == 1  # by its check, once the program was stopped
    assert "RUNPLZ_FENCE" not in os.environ


# ---------------------------------------------------------------- the CLI over the fakes

def _cli(world, *args):
    container = fake_container(run_store=world.store, container_engine=world.engine, brev=world.brev)
    container.run_reconciler.add_kwargs(transports=lambda **kw: world.transports(**kw))
    return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)


def test_ps_shows_the_backend_column_and_warnings_then_exits_0(world):
    refused = record(world.store, 50, "ssh", "nobody")
    done = _cli(world, "ps", "-n", "50")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split()[-2:] == ["ON", "BACKEND"]
    row = {line.split()[0]: line for line in lines[1:]}
    assert row[world.runs["ssh_running"]].endswith("job running on the box")
    assert row[world.runs["brev_deleted"]].endswith("box gone-box deleted")
    assert row[world.runs["ended"]].endswith("  -")
    assert row[refused].endswith("not reached (see the warning)")
    assert done.stderr.splitlines() == [
        "runplz: warning: could not check ssh box nobody: nobody did not answer within 0s"]


def test_ps_no_check_reads_only_the_records(world):
    def refuse(**_):
        raise AssertionError("ps --no-check made a transport")

    world.transports = refuse
    world.engine.available = False  # asking it would be a warning
    done = _cli(world, "ps", "--no-check")
    assert done.exit_code == 0 and "ON BACKEND" not in done.stdout and done.stderr == ""
    assert "driver died during run" in done.stdout
    assert world.brev.calls == []
    asked = _cli(world, "ps")
    assert asked.exit_code == 0 and "could not check the local Docker engine" in asked.stderr
    assert "made a transport" in asked.stderr  # (the check runs; the refusal shows as a warning, ps goes on)


def test_status_shows_what_the_backend_says(world):
    done = _cli(world, "status", world.runs["ssh_ended"])
    assert done.exit_code == 0, done.output
    assert "on backend  job ended (exit 3), driver gone, outputs not collected" in done.stdout
    assert "on backend" not in _cli(world, "status", "--no-check", world.runs["ssh_ended"]).stdout
    assert "on backend" not in _cli(world, "status", world.runs["ended"]).stdout


# ---------------------------------------------------------------- real parts: `runplz ps` as a command

JOB = """
import os, sys, time
from runplz import App, BrevConfig, Image, SshConfig

app = App("ps-check", ssh_config=SshConfig(use_docker=False),
          brev_config=BrevConfig(mode="vm", use_docker=False, ssh_ready_wait_seconds=60))


@app.function(image=Image.from_registry("python:3.11-slim"), timeout=300)
def held(gate: str, code: int = 3) -> None:
    open(os.path.join(os.environ["RUNPLZ_OUT"], "early.txt"), "w").write("early")
    print("held-started", flush=True)
    while not os.path.exists(gate):
        time.sleep(0.1)
    sys.exit(code)
"""


class Runplz:
    """`python -m runplz` in a job repo, with its own state and cache folders."""

    def __init__(self, tmp_path, **env):
        self.repo = make_repo(tmp_path / "repo", JOB).parent
        self.state = tmp_path / "state"
        self.env = {**os.environ, "RUNPLZ_STATE_DIR": str(self.state), "RUNPLZ_CACHE_DIR": str(tmp_path / "cache"),
                    **env}

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "runplz", *args], cwd=self.repo, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=default_signals,
        )

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "runplz", *args], cwd=self.repo, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def killed_mid_run(self, *args: str) -> str:
        """Start a run, SIGKILL its driver once the job runs; the run's id."""
        driver = self.start(*args)
        seen = []
        for line in driver.stdout:
            seen.append(line)
            if "held-started" in line:
                break
        else:
            pytest.fail("the job never started:\n" + "".join(seen[-30:]))
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        threading.Thread(target=driver.stdout.read, daemon=True).start()  # what a child still writes
        first = self("status", "--no-check").stdout.splitlines()[0].split()
        assert first[0] == "run", first
        return first[1]

    def ps_row(self, run: str) -> tuple[str, subprocess.CompletedProcess]:
        done = self("ps")
        assert done.returncode == 0, done.stdout + done.stderr
        return next((line for line in done.stdout.splitlines() if line.startswith(run)), ""), done

    def wait_row(self, run: str, text: str, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while True:
            row, done = self.ps_row(run)
            if row.endswith(text) or time.monotonic() > deadline:
                assert row.endswith(text), done.stdout + done.stderr
                return row
            time.sleep(0.5)


@pytest.mark.real
def test_docker_a_killed_drivers_container_is_seen_running_then_gone(tmp_path, docker_engine):
    runplz = Runplz(tmp_path)
    run = runplz.killed_mid_run("local", "job.py", "--gate", "/never")
    name = f"runplz-ps-check-held-{run}"
    row, done = runplz.ps_row(run)
    assert "driver died during run" in row and row.endswith(f"container {name} running; stop it: `runplz down {run}`")
    assert done.stderr == ""
    assert "--no-check" in runplz("ps", "--help").stdout
    assert "ON BACKEND" not in runplz("ps", "--no-check").stdout
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    assert runplz.ps_row(run)[0].endswith("  container gone")
    assert "on backend  container gone" in runplz("status", run).stdout


def _write_record(state, run: str, target: str) -> None:
    """A run record begun by a driver that has exited (a process of its own)."""
    code = (
        "import sys, time\n"
        "from runplz.adapters.file_run_store import FileRunStore\n"
        "from runplz.domain.run_record import Phase, Started\n"
        "store = FileRunStore(sys.argv[1])\n"
        "store.begin(Started(sys.argv[2], 'ssh', sys.argv[3], 'ps-check', 'held', (), (), '/tmp/none', time.time()))\n"
        "store.append(sys.argv[2], Phase('run', time.time()))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(state / "runs"), run, target], check=True)


@pytest.mark.real
def test_ssh_a_killed_drivers_job_is_seen_running_then_ended_and_a_dead_box_is_a_warning(tmp_path, ssh_boxes):
    runplz = Runplz(tmp_path)
    gate = f"/tmp/runplz-ps-gate-{secrets.token_hex(6)}"
    run = runplz.killed_mid_run("ssh", "--host", "runplz-near", "job.py", "--gate", gate)
    port = free_port()
    nobody = f"runplz@127.0.0.1:{port}"
    old = "20000101-000000-abcdef"
    _write_record(runplz.state, old, nobody)

    before = ssh_boxes.near.accepted()
    started = time.monotonic()
    row, done = runplz.ps_row(run)
    assert time.monotonic() - started < 30
    assert row.endswith("  job running on the box"), done.stdout + done.stderr
    assert ssh_boxes.near.accepted() - before == 1  # one connection for the box
    (warning,) = done.stderr.splitlines()
    assert warning.startswith(f"runplz: warning: could not check ssh box {nobody}: ") and "refused" in warning.lower()
    assert next(line for line in done.stdout.splitlines() if line.startswith(old)).endswith("not reached (see the warning)")

    ssh_boxes.ssh("runplz-near", f"touch {gate}")
    row = runplz.wait_row(run, f"job ended (exit 3), driver gone, outputs not collected; run `runplz down {run}`")
    assert "driver died during run" in row
    down = runplz("down", run, timeout=180)
    assert down.returncode == 0 and (runplz.repo / "out" / "early.txt").read_text() == "early", down.stdout + down.stderr
    assert runplz.ps_row(run)[0].split()[4] == "interrupted"  # ended: no longer asked about
    ssh_boxes.ssh("runplz-near", f"rm -f {gate}")


@pytest.mark.real
def test_brev_a_killed_drivers_box_is_seen_running_stopped_then_deleted_and_ps_only_reads(tmp_path, ssh_boxes):
    emu = BrevEmulator.make(tmp_path / "brev", CATALOG, boxes=ssh_boxes)
    runplz = Runplz(tmp_path, PATH=emu.bin_dir + os.pathsep + os.environ["PATH"])
    brev = lambda *args: subprocess.run([emu.brev, *args], env=runplz.env, capture_output=True, text=True, timeout=60)  # noqa: E731
    try:
        assert brev("create", "ps-box", "--type", "cpu-4x16").returncode == 0
        gate = f"/tmp/runplz-ps-gate-{secrets.token_hex(6)}"
        run = runplz.killed_mid_run("brev", "--instance", "ps-box", "job.py", "--gate", gate)
        seen = len(emu.argvs())
        row, done = runplz.ps_row(run)
        assert row.endswith("  job running on the box"), done.stdout + done.stderr
        assert brev("stop", "ps-box").returncode == 0
        assert runplz.ps_row(run)[0].endswith("  box STOPPED")
        assert brev("delete", "ps-box").returncode == 0
        after = len(emu.argvs())
        row, done = runplz.ps_row(run)
        assert row.endswith("  box ps-box deleted") and done.stderr == ""
        by_ps = [argv for argv in emu.argvs()[seen:] if argv[:1] not in (["stop"], ["delete"])]
        assert by_ps and all(argv[0] in ("ls", "search") for argv in by_ps), by_ps
        assert all(argv == ["search", "--help"] for argv in by_ps if argv[0] == "search")
        assert len([argv for argv in emu.argvs()[after:] if argv[0] == "ls"]) == 1  # one `brev ls` per ps
        assert json.loads((tmp_path / "brev" / "state.json").read_text())["instances"] == {}
    finally:
        emu.shutdown()


def _left_behind(tmpdir) -> tuple[list[str], list[int]]:
    """What a `runplz ps` that used ``tmpdir`` left: the control folders there,
    and the processes that name it (an ssh master)."""
    return os.listdir(tmpdir), _pids_naming(str(tmpdir))


def _pids_naming(text: str) -> list[int]:
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if text.encode() in handle.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


@pytest.mark.real
def test_a_box_that_does_not_answer_costs_ps_a_bounded_wait_and_one_warning(tmp_path, far_box):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    runplz = Runplz(tmp_path, TMPDIR=str(tmpdir))
    _write_record(runplz.state, "20000101-000000-abcdef", "runplz-far")
    far_box.link(False)
    try:
        started = time.monotonic()
        done = runplz("ps")
        took = time.monotonic() - started
        left = _left_behind(tmpdir)
    finally:
        far_box.link(True)
    assert done.returncode == 0 and done.stdout.splitlines()[1].endswith("not reached (see the warning)")
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("runplz: warning: could not check ssh box runplz-far: "), warning
    assert took < 15, took
    assert left == ([], []), left  # no ssh master, no control-socket folder


@pytest.mark.real
def test_a_box_stuck_in_its_handshake_leaves_no_ssh_behind_when_ps_gives_up(tmp_path, ssh_boxes):
    """A box that sends its banner and then nothing: ssh's ConnectTimeout does
    not cover the rest of the handshake, so the check misses ps's budget; ps
    stops that ssh before it exits."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    runplz = Runplz(tmp_path, TMPDIR=str(tmpdir))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def serve():
        while True:
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            peer.sendall(b"SSH-2.0-OpenSSH_9.0 stuck\r\n")
            held.append(peer)  # and never another byte

    threading.Thread(target=serve, daemon=True).start()
    _write_record(runplz.state, "20000101-000000-abcdef", f"runplz@127.0.0.1:{port}")
    try:
        started = time.monotonic()
        done = runplz("ps")
        took = time.monotonic() - started
        left = _left_behind(tmpdir)
    finally:
        listener.close()
        for peer in held:
            peer.close()
    assert done.returncode == 0 and done.stdout.splitlines()[1].endswith("not reached (see the warning)"), done
    (warning,) = done.stderr.splitlines()
    assert "no answer within 10s" in warning, warning
    assert held, "ssh never reached the box"
    assert took < 20, took
    assert left == ([], []), left
