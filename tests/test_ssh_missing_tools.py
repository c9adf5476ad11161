"""A box without rsync or python3, and a machine without rsync: one line naming what to install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runplz.adapters.fake_runner import FakeCommandRunner
from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.ssh_transport import SshTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.errors import TransportError
from runplz.domain.host import SshTarget

from .jobs import make_repo

JOB = """
from runplz import App, Image, SshConfig
app = App("tools", ssh_config=SshConfig(use_docker=USE_DOCKER))

@app.function(image=Image.from_registry("python:3.11-slim"))
def hello() -> str:
    return "hello"
"""


def test_rsync_missing_on_this_machine_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    transport = SshTransport(SubprocessRunner(), FakeClock(), SshTarget("gpu-box"))
    with pytest.raises(TransportError) as caught:
        try:
            transport.push(str(tmp_path), "somewhere")
        finally:
            transport.close()
    assert str(caught.value) == (
        "rsync is not installed on this machine (needed to reach gpu-box); "
        "install it (Debian/Ubuntu: sudo apt-get install rsync)"
    )


def test_ssh_missing_on_this_machine_names_its_package(tmp_path):
    transport = SshTransport(FakeCommandRunner({}), FakeClock(), SshTarget("gpu-box"))
    with pytest.raises(TransportError, match=r"^ssh is not installed on this machine .*openssh-client\)$"):
        try:
            transport.connect()
        finally:
            transport.close()


def _cli(args, cwd, cache):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "runplz", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.real
@pytest.mark.parametrize(
    "user, without, message",
    [
        ("runplz-norsync", ("rsync",),
         "has no rsync; install it there (Debian/Ubuntu: sudo apt-get install rsync)"),
        ("runplz-nopython", ("python3", "python3.*"),
         "has no python3; runplz needs python3 >= 3.10 there; install it there "
         "(Debian/Ubuntu: sudo apt-get install python3)"),
    ],
)
@pytest.mark.parametrize("use_docker", [True, False], ids=["docker", "native"])
def test_a_box_missing_a_tool_says_what_to_install(tmp_path, docker_engine, ssh_boxes, user, without, message, use_docker):
    ssh_boxes.add_user(user, shell=ssh_boxes.limited_shell(user, without))
    for tool in ("rsync", "python3"):
        found = ssh_boxes.ssh("runplz-near", f"command -v {tool} || echo missing", user=user)
        assert found.returncode == 0, found.stderr
        assert (found.stdout.strip() == "missing") == (tool in without), found.stdout
    assert ssh_boxes.ssh("runplz-near", "command -v sh && command -v tar", user=user).returncode == 0
    script = make_repo(tmp_path / "repo", JOB.replace("USE_DOCKER", str(use_docker)))
    done = _cli(["ssh", "--host", f"{user}@runplz-near", "job.py"], script.parent, tmp_path / "cache")
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"runplz: error: {user}@runplz-near {message}"], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
