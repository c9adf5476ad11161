"""Run records end to end: real native runs, then `ps`, `status` and `logs` from other processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from testsupport.signals import default_signals

from .jobs import make_repo

pytestmark = pytest.mark.real
RUNPLZ = [sys.executable, "-m", "runplz"]

JOB = '''
import os, sys, time
from runplz import App, Image

app = App("records")

@app.function(image=Image.from_registry("python:3.11-slim"), env={"TOKEN": "s3cret-value"})
def work(lines: int = 2, pause: float = 0.0, fail: bool = False) -> int:
    for i in range(lines):
        print(f"line {i}", flush=True)
        time.sleep(pause)
    if fail:
        raise ValueError("it failed")
    return lines
'''
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[[^\]]+\] ")


@pytest.fixture
def repo(tmp_path):
    make_repo(tmp_path / "repo", JOB)
    return tmp_path / "repo"


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "RUNPLZ_STATE_DIR": str(tmp_path / "state")}


def runplz(repo, env, *args, timeout=180):
    return subprocess.run([*RUNPLZ, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_run_is_recorded_and_its_log_holds_what_was_shown(repo, env, tmp_path):
    done = runplz(repo, env, "local", "--native", "job.py", "--lines=3")
    assert done.returncode == 0, done.stderr
    run = re.search(r"runplz: run (\S+); log: (\S+)", done.stderr)
    assert run, done.stderr
    run_id, log_path = run.groups()
    assert re.search(r"runplz: build: done in \d+\.\ds", done.stderr) and "runplz: run: done in" in done.stderr
    assert log_path == str(tmp_path / "state" / "runs" / run_id / "driver.log")

    ps = runplz(repo, env, "ps")
    assert run_id in ps.stdout and "ok (exit 0)" in ps.stdout and "native" in ps.stdout
    status = runplz(repo, env, "status", run_id[:12])
    assert "ok (exit 0)" in status.stdout and "build" in status.stdout and "run" in status.stdout
    assert "TOKEN" in status.stdout and "s3cret-value" not in status.stdout
    logs = runplz(repo, env, "logs", "last").stdout
    assert all(STAMP.match(line) for line in logs.splitlines()), logs
    for shown in ("line 0", "line 2", f"runplz: run {run_id}", "running work natively", "$ "):
        assert shown in logs, (shown, logs)
    events = (tmp_path / "state" / "runs" / run_id / "events.jsonl").read_text()
    assert "s3cret-value" not in events and "s3cret-value" not in logs


def test_a_failure_names_the_log(repo, env):
    done = runplz(repo, env, "local", "--native", "job.py", "--fail")
    assert done.returncode == 1
    assert "runplz: the full log: " in done.stderr
    assert "failed (exit 1)" in runplz(repo, env, "status").stdout


def test_log_file_quiet_verbose_and_no_log_file(repo, env, tmp_path):
    mine = tmp_path / "mine.log"
    quiet = runplz(repo, env, "local", "--native", "-q", "--log-file", str(mine), "job.py")
    assert quiet.returncode == 0, quiet.stderr
    assert "runplz: running" not in quiet.stderr and "line 1" in quiet.stdout
    assert "running work natively" in mine.read_text()
    verbose = runplz(repo, env, "local", "--native", "-v", "--no-log-file", "job.py")
    assert "runplz: $ " in verbose.stderr
    run_id = runplz(repo, env, "ps").stdout.splitlines()[1].split()[0]
    assert not (tmp_path / "state" / "runs" / run_id / "driver.log").exists()
    both = runplz(repo, env, "local", "-q", "-v", "job.py")
    assert both.returncode == 2 and "contradict" in both.stderr


def test_a_killed_driver_leaves_the_truth_and_followers_stop(repo, env):
    driver = subprocess.Popen(
        [*RUNPLZ, "local", "--native", "job.py", "--lines=100", "--pause=0.2"], cwd=repo, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=default_signals,
    )
    for line in driver.stdout:
        if line.startswith("line 3"):
            break
    followers = [
        subprocess.Popen([*RUNPLZ, "logs", "-f", "last"], cwd=repo, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(1.0)
    status = runplz(repo, env, "status")
    assert "running (phase run)" in status.stdout, status.stdout
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    outs = [follower.communicate(timeout=30)[0] for follower in followers]
    for out in outs:
        assert "line 3" in out
    status = runplz(repo, env, "status")
    assert "driver died during run" in status.stdout, status.stdout


def test_down_stops_a_live_run_from_another_terminal(repo, env):
    driver = subprocess.Popen(
        [*RUNPLZ, "local", "--native", "job.py", "--lines=200", "--pause=0.2"], cwd=repo, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )
    for line in driver.stdout:
        if line.startswith("line 2"):
            break
    down = runplz(repo, env, "down", "last", timeout=120)
    assert down.returncode == 0 and "stopped (interrupted)" in down.stdout, down.stdout + down.stderr
    assert driver.wait(timeout=30) == 143
    driver.stdout.close()
    driver.stderr.close()
    assert "interrupted" in runplz(repo, env, "status").stdout
    assert "already ended" in runplz(repo, env, "down", "last").stdout


def test_detach_returns_at_once_and_the_run_goes_on(repo, env, tmp_path):
    started = time.monotonic()
    done = runplz(repo, env, "local", "--native", "--detach", "job.py", "--lines=8", "--pause=0.25")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    run_id = re.search(r"run (\S+) goes on in the background", done.stderr).group(1)
    assert "line 7" not in done.stdout + done.stderr  # it did not wait for the job
    logs = runplz(repo, env, "logs", "-f", run_id, timeout=120)
    assert "line 7" in logs.stdout
    assert "ok (exit 0)" in runplz(repo, env, "status", run_id).stdout


def test_detach_then_down(repo, env):
    done = runplz(repo, env, "local", "--native", "--detach", "job.py", "--lines=400", "--pause=0.2")
    run_id = re.search(r"run (\S+) goes on in the background", done.stderr).group(1)
    down = runplz(repo, env, "down", run_id, timeout=120)
    assert "stopped (interrupted)" in down.stdout, down.stdout + down.stderr
    assert "interrupted" in runplz(repo, env, "status", run_id).stdout


def test_a_detached_mistake_is_shown_here(repo, env):
    done = runplz(repo, env, "local", "--native", "--detach", "job.py", "--lines=many")
    assert done.returncode == 2 and "runplz: error" in done.stderr


def test_detach_help_is_the_entrypoints_help_and_exits_0(repo, env):
    done = runplz(repo, env, "local", "--native", "--detach", "job.py", "--help")
    assert done.returncode == 0, done.stderr
    assert "--lines" in done.stdout
