"""Detached ssh runs end to end, over the real throwaway sshd box: `--detach`,
two terminals following one run with `logs -f`, `status`, `down` of a live
background driver, and a background driver killed with SIGKILL (then `ps`,
`logs`, `status` and `down`). Every command is the real CLI, in a process of
its own; the job's processes are looked for on the box itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .jobs import make_repo

pytestmark = pytest.mark.real

JOB = '''
import os, time
from runplz import App, Image, SshConfig

app = App("ssh-runs", ssh_config=SshConfig(use_docker=False))


@app.function(image=Image.from_registry("python:3.11-slim"))
def ticker(count: int = 5, pause: float = 0.3, tag: str = "t") -> int:
    for i in range(count):
        print(f"{tag} tick {i}", flush=True)
        with open(os.path.join(os.environ["RUNPLZ_OUT"], f"{tag}.txt"), "w") as handle:
            handle.write(str(i))
        time.sleep(pause)
    return count
'''
HOST = "runplz-near"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ssh-runs-cache")


@pytest.fixture
def repo(tmp_path, ssh_boxes):
    return make_repo(tmp_path / "repo", JOB).parent


@pytest.fixture
def env(tmp_path, cache):
    return {**os.environ, "RUNPLZ_STATE_DIR": str(tmp_path / "state"), "RUNPLZ_CACHE_DIR": str(cache)}


def runplz(repo, env, *args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runplz", *args], cwd=repo, env=env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


def detach(repo, env, *job_args) -> tuple[str, float]:
    """`runplz ssh --detach`: the run id it printed, and how long it took to return."""
    started = time.monotonic()
    done = runplz(repo, env, "ssh", "--host", HOST, "--detach", "job.py", *job_args)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"run (\S+) goes on in the background; follow it: runplz logs -f \1; stop it: runplz down \1",
                      done.stderr)
    assert found, done.stderr
    return found.group(1), took


def on_box(ssh_boxes, run_id: str) -> list[str]:
    """The box's processes that belong to the run (its run folder is in their command line)."""
    result = ssh_boxes.ssh(HOST, f"pgrep -af {run_id!r} || true")
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def log_has(repo, env, run_id: str, text: str) -> bool:
    return text in runplz(repo, env, "logs", run_id).stdout


def field(status: str, label: str) -> str:
    found = re.search(rf"^{label}\s+(.*)$", status, re.M)
    assert found, (label, status)
    return found.group(1)


def test_detach_returns_at_once_and_two_terminals_follow_the_run_to_its_end(repo, env, ssh_boxes):
    run_id, took = detach(repo, env, "--count=12", "--pause=0.4", "--tag=a")
    assert took < 30, took  # it returned when the run began, not when it ended
    followers = [
        subprocess.Popen([sys.executable, "-m", "runplz", "logs", "-f", run_id], cwd=repo, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    wait_for(lambda: log_has(repo, env, run_id, "a tick 1"), 180, "the job's first lines")
    running = runplz(repo, env, "status", run_id).stdout
    assert field(running, "status") == "running (phase run)", running
    assert field(running, "exit code") == "-" and field(running, "backend") == f"ssh (target {HOST})"
    assert re.match(r"pid \d+ on \S+ \(running\)", field(running, "driver")), running

    outs = [follower.communicate(timeout=240) for follower in followers]
    assert [follower.returncode for follower in followers] == [0, 0], outs
    for out, _ in outs:
        ticks = [line.split("] ", 1)[1] for line in out.splitlines() if "a tick " in line]
        assert ticks == [f"a tick {i}" for i in range(12)], out
        assert "finished with exit code 0" in out

    done = runplz(repo, env, "status", run_id).stdout
    assert field(done, "status") == "ok (exit 0)" and field(done, "exit code") == "0", done
    assert re.match(r"\d+\.\ds$", field(done, "runtime")), done
    assert "run " in field(done, "phases") and "upload" in field(done, "phases"), done
    assert (repo / "out" / "a.txt").read_text() == "11"
    assert on_box(ssh_boxes, run_id) == []
    assert run_id in runplz(repo, env, "ps").stdout


def test_down_stops_a_detached_run_on_the_box_and_brings_its_outputs_home(repo, env, ssh_boxes):
    run_id, _ = detach(repo, env, "--count=400", "--pause=0.25", "--tag=b")
    wait_for(lambda: log_has(repo, env, run_id, "b tick 2"), 180, "the job to run")
    assert on_box(ssh_boxes, run_id), "the job runs on the box"
    down = runplz(repo, env, "down", run_id)
    assert down.returncode == 0 and f"run {run_id} stopped (interrupted)" in down.stdout, down.stdout + down.stderr
    wait_for(lambda: on_box(ssh_boxes, run_id) == [], 10, "the job's processes on the box to go")
    written = int((repo / "out" / "b.txt").read_text())
    assert 2 <= written < 399  # what it had written when it was stopped came home
    status = runplz(repo, env, "status", run_id).stdout
    assert field(status, "status") == "interrupted" and field(status, "exit code") == "130", status
    assert "already ended" in runplz(repo, env, "down", run_id).stdout


def test_a_killed_background_driver_leaves_the_truth_and_down_stops_the_job(repo, env, ssh_boxes):
    run_id, _ = detach(repo, env, "--count=400", "--pause=0.25", "--tag=c")
    wait_for(lambda: log_has(repo, env, run_id, "c tick 2"), 180, "the job to run")
    driver = int(re.match(r"pid (\d+)", field(runplz(repo, env, "status", run_id).stdout, "driver")).group(1))
    os.kill(driver, signal.SIGKILL)
    wait_for(lambda: "(gone)" in runplz(repo, env, "status", run_id).stdout, 30, "the driver to be gone")

    status = runplz(repo, env, "status", run_id).stdout
    assert field(status, "status") == "driver died during run", status
    assert re.search(rf"^{run_id} .*driver died during run", runplz(repo, env, "ps").stdout, re.M)
    follow = runplz(repo, env, "logs", "-f", run_id, timeout=30)  # ends at once: the driver is gone
    assert follow.returncode == 0 and "c tick 2" in follow.stdout
    assert on_box(ssh_boxes, run_id), "the job outlives its killed driver"

    down = runplz(repo, env, "down", run_id)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"stopped its job on {HOST} and brought" in down.stdout, down.stdout
    wait_for(lambda: on_box(ssh_boxes, run_id) == [], 10, "the job's processes on the box to go")
    assert int((repo / "out" / "c.txt").read_text()) >= 2
    status = runplz(repo, env, "status", run_id).stdout
    assert field(status, "status") == "interrupted", status
    assert "runplz down: its driver was gone; stopped its job" in status


# A Brev box is an ssh box too: a named one, whose driver was killed, gets from
# `down` the on_finish its run was due (the brev emulator over real sshd boxes).

@pytest.mark.parametrize("on_finish, status", [("stop", "STOPPED"), ("leave", "RUNNING")])
def test_down_after_a_killed_driver_gives_a_named_brev_box_its_on_finish(tmp_path, ssh_boxes, cache, on_finish, status):
    from .test_e2e_brev import Brev

    brev = Brev(tmp_path / "account", ssh_boxes, cache, f'mode="vm", use_docker=False, on_finish="{on_finish}",')
    try:
        assert brev.brev("create", "my-box", "--type", "cpu-4x16").returncode == 0
        out = open(tmp_path / "driver.out", "w+")
        driver = brev.start("--instance", "my-box", "job.py", "--started=named", "--nap=300", out=out, err=out)
        wait_for(lambda: "job-started named" in (tmp_path / "driver.out").read_text() or driver.poll() is not None,
                 180, "the job to start")
        assert driver.poll() is None, (tmp_path / "driver.out").read_text()
        run_id = runplz(brev.repo, brev.env, "ps").stdout.splitlines()[1].split()[0]
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        out.close()
        assert local_processes(run_id), "the job outlives its killed driver"
        assert brev.emu.instances()["my-box"]["status"] == "RUNNING"

        down = runplz(brev.repo, brev.env, "down", run_id)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped its job on my-box" in down.stdout, down.stdout
        if on_finish == "stop":
            assert "stopped Brev box my-box (on_finish='stop')" in down.stdout
        else:
            assert "left Brev box my-box as it is (on_finish='leave')" in down.stdout
        assert brev.emu.instances()["my-box"]["status"] == status
        assert brev.emu.count("stop") == (1 if on_finish == "stop" else 0) and brev.emu.count("delete") == 0
        assert (brev.repo / "out" / "n.txt").read_text() == "1"  # its outputs came home first
        wait_for(lambda: local_processes(run_id) == [], 10, "the job's processes to go")
        assert field(runplz(brev.repo, brev.env, "status", run_id).stdout, "status") == "interrupted"
    finally:
        brev.emu.shutdown()


def local_processes(run_id: str) -> list[str]:
    """The emulated Brev boxes are sshd boxes on this machine: the run's processes, looked for here."""
    found = subprocess.run(["pgrep", "-af", run_id], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]
