"""Local runs stop at their time limit on their own: a driver killed with -9
leaves no container or process running past it (real Docker, real venvs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from .jobs import make_repo

pytestmark = pytest.mark.real

SLEEPER = """
import os, time
from runplz import App, Image, LocalConfig
app = App("local-sleeper", local_config=LocalConfig(use_docker=USE_DOCKER))

@app.function(image=Image.from_registry("python:3.11-slim"), timeout=4)
def nap(marker: str) -> None:
    print("napping", marker, os.getpid(), flush=True)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    """A live (not zombie) process with this pid on this machine."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("use_docker", [True, False], ids=["docker", "native"])
def test_a_killed_driver_leaves_no_job_past_its_timeout(tmp_path, docker_engine, use_docker):
    marker = f"nap-{uuid.uuid4().hex[:8]}"
    script = make_repo(tmp_path / "repo", SLEEPER.replace("USE_DOCKER", str(use_docker)))
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(tmp_path / "cache")}
    driver = subprocess.Popen(
        [sys.executable, "-m", "runplz", "local", "job.py", "--marker", marker], cwd=script.parent, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 300
    pid = None
    for line in driver.stdout:
        if f"napping {marker}" in line:
            pid = int(line.split()[-1])
            break
        assert time.monotonic() < deadline
    else:
        pytest.fail(f"the job never started: exit {driver.wait()}")
    if use_docker:  # the pid is the container's own; find the job by its container
        ps = subprocess.run(["docker", "ps", "-q", "--filter", "label=runplz.app=local-sleeper"], capture_output=True, text=True)
        assert ps.stdout.split(), "no container runs the job"
    else:
        assert _alive(pid)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 40
    while True:
        if use_docker:
            ps = subprocess.run(
                ["docker", "ps", "-q", "--filter", "label=runplz.app=local-sleeper"], capture_output=True, text=True
            )
            left = ps.stdout.split()
        else:
            left = [pid] if _alive(pid) else []
        if not left:
            break
        assert time.monotonic() < deadline, f"still running past the timeout with the driver dead: {left}"
        time.sleep(0.5)
