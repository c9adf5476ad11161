"""A box where `docker` is refused for lack of permission: runplz falls back to
`sudo -n docker` for everything docker there, or says what to fix in one line."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from .jobs import make_repo
from testsupport.signals import default_signals

pytestmark = pytest.mark.real

JOB = """
import os, time
from runplz import App, Image, SshConfig
app = App("sudo-docker", ssh_config=SshConfig(use_docker=True))
image = Image.from_registry("python:3.11-slim").run_commands("echo KEY")
"""
HELLO = """
@app.function(image=image, env={"GREETING": "hi 'there' $(nope)"})
def hello(name: str = "world") -> dict:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "hi.txt"), "w") as handle:
        handle.write(name)
    print("hello from the container", flush=True)
    return {"name": name, "greeting": os.environ["GREETING"], "uid": os.getuid(), "home": os.environ["HOME"]}
"""
NAP = """
@app.function(image=image, timeout=TIMEOUT)
def nap(marker: str) -> None:
    print("napping", marker, flush=True)
    time.sleep(300)
"""

SUDO_NOTE = "runplz-sudo@runplz-near: docker needs sudo there; using `sudo -n docker`"


def _cli(args, cwd, cache, stderr=subprocess.PIPE):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "runplz", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=stderr, text=True, preexec_fn=default_signals,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def sudo_user(ssh_boxes):
    """A login not in the docker group, with passwordless sudo."""
    home = ssh_boxes.add_user("runplz-sudo")
    ssh_boxes.allow_sudo("runplz-sudo")
    refused = ssh_boxes.ssh("runplz-near", "docker version --format x", user="runplz-sudo")
    assert refused.returncode != 0 and "permission denied" in refused.stderr.lower(), refused
    yield "runplz-sudo@runplz-near", home
    ssh_boxes.allow_sudo("runplz-sudo", allowed=False)


def _repo(tmp_path, function: str, timeout: int = 600):
    key = f"sudo-build-{uuid.uuid4().hex[:12]}"  # a base image only sudo docker can build
    return make_repo(tmp_path / "repo", JOB.replace("KEY", key) + function.replace("TIMEOUT", str(timeout)))


def _containers(docker_engine, run: str) -> str:
    return docker_engine.docker("ps", "-aq", "--filter", f"label=runplz.run={run}").stdout.strip()


def _run_id(text: str) -> str:
    return re.search(r"\(run ([0-9A-Za-z_-]+)\)", text).group(1)


def test_sudo_docker_builds_runs_and_brings_back(tmp_path, cache, docker_engine, ssh_boxes, sudo_user):
    host, home = sudo_user
    script = _repo(tmp_path, HELLO)
    driver = _cli(["ssh", "--host", host, "job.py", "--name", "sudo"], script.parent, cache)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err
    entry = pwd.getpwnam("runplz-sudo")
    assert json.loads(out.strip().splitlines()[-1]) == {
        "name": "sudo", "greeting": "hi 'there' $(nope)", "uid": entry.pw_uid, "home": "/tmp",
    }
    assert "hello from the container" in out
    assert (script.parent / "out" / "hi.txt").read_text() == "sudo"
    assert err.count("docker needs sudo") == 1 and f"runplz: {SUDO_NOTE}" in err.splitlines(), err
    assert "building base image" in err
    run = _run_id(err)
    recorded = json.loads(open(os.path.join(home, ".runplz", "runs", run, "ctl", "docker")).read())
    assert recorded == ["sudo", "-n", "--preserve-env=DOCKER_HOST", "docker"]
    assert not _containers(docker_engine, run)


def _started(driver, marker: str) -> str:
    """Read the driver's merged output until the job says it runs; returns the run id."""
    seen = ""
    for line in driver.stdout:
        seen += line
        if f"napping {marker}" in line:
            return _run_id(seen)
    raise AssertionError(f"the job never started: {seen}")


def test_a_timed_out_run_under_sudo_docker_leaves_no_container(tmp_path, cache, docker_engine, ssh_boxes, sudo_user):
    host, home = sudo_user
    script = _repo(tmp_path, NAP, timeout=4)
    driver = _cli(["ssh", "--host", host, "job.py", "--marker", "t"], script.parent, cache)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 1, err
    assert "nap ran past its timeout of 4s on runplz-sudo@runplz-near" in err
    assert "napping t" in out and err.count("docker needs sudo") == 1
    run = _run_id(err)
    exit_code = os.path.join(home, ".runplz", "runs", run, "ctl", "exit_code")
    deadline = time.monotonic() + 60  # the box's watchdog: `docker stop` through sudo (PID 1 ignores SIGTERM)
    while not os.path.exists(exit_code) or _containers(docker_engine, run):
        assert time.monotonic() < deadline, f"the run's container outlived its time limit: {_containers(docker_engine, run)}"
        time.sleep(0.5)
    assert open(exit_code).read().strip() == "124"


def test_an_interrupted_run_under_sudo_docker_leaves_no_container(tmp_path, cache, docker_engine, ssh_boxes, sudo_user):
    host, _ = sudo_user
    script = _repo(tmp_path, NAP)
    driver = _cli(["ssh", "--host", host, "job.py", "--marker", "i"], script.parent, cache,
                  stderr=subprocess.STDOUT)
    run = _started(driver, "i")
    assert _containers(docker_engine, run), "the job's container is not running"
    driver.send_signal(signal.SIGINT)
    rest, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, rest
    assert "stopping the run" in rest
    assert not _containers(docker_engine, run)


def test_no_docker_group_and_no_sudo_is_one_line(tmp_path, cache, docker_engine, ssh_boxes):
    ssh_boxes.add_user("runplz-nosudo")
    ssh_boxes.allow_sudo("runplz-nosudo", allowed=False)
    assert ssh_boxes.ssh("runplz-near", "sudo -n true", user="runplz-nosudo").returncode != 0
    script = _repo(tmp_path, HELLO)
    driver = _cli(["ssh", "--host", "runplz-nosudo@runplz-near", "job.py"], script.parent, cache)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 1, err
    errors = [line for line in err.splitlines() if "error" in line]
    assert errors == [
        "runplz: error: Docker does not answer on runplz-nosudo@runplz-near: permission denied "
        "(runplz-nosudo is not in the docker group and `sudo -n docker` does not work there); "
        "add runplz-nosudo to the docker group there (sudo usermod -aG docker runplz-nosudo), "
        "or use SshConfig(use_docker=False) for a native venv"
    ], err
    assert "Traceback" not in err and out == ""
    assert "uploaded" not in err  # it fails before sending anything
