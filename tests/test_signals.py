"""Signals to the real CLI: exit codes, one message, and no job left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from .jobs import make_repo
from testsupport.signals import default_signals

pytestmark = pytest.mark.real

JOB = '''
import os, time
from runplz import App, Image, LocalConfig

app = App("signals", local_config=LocalConfig(use_docker=False))


# No timeout: unset, nothing caps the job, so the driver's signal alone must stop it.
@app.function(image=Image.from_registry("python:3.11-slim"))
def wait(pidfile: str = "", marker: str = ""):
    with open(pidfile, "w") as handle:
        handle.write(str(os.getpid()))
    print(f"job-started {marker}", flush=True)
    time.sleep(300)
'''


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("signals-cache")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "sig, code, message",
    [
        (signal.SIGINT, 130, "runplz: interrupted"),
        (signal.SIGTERM, 143, "runplz: terminated"),
        (signal.SIGHUP, 129, "runplz: hung up"),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_signal_exits_with_its_code_and_stops_the_job(tmp_path, cache_dir, sig, code, message):
    repo = make_repo(tmp_path / "repo", JOB).parent
    pidfile = tmp_path / "job.pid"
    marker = f"runplz-signal-{os.getpid()}-{sig.name}"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache_dir)}
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        driver = subprocess.Popen(
            [sys.executable, "-m", "runplz", "local", "--native", "job.py",
             f"--pidfile={pidfile}", f"--marker={marker}"],
            cwd=repo, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=default_signals,
        )
    job_pid = None
    try:
        started = _wait_for(lambda: marker in out.read_text() or driver.poll() is not None, 240)
        assert started and driver.poll() is None, err.read_text()
        job_pid = int(pidfile.read_text())
        os.kill(driver.pid, sig)
        assert driver.wait(timeout=60) == code, err.read_text()
        lines = err.read_text().splitlines()
        assert lines[-1] == message, lines
        assert not any("Traceback" in line or "Abort" in line for line in lines), lines
        assert "" not in lines, lines
        assert _wait_for(lambda: not _alive(job_pid), 10), f"job {job_pid} still running"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        if job_pid is not None and _alive(job_pid):
            os.kill(job_pid, signal.SIGKILL)
