"""The agent on a full disk (a tiny tmpfs), and venvs that outlive their run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.venv_builder import VenvBuilder
from runplz.container import find_uv
from runplz.domain.remote_layout import ENV_MARK, NOSPACE_MARK
from runplz.ports.python_env import EnvRequest, PipStep
from runplz.runtime.basis import mirror
from testsupport.real import unavailable

from .agentkit import Box, boot, job, wait_for  # noqa: F401


@pytest.fixture
def disk(tmp_path):
    """A 1 MiB tmpfs."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.getuid() != 0:
        pytest.skip("needs root to mount a tiny tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def full_box(boot, disk):
    made = Box(boot, disk / "home")
    made.run()
    (made.run() / "repo" / "code.py").write_text("print(1)\n")
    yield made
    made.cleanup()


def test_start_on_a_full_disk_says_so_and_cleans_up(full_box, disk):
    fill(disk)
    done = full_box.start(job("pass"), payload="x" * 10000)
    assert done.returncode == 28, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(NOSPACE_MARK) and int(line[len(NOSPACE_MARK):]) >= 0
    assert not (full_box.run() / "ctl").exists()
    assert (full_box.run() / "out").is_dir() and (full_box.run() / "repo" / "code.py").exists()


def test_a_disk_that_fills_during_the_job_still_gets_its_exit_code(full_box, disk):
    code = (
        "import os\n"
        "fd = os.open('../out/big', os.O_WRONLY | os.O_CREAT)\n"
        "for size in (65536, 4096, 1):\n"
        "    try:\n"
        "        while True:\n"
        "            os.write(fd, b'x' * size)\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(3)\n"
    )
    started = full_box.start(job(code), limit=60)
    assert started.returncode == 0, started.stderr
    _, record = full_box.follow()
    assert record["exit_code"] == 3 and record["timed_out"] is False


def test_a_mirror_that_runs_out_of_room_is_removed_and_start_carries_on(boot, tmp_path, disk):
    box = Box(boot, tmp_path / "home")
    try:
        repo = box.run() / "repo"
        (repo / "small.txt").write_text("s")
        (repo / "big.bin").write_bytes(os.urandom(2 << 20))
        assert not mirror(str(repo), str(disk / "basis"))
        assert not (disk / "basis").exists()
        started = box.start(job("pass"), basis=[str(repo), str(disk / "basis2")])
        assert started.returncode == 0 and int(started.stdout) > 0, started.stderr
        assert box.follow()[1]["exit_code"] == 0
        assert wait_for(lambda: (disk / "basis2.lock").exists() and not (disk / "basis2").exists(), 10)
    finally:
        box.cleanup()


def _venv_request(root: str, key: str, steps: list[dict]) -> str:
    return json.dumps({"key": key, "python": sys.executable, "root": root, "steps": steps})


def _uv_env() -> dict:
    uv = find_uv()
    if uv is None:
        unavailable("uv is not installed (pip install uv)")
    return {**os.environ, "PATH": f"{os.path.dirname(uv)}:{os.environ['PATH']}"}


@pytest.mark.real
def test_venv_on_a_full_disk_reports_nospace(boot, disk):
    box = Box(boot, disk / "home", env=_uv_env())
    fill(disk)
    done = box.agent("venv", _venv_request(str(disk / "venvs"), "k" * 32, []), timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1][len(ENV_MARK):])
    assert answer["nospace"] is True and answer["free_kb"] >= 0
    assert answer["error"].startswith("no space left on device")


def _package(folder: Path) -> Path:
    (folder / "mylib").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("[project]\nname = 'mylib'\nversion = '0.1'\n")
    (folder / "mylib" / "__init__.py").write_text("VALUE = 3\n")
    os.symlink("mylib/__init__.py", folder / "link.py")
    return folder


def _import(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import mylib; print(mylib.VALUE, mylib.__file__)"],
        capture_output=True, text=True, timeout=60, cwd="/",
    ).stdout.strip()


@pytest.mark.real
def test_the_agent_installs_editable_folders_from_a_snapshot_that_outlives_the_run(boot, tmp_path):
    box = Box(boot, tmp_path / "home", env=_uv_env())
    package = _package(box.run() / "repo" / "lib")
    key = "e" * 40
    steps = [{"packages": ["six"], "index_url": None, "editable": False},
             {"packages": [str(package)], "index_url": None, "editable": True}]
    done = box.agent("venv", _venv_request(".runplz/venvs", key, steps), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    python = json.loads(done.stdout.strip().splitlines()[-1][len(ENV_MARK):])["python"]
    snapshot = box.home / ".runplz" / "venvs" / f"{key[:24]}.src" / "1"
    assert os.path.islink(snapshot / "link.py")
    subprocess.run(["rm", "-rf", str(box.run())], check=True)
    assert _import(python) == f"3 {snapshot / 'mylib' / '__init__.py'}"


@pytest.mark.real
def test_locally_editable_folders_are_installed_in_place(tmp_path):
    uv = find_uv()
    if uv is None:
        unavailable("uv is not installed (pip install uv)")
    package = _package(tmp_path / "lib")
    builder = VenvBuilder(SubprocessRunner(), str(tmp_path / "venvs"), uv=uv)
    env = builder.ensure(EnvRequest("f" * 40, sys.executable, (PipStep((str(package),), editable=True),)))
    assert _import(env.python) == f"3 {package / 'mylib' / '__init__.py'}"
    assert not (tmp_path / "venvs" / f"{'f' * 24}.src").exists()
