"""A map leaves nothing running or billing when its inputs run on boxes: a
stop landing between a remote job's start and its follower; a stop during
`brev create`; Ctrl-C to a Brev map creating its boxes and to a Modal map.

Stops are delivered the way the fan-out delivers them (`ItemCancelled`
raised in the input's thread) at the exact point under test, through hooks
that block there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from runplz import SshConfig
from runplz.adapters.fake_brev import FakeBrev
from runplz.adapters.fake_ledger import FakeLedger
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.brev_instances import BrevCommandError
from runplz.domain.call import FunctionCall
from runplz.domain.errors import ItemCancelled
from runplz.loader import load_app
from runplz.services import fan_out as fan
from testsupport.brev_catalog import CATALOG
from testsupport import modal_fixture

from .brev_stubs import backend as brev_backend
from .brev_stubs import ephemeral, spec_call, verbs
from .jobs import make_repo
from .test_map_lifecycle import _with_marker

modal_fake = modal_fixture.modal_fake  # the fixture, for the Modal test


# ------------------------------------------------ 2. a stop between a job's start and its follower

HANG = '''
import subprocess, sys
from runplz import App, Image

app = App("window")


@app.function(image=Image.from_registry("python:3.11-slim"))
def hang(marker: str) -> None:
    subprocess.run([sys.executable, "-c", "import time; time.sleep(300)", marker])
'''


def _stop_in_the_hand_over(monkeypatch, call_it):
    """Run ``call_it()`` on a thread; when its job has started and its follower
    is being made, stop it as a map does; return what the call raised."""
    from runplz.services import remote_path

    inside, sent = threading.Event(), threading.Event()

    class Slow(remote_path.RunFollower):
        def __init__(self, *args, **kwargs):
            inside.set()
            deadline = time.monotonic() + 30
            while not sent.is_set() and time.monotonic() < deadline:  # an unheld stop lands in here
                time.sleep(0.01)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(remote_path, "RunFollower", Slow)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call_it()
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert inside.wait(120), "the job never started"
    assert fan._interrupt(thread)
    sent.set()
    thread.join(120)
    assert not thread.is_alive()
    return raised


def _hang_call(script, marker: str) -> FunctionCall:
    _, app = load_app(str(script))
    spec = app.registered_functions["hang"].spec
    return FunctionCall(app.name, spec, str(script), [marker], {})


def test_a_stop_between_the_job_start_and_its_follower_stops_the_job(tmp_path, monkeypatch):
    """Over the local transport (the ssh backend's whole flow, the box here)."""
    from runplz.adapters.local_transport import LocalTransport
    from runplz.container import make_container
    from runplz.domain.host import SshTarget
    from runplz.services.ssh_backend import SshSettings

    from runplz.adapters.fake_console import RecordingConsole

    script = make_repo(tmp_path / "repo", HANG)
    container = make_container(str(tmp_path / "cache"))
    container.console.override(RecordingConsole())
    transport = LocalTransport(SubprocessRunner(), str(tmp_path / "box-home"), name="box")
    settings = SshSettings(str(tmp_path / "out"), SshConfig(use_docker=False), SshTarget("box"))
    backend = container.ssh_backend(transport=transport, settings=settings)
    marker = f"window-{os.getpid()}-{time.monotonic_ns()}"
    raised = _stop_in_the_hand_over(monkeypatch, lambda: backend.call(_hang_call(script, marker)))
    assert len(raised) == 1 and isinstance(raised[0], ItemCancelled), raised
    time.sleep(2)  # a job left running would have started its child by now
    assert _with_marker(marker) == []


@pytest.mark.real
def test_a_stop_between_the_job_start_and_its_follower_stops_the_job_on_an_sshd_box(
    tmp_path, monkeypatch, ssh_boxes
):
    from runplz.container import make_container

    script = make_repo(tmp_path / "repo", HANG.replace('App("window")', 'App("window", ssh_config=SshConfig(use_docker=False))').replace(
        "from runplz import App, Image", "from runplz import App, Image, SshConfig"))
    module, app = load_app(str(script))
    app.bind("ssh", host="runplz-near", outputs_dir=str(tmp_path / "out"), container=make_container(str(tmp_path / "cache")))
    marker = f"window-{os.getpid()}-{time.monotonic_ns()}"
    call = FunctionCall(app.name, app.registered_functions["hang"].spec, str(script), [marker], {})
    raised = _stop_in_the_hand_over(monkeypatch, lambda: app._backend.call(call))
    assert len(raised) == 1 and isinstance(raised[0], ItemCancelled), raised
    time.sleep(2)
    left = ssh_boxes.ssh("runplz-near", f"pgrep -af {marker} || true").stdout.splitlines()
    assert [line for line in left if "pgrep" not in line] == []


# ------------------------------------------------ 4. a stop during `brev create` (FakeBrev)


class LateBrev(FakeBrev):
    """`brev create` that waits until told; Brev is already making the box, so
    a CLI cut short leaves a box that shows up a moment later. With
    ``lost_reply`` the create then fails as if its answer were lost, and `brev
    ls` shows the box only from its second call on."""

    def __init__(self, lost_reply: bool = False):
        super().__init__(CATALOG)
        self.inside, self.go = threading.Event(), threading.Event()
        self.lost_reply = lost_reply
        self._late: list[str] = []
        self._looks = 0

    def create(self, name, types, **kwargs):
        self.inside.set()
        try:
            deadline = time.monotonic() + 30
            while not self.go.is_set() and time.monotonic() < deadline:  # an unheld stop lands in here
                time.sleep(0.01)
        except KeyboardInterrupt:
            threading.Timer(0.3, lambda: FakeBrev.create(self, name, types, **kwargs)).start()
            raise
        if self.lost_reply:
            self._late.append(name)
            raise BrevCommandError("create", "brev gave no answer", transient=True)
        super().create(name, types, **kwargs)

    def list(self):
        if self._late:
            self._looks += 1
            if self._looks >= 2:
                FakeBrev.create(self, self._late.pop(), ["cpu-4x16"])
        return super().list()


@pytest.mark.parametrize("lost_reply", [False, True], ids=["create-ends", "create-outcome-unknown"])
def test_a_stop_during_brev_create_waits_for_it_and_deletes_the_box(lost_reply):
    brev, ledger = LateBrev(lost_reply), FakeLedger()
    backend = brev_backend(brev, ledger)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            backend.call(spec_call("train", gpu="T4"))
        except BaseException as exc:  # noqa: BLE001
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert brev.inside.wait(30)
    assert fan._interrupt(thread)
    brev.go.set()
    thread.join(60)
    time.sleep(0.6)  # a box still on its way would be listed by now
    assert len(raised) == 1
    assert isinstance(raised[0], BrevCommandError if lost_reply else ItemCancelled), raised
    assert "delete" in verbs(brev) and ephemeral(brev) == [] and ledger.records() == ()


# ------------------------------------------------ 4, over the emulator: the driver's Ctrl-C

SLOW_CREATE = '''#!/bin/sh
# `brev create` as Brev does it: the request, once sent, completes whatever happens to this CLI
if [ "$1" = create ]; then
  echo "$2" >> {marks}
  setsid sh -c 'sleep 3; exec "$@" >/dev/null 2>&1' sh {real} "$@" </dev/null &
  wait $!
  exit $?
fi
exec {real} "$@"
'''

BREV_JOB = '''
from runplz import App, BrevConfig, Image

app = App("brev-stop", brev_config=BrevConfig(mode="vm", use_docker=False, ssh_ready_wait_seconds=60))


@app.function(image=Image.from_registry("python:3.11-slim"), min_cpu=2)
def work(n: int) -> int:
    return n


@app.local_entrypoint()
def main():
    for value in work.map(range(2), concurrency=2):
        print(value, flush=True)
'''


@pytest.mark.real
def test_ctrl_c_while_a_brev_map_creates_its_boxes_leaves_none(tmp_path):
    import json
    import shlex

    from testsupport.brev_emu import BrevEmulator
    from testsupport.signals import default_signals

    emu = BrevEmulator.make(tmp_path / "brev", CATALOG)
    shim = tmp_path / "shim"
    shim.mkdir()
    marks = tmp_path / "creating"
    (shim / "brev").write_text(SLOW_CREATE.format(marks=shlex.quote(str(marks)), real=shlex.quote(emu.brev)))
    (shim / "brev").chmod(0o755)
    repo = make_repo(tmp_path / "repo", BREV_JOB).parent
    env = {
        **os.environ, "PATH": os.pathsep.join([str(shim), emu.bin_dir, os.environ["PATH"]]),
        "RUNPLZ_STATE_DIR": str(tmp_path / "state"), "RUNPLZ_CACHE_DIR": str(tmp_path / "cache"),
    }
    driver = subprocess.Popen(
        [sys.executable, "-m", "runplz", "brev", "job.py"], cwd=repo, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 60
        while (not marks.exists() or len(marks.read_text().split()) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.poll() is None and len(marks.read_text().split()) == 2
        driver.send_signal(signal.SIGINT)
        _, said = driver.communicate(timeout=90)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, said
    assert said.splitlines()[-1] == "runplz: interrupted" and "Traceback" not in said, said
    time.sleep(4)  # a create cut short would have made its box by now
    listed = subprocess.run([emu.brev, "ls", "--json"], capture_output=True, text=True, env=env, check=True)
    assert (json.loads(listed.stdout)["workspaces"] or {}) == {}, said
    folder = tmp_path / "state" / "boxes"
    assert not folder.exists() or os.listdir(folder) == []


# ------------------------------------------------ 5. Ctrl-C to a Modal map

MODAL_JOB = '''
import os, time
from runplz import App, Image

app = App("modal-stop")


@app.function(image=Image.from_registry("python:3.11-slim"))
def item(i: int) -> int:
    print(f"item {i} sleeping now", flush=True)
    time.sleep(300)
    return i


@app.local_entrypoint()
def main():
    for value in item.map(range(3), concurrency=3):
        print(value, flush=True)
'''


@pytest.mark.real
def test_ctrl_c_during_a_modal_map_stops_the_app_and_every_container(modal_fake, tmp_path):
    from testsupport.signals import default_signals

    repo = make_repo(tmp_path / "repo", MODAL_JOB).parent
    driver = subprocess.Popen(
        [sys.executable, "-m", "runplz", "modal", "job.py"], cwd=repo, env=dict(os.environ), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and sum(run.returncode is None for run in modal_fake.containers()) < 3:
            time.sleep(0.2)
        assert sum(run.returncode is None for run in modal_fake.containers()) == 3
        time.sleep(1)
        driver.send_signal(signal.SIGINT)
        _, said = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, said
    assert said.splitlines()[-1] == "runplz: interrupted" and "Traceback" not in said, said
    assert "AppStop" in modal_fake.rpc_names()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(run.returncode is None for run in modal_fake.containers()):
        time.sleep(0.2)
    assert all(run.returncode is not None for run in modal_fake.containers())
