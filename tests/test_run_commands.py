"""Run records end to end: real native runs, then `ps`, `status`, `logs` and `down` from other processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from runplz.adapters import marked_processes
from runplz.domain.run_record import JOB_MARK
from testsupport.tiny_disk import fill, mounted_tmpfs
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
STUCK = '''
import os, time
from runplz import App, Image

app = App("stuck")

@app.function(image=Image.from_registry("python:3.11-slim"))
def stuck(seconds: float = 8.0) -> str:
    print("stuck-started", flush=True)
    time.sleep(seconds)
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "finished"), "w") as handle:
        handle.write("finished")
    return "finished"
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


def _marked(run_id: str) -> dict[int, int]:
    return marked_processes.scan(f"{JOB_MARK}={run_id}".encode())[0]


def test_down_after_a_killed_driver_stops_the_native_job_and_nothing_else(repo, env):
    (repo / "stuck.py").write_text(STUCK)
    decoys = [
        subprocess.Popen(["sleep", "120"], start_new_session=True),  # no mark: whatever its ids, not the run's
        subprocess.Popen(["sleep", "120"], env={**env, JOB_MARK: "20200101-000000-000000"}, start_new_session=True),
    ]
    try:
        driver = subprocess.Popen(
            [*RUNPLZ, "local", "--native", "stuck.py", "--seconds=8"], cwd=repo, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=default_signals,
        )
        for line in driver.stdout:
            if "stuck-started" in line:
                break
        began = time.monotonic()
        run_id = runplz(repo, env, "ps").stdout.splitlines()[1].split()[0]
        assert _marked(run_id), "the job's processes carry the run's mark"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        driver.stdout.close()
        assert _marked(run_id), "the job outlives its killed driver"
        assert "driver died during run" in runplz(repo, env, "status", run_id).stdout
        assert "driver died during run" in runplz(repo, env, "ps").stdout
        assert "stuck-started" in runplz(repo, env, "logs", run_id).stdout

        down = runplz(repo, env, "down", run_id, timeout=60)
        assert down.returncode == 0 and re.search(r"stopped its job \(\d+ process(es)?\)", down.stdout), down.stdout + down.stderr
        assert _marked(run_id) == {}
        time.sleep(max(0.0, began + 9.5 - time.monotonic()))  # past the time the job would have finished
        assert not (repo / "out" / "finished").exists()
        assert all(decoy.poll() is None for decoy in decoys), "a process not of the run was signalled"
        status = runplz(repo, env, "status", run_id).stdout
        assert "interrupted" in status and "runplz down: its driver was gone; stopped its job" in status
        assert "already ended" in runplz(repo, env, "down", run_id).stdout
    finally:
        for decoy in decoys:
            decoy.kill()
            decoy.wait()


@pytest.fixture
def tiny_state(tmp_path, env):
    """A state folder on a 64 KiB tmpfs (needs root), unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "tiny-state") as where:
        yield where, {**env, "RUNPLZ_STATE_DIR": str(where)}


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("runplz: warning:")]


def test_a_disk_that_fills_mid_run_costs_one_warning_not_the_run(repo, tiny_state):
    where, env = tiny_state
    driver = subprocess.Popen(
        [*RUNPLZ, "local", "--native", "job.py", "--lines=400", "--pause=0.01"], cwd=repo, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )
    seen = []  # its log gets some 20 KB more than the last block it has holds
    for line in driver.stdout:
        seen.append(line)
        if line.startswith("line 1"):
            break
    fill(where)
    out, err = driver.communicate(timeout=120)
    out = "".join(seen) + out
    assert driver.returncode == 0, err
    assert "line 399" in out and out.strip().splitlines()[-1] == "400"
    (warning,) = _warnings(err)
    assert "the driver log stopped" in warning and "No space left on device" in warning
    assert "Traceback" not in err
    status = runplz(repo, env, "status")
    assert "ok (exit 0)" in status.stdout, status.stdout + status.stderr  # its end still made the record


def test_a_full_disk_before_the_run_costs_one_warning_not_the_run(repo, tiny_state):
    where, env = tiny_state
    fill(where)
    done = runplz(repo, env, "local", "--native", "job.py", "--lines=3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "3"
    (warning,) = _warnings(done.stderr)
    assert "runs are not being recorded" in warning and "the disk is full" in warning
    assert "no runs recorded" in runplz(repo, env, "ps").stdout


def test_two_detached_runs_started_at_once_both_run_and_are_told_apart(repo, env):
    launches = [
        subprocess.Popen([*RUNPLZ, "local", "--native", "--detach", "job.py", f"--lines={n}", "--pause=0.1"],
                         cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in (5, 6)
    ]
    said = [launch.communicate(timeout=180) for launch in launches]
    assert [launch.returncode for launch in launches] == [0, 0], said
    ids = [re.search(r"run (\S+) goes on in the background", err).group(1) for _, err in said]
    assert len(set(ids)) == 2
    for run_id, n in zip(ids, (5, 6)):
        logs = runplz(repo, env, "logs", "-f", run_id, timeout=180).stdout
        assert f"line {n - 1}" in logs and f"line {n}" not in logs  # its own job's lines, not the other's
        assert "ok (exit 0)" in runplz(repo, env, "status", run_id).stdout
    listed = runplz(repo, env, "ps").stdout
    assert all(run_id in listed for run_id in ids) and listed.count("ok (exit 0)") == 2
