"""The brev backend end to end: the real CLI (`python -m runplz brev`) over the
emulator of the `brev` CLI, whose instances are real sshd boxes reached with real
ssh and rsync. Counts brev calls and ssh connections; sends real signals."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from runplz.adapters.fake_brev import BrevFaults
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator
from testsupport.signals import default_signals

from .jobs import make_repo

pytestmark = pytest.mark.real

JOB = '''
import os, time
from runplz import App, BrevConfig, Image

app = App("brev-e2e", brev_config=BrevConfig(CONFIG ssh_ready_wait_seconds=60))
image = Image.from_registry("python:3.11-slim")STEPS


@app.function(image=image, min_cpu=2)
def work(n: int = 1, started: str = "", nap: float = 0.0) -> dict:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "n.txt"), "w") as handle:
        handle.write(str(n))
    if started:
        print(f"job-started {started}", flush=True)
    time.sleep(nap)
    marker = os.path.expanduser("~/.runplz-brev-e2e-TOKEN")
    inline = open(marker).read().split() if os.path.exists(marker) else None
    return {"n": n, "inline": inline, "docker": os.getcwd().startswith("/runplz/")}
'''
VM_NATIVE = 'mode="vm", use_docker=False,'
VM_DOCKER = 'mode="vm",'
CONTAINER = ""
INLINE = """.run_commands('echo made >> "$HOME/.runplz-brev-e2e-TOKEN"')"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("brev-cache")


class Brev:
    """An emulated Brev account, a job repo and the environment of `runplz brev`."""

    def __init__(self, root, ssh_boxes, cache, config: str, faults: BrevFaults | None = None):
        self.token = secrets.token_hex(5)
        steps = INLINE if config == CONTAINER else ""
        source = JOB.replace("CONFIG", config).replace("STEPS", steps).replace("TOKEN", self.token)
        self.repo = make_repo(root / "repo", source).parent
        self.emu = BrevEmulator.make(root / "brev", CATALOG, faults=faults, boxes=ssh_boxes)
        self.state = root / "state"
        self.env = {
            **os.environ,
            "PATH": self.emu.bin_dir + os.pathsep + os.environ["PATH"],
            "RUNPLZ_STATE_DIR": str(self.state),
            "RUNPLZ_CACHE_DIR": str(cache),
        }

    def start(self, *args: str, out=subprocess.PIPE, err=subprocess.PIPE) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "runplz", "brev", *args], cwd=self.repo, env=self.env, text=True,
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=default_signals,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess:
        proc = self.start(*args)
        out, err = proc.communicate(timeout=240)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def brev(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.emu.brev, *args], capture_output=True, text=True, env=self.env, timeout=60)

    def created(self) -> list[list[str]]:
        return [argv for argv in self.emu.argvs() if argv[:1] == ["create"]]

    def accepted(self, name: str) -> int:
        try:
            with open(os.path.join(self.emu.root, "boxes", f"{name}.log"), errors="replace") as handle:
                return sum("Accepted publickey" in line for line in handle)
        except FileNotFoundError:
            return 0


@pytest.fixture
def make_brev(tmp_path, ssh_boxes, cache):
    made = []

    def make(config: str, faults: BrevFaults | None = None) -> Brev:
        account = Brev(tmp_path / f"account{len(made)}", ssh_boxes, cache, config, faults)
        made.append(account)
        return account

    yield make
    for account in made:
        account.emu.shutdown()


def value_of(done: subprocess.CompletedProcess):
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_ephemeral_run_brings_back_value_and_outputs_then_deletes_the_box(make_brev):
    brev = make_brev(VM_NATIVE)
    assert value_of(brev.run("job.py", "--n", "5")) == {"n": 5, "inline": None, "docker": False}
    assert (brev.repo / "out" / "n.txt").read_text() == "5"
    assert brev.emu.instances() == {}
    (create,) = brev.created()
    name = create[1]
    assert name.startswith("runplz-brev-e2e-work-")
    assert create[2:] == ["--type", "cpu-2x8-nostop,cpu-4x16,cpu-16x64", "--mode", "vm"]
    counts = {verb: brev.emu.count(verb) for verb in ("search --help", "search", "create", "refresh", "delete")}
    assert counts == {"search --help": 1, "search": 1, "create": 1, "refresh": 1, "delete": 1}
    assert brev.emu.count("ls") == 2  # the arrival check, one poll (the emulated box boots at once)
    assert not [argv for argv in brev.emu.argvs() if argv[:1] == ["exec"]]
    assert all(call["analytics"] == "1" for call in brev.emu.calls())
    assert brev.accepted(name) == 1  # one ssh connection serves the whole run
    assert os.listdir(brev.state / "boxes") == []


def test_container_mode_applies_the_steps_on_the_box_and_falls_back_to_the_second_type(make_brev):
    brev = make_brev(CONTAINER, BrevFaults(no_capacity=("cpu-2x8-nostop",), boot_polls=1))
    done = brev.run("job.py", "--n", "2")
    assert value_of(done) == {"n": 2, "inline": ["made"], "docker": False}
    (create,) = brev.created()
    assert create[2:] == ["--type", "cpu-2x8-nostop,cpu-4x16,cpu-16x64", "--mode", "container",
                          "--container-image", "python:3.11-slim"]
    assert f"Brev box {create[1]} is usable (cpu-4x16" in done.stderr
    assert brev.emu.count("ls") == 3  # the arrival check, then 2 polls: it boots for one
    assert brev.emu.instances() == {}


def test_vm_mode_with_docker_on_the_box(make_brev, docker_engine):
    brev = make_brev(VM_DOCKER)
    assert value_of(brev.run("job.py", "--n", "3")) == {"n": 3, "inline": None, "docker": True}
    assert (brev.repo / "out" / "n.txt").read_text() == "3"
    assert brev.emu.instances() == {}


def test_named_box_attach_then_auto_start_and_the_typo_guard(make_brev):
    brev = make_brev(VM_NATIVE)
    assert brev.brev("create", "my-box", "--type", "cpu-4x16").returncode == 0
    assert brev.emu.instances()["my-box"]["status"] == "RUNNING"

    assert value_of(brev.run("--instance", "my-box", "job.py", "--n", "7"))["n"] == 7
    assert brev.emu.count("start") == 0 and len(brev.created()) == 1
    assert brev.emu.instances()["my-box"]["status"] == "STOPPED"  # on_finish="stop", the default

    done = brev.run("--instance", "my-box", "job.py", "--n", "8")
    assert value_of(done)["n"] == 8
    assert brev.emu.count("start") == 1 and "starting Brev box my-box (it is STOPPED" in done.stderr
    assert brev.emu.instances()["my-box"]["status"] == "STOPPED"

    typo = brev.run("--instance", "my-bx", "job.py")
    assert typo.returncode == 2, typo.stderr
    assert "no Brev instance named my-bx" in typo.stderr and "Traceback" not in typo.stderr
    assert len(brev.created()) == 1 and list(brev.emu.instances()) == ["my-box"]


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _started(brev: Brev, marker: str) -> subprocess.Popen:
    out = open(brev.repo.parent / f"stdout-{marker}", "w+")
    err = open(brev.repo.parent / f"stderr-{marker}", "w+")
    driver = brev.start("job.py", f"--started={marker}", "--nap=300", out=out, err=err)
    driver.stderr_file = err
    seen = lambda: f"job-started {marker}" in open(out.name).read()  # noqa: E731
    assert _wait_for(lambda: seen() or driver.poll() is not None, 120), "the job never started"
    assert driver.poll() is None, open(err.name).read()
    return driver


def _stderr(driver) -> str:
    return open(driver.stderr_file.name).read()


@pytest.mark.parametrize(
    "sig, code, last",
    [(signal.SIGINT, 130, "runplz: interrupted"), (signal.SIGTERM, 143, "runplz: terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_mid_run_deletes_the_box(make_brev, sig, code, last):
    brev = make_brev(VM_NATIVE)
    driver = _started(brev, sig.name)
    (name,) = brev.emu.instances()
    os.kill(driver.pid, sig)
    assert driver.wait(timeout=60) == code, _stderr(driver)
    assert brev.emu.instances() == {}
    said = _stderr(driver)
    assert f"deleting Brev box {name}" in said and said.splitlines()[-1] == last and "Traceback" not in said
    assert os.listdir(brev.state / "boxes") == []


def test_sigkill_leaves_the_box_and_the_next_run_reaps_it(make_brev):
    brev = make_brev(VM_NATIVE)
    driver = _started(brev, "SIGKILL")
    (name,) = brev.emu.instances()
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    assert list(brev.emu.instances()) == [name]  # nothing could clean up
    assert os.listdir(brev.state / "boxes") == [f"{name}.json"]

    done = brev.run("job.py", "--n", "4")
    assert value_of(done)["n"] == 4
    assert f"deleted Brev box {name} left by a driver that died (pid {driver.pid})" in done.stderr
    assert brev.emu.instances() == {} and os.listdir(brev.state / "boxes") == []


def test_detach_the_background_driver_deletes_the_box_when_the_job_ends(make_brev):
    brev = make_brev(VM_NATIVE)
    done = brev.run("--detach", "job.py", "--n", "4", "--nap=2")
    assert done.returncode == 0, done.stderr
    run_id = done.stderr.split("goes on in the background")[0].rsplit("run ", 1)[1].strip()
    logs = subprocess.run([sys.executable, "-m", "runplz", "logs", "-f", run_id], cwd=brev.repo, env=brev.env,
                          capture_output=True, text=True, timeout=240)
    assert "finished with exit code 0" in logs.stdout, logs.stdout
    assert _wait_for(lambda: brev.emu.instances() == {}, 30), brev.emu.instances()
    assert (brev.repo / "out" / "n.txt").read_text() == "4"


def test_down_after_the_driver_was_killed_deletes_the_ephemeral_box(make_brev):
    brev = make_brev(VM_NATIVE)
    driver = _started(brev, "down")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert len(brev.emu.instances()) == 1
    down = subprocess.run([sys.executable, "-m", "runplz", "down", "last"], cwd=brev.repo, env=brev.env,
                          capture_output=True, text=True, timeout=120)
    assert "deleted its ephemeral Brev box" in down.stdout, down.stdout + down.stderr
    assert "stopped its job on" in down.stdout  # and its outputs came home before the box went
    assert (brev.repo / "out" / "n.txt").read_text() == "1"
    assert brev.emu.instances() == {}
    assert os.listdir(brev.state / "boxes") == []
