"""What the `runplz ps` / `status` tests share (tests/test_ps_reconcile*.py,
tests/test_ps_slurm.py): run records in a `FakeRunStore`, a box home holding a
run folder in each state, a `World` of fake backends and real run folders
(`a_world`: a test module's ``world`` fixture yields from it), and `Runplz`, the real
CLI in a job repo of its own, for the real-parts tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from runplz.adapters.fake_brev import FakeBox
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.cli.main import cli
from runplz.domain.errors import Unreachable
from runplz.domain.host import SshTarget
from runplz.domain.run_record import Detached, Ended, Phase, Started
from runplz.domain.run_summary import summarize
from runplz.ports.container_engine import ContainerInfo
from runplz.services.run_reconcile import RunReconciler
from runplz.testing import FakeBrev, FakeClock, FakeContainerEngine, FakeRunStore, FakeTransport, fake_container
from testsupport.signals import default_signals

from .jobs import make_repo

T0 = 1_714_564_800.0

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

# ---------------------------------------------------------------- run folders on a box, with a real sh

STATES = ("running", "ended", "timeout", "orphan", "pending")


def home_with_runs(tmp_path, names: dict[str, str] | None = None):
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


def snapshot(root):
    return sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*"))

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
        self.home, self.live = home_with_runs(tmp_path, {
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


def a_world(tmp_path):
    """A `World`, closed after the test (a test module's ``world`` fixture yields from it)."""
    made = World(tmp_path)
    yield made
    made.close()

def pids_naming(text: str, whole_arg: bool = False) -> list[int]:
    """The pids of this host's processes whose command line holds ``text``
    (with ``whole_arg``: as one whole argument)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                line = handle.read()
        except OSError:
            continue
        if (text.encode() in line.split(b"\0")) if whole_arg else (text.encode() in line):
            found.append(int(name))
    return found


def cli_over(world, *args):
    """The CLI (in this process) over ``world``'s fakes and boxes."""
    container = fake_container(run_store=world.store, container_engine=world.engine, brev=world.brev)
    container.run_reconciler.add_kwargs(transports=lambda **kw: world.transports(**kw))
    return CliRunner().invoke(cli, list(args), obj=container, catch_exceptions=False)


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

    def __init__(self, tmp_path, job: str = JOB, **env):
        self.repo = make_repo(tmp_path / "repo", job).parent
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

def write_record(state, run: str, target: str, backend: str = "ssh") -> None:
    """A run record begun by a driver that has exited (a process of its own)."""
    code = (
        "import sys, time\n"
        "from runplz.adapters.file_run_store import FileRunStore\n"
        "from runplz.domain.run_record import Phase, Started\n"
        "store = FileRunStore(sys.argv[1])\n"
        "store.begin(Started(sys.argv[2], sys.argv[4], sys.argv[3], 'ps-check', 'held', (), (), '/tmp/none', time.time()))\n"
        "store.append(sys.argv[2], Phase('run', time.time()))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(state / "runs"), run, target, backend], check=True)
