"""The remote run path under attack and accident, over the real sshd boxes.

Races between runs, stale code, hostile outputs, killed drivers, full disks,
noisy logins and jobs that kill their own supervisor.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.ssh_transport import SshTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.system_clock import SystemClock
from runplz.domain.errors import NoSpaceLeft, TransportError
from runplz.domain.host import parse_target
from runplz.services.remote_upload import Uploader
from runplz.services.tree import TreeScanner

from .jobs import make_repo
from .secret_trees import MARK, check_selection, make_tree, tree_specs
from .test_e2e_ssh import Bound

pytestmark = pytest.mark.real

LIB_PYPROJECT = """
[project]
name = "mylib"
version = "0.1"
[build-system]
requires = ["setuptools"]
build-backend = "slow_backend"
backend-path = ["."]
"""
# A build backend that takes its time, so a run stays between its upload and its start.
SLOW_BACKEND = """
import time
from setuptools import build_meta as _inner
time.sleep(3)
def __getattr__(name):
    return getattr(_inner, name)
"""

RACE_JOB = """
import os
from runplz import App, Image, SshConfig
app = App("race", ssh_config=SshConfig(use_docker=USE_DOCKER))
image = Image.from_registry("python:3.11-slim").run_commands("sleep 3 && echo KEY").pip_install_local_dir("lib")
VERSION = "first"

@app.function(image=image)
def which() -> dict:
    import mylib
    return {"script": VERSION, "lib": mylib.VERSION}
"""


def _cli(args, cwd, cache, merge: bool = False):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "runplz", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge else subprocess.PIPE, text=True,
    )


def _wait_for(proc, text: str, timeout: float = 300) -> str:
    """Read the driver's stderr until ``text`` shows up; returns what was read."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"the driver ended before {text!r}: {seen}")
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} within {timeout}s: {seen}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("use_docker", [True, False], ids=["docker", "native"])
def test_concurrent_runs_of_one_repo_each_run_their_own_code(tmp_path, cache, docker_engine, ssh_boxes, use_docker):
    key = uuid.uuid4().hex
    script = make_repo(
        tmp_path / "repo", RACE_JOB.replace("USE_DOCKER", str(use_docker)).replace("KEY", key),
        files={
            "lib/pyproject.toml": LIB_PYPROJECT + f"# {key}\n",
            "lib/slow_backend.py": SLOW_BACKEND,
            "lib/mylib/__init__.py": 'VERSION = "first"\n',
        },
    )
    first = _cli(["ssh", "--host", "runplz-near", "job.py"], script.parent, cache)
    _wait_for(first, "uploaded")
    script.write_text(script.read_text().replace('VERSION = "first"', 'VERSION = "second, longer"'))
    (script.parent / "lib" / "mylib" / "__init__.py").write_text('VERSION = "second, longer"\n')
    second = _cli(["ssh", "--host", "runplz-near", "job.py"], script.parent, cache)
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert json.loads(out1.strip().splitlines()[-1]) == {"script": "first", "lib": "first"}
    assert json.loads(out2.strip().splitlines()[-1]) == {"script": "second, longer", "lib": "second, longer"}


SAME_SIZE_JOB = """
from runplz import App, Image, SshConfig
app = App("same-size", ssh_config=SshConfig(use_docker=False))

@app.function(image=Image.from_registry("python:3.11-slim"))
def version() -> str:
    return "AAAA"
"""


def test_a_same_size_same_second_edit_runs(tmp_path, cache, docker_engine, ssh_boxes):
    script = make_repo(tmp_path / "repo", SAME_SIZE_JOB)
    bound = Bound(script, "runplz-near", tmp_path / "out", cache)
    assert bound.module.version.remote() == "AAAA"
    before = os.stat(script)
    script.write_text(script.read_text().replace("AAAA", "BBBB"))
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(script).st_size == before.st_size
    again = Bound(script, "runplz-near", tmp_path / "out", cache)
    assert again.module.version.remote() == "BBBB"


HOSTILE_JOB = """
import os
from runplz import App, Image, SshConfig
app = App("hostile", ssh_config=SshConfig(use_docker=False))

@app.function(image=Image.from_registry("python:3.11-slim"))
def spoil() -> str:
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, "result.txt"), "w") as handle:
        handle.write("fine")
    os.symlink("/etc/passwd", os.path.join(out, "passwd"))
    os.symlink("result.txt", os.path.join(out, "alias"))
    os.mkfifo(os.path.join(out, "pipe"))
    with open(os.path.join(out, "shell"), "w") as handle:
        handle.write("#!/bin/sh\\n")
    os.chmod(os.path.join(out, "shell"), 0o6755)
    os.chmod(out, 0o777)
    return "spoiled"
"""


def test_hostile_outputs_stay_inside_and_plain(tmp_path, cache, docker_engine, ssh_boxes):
    script = make_repo(tmp_path / "repo", HOSTILE_JOB)
    outputs = tmp_path / "out"
    outputs.mkdir()
    os.chmod(outputs, 0o750)
    bound = Bound(script, "runplz-near", outputs, cache)
    assert bound.module.spoil.remote() == "spoiled"
    assert stat.S_IMODE(os.stat(outputs).st_mode) == 0o750
    assert sorted(os.listdir(outputs)) == ["alias", "result.txt", "shell"]
    assert os.readlink(outputs / "alias") == "result.txt"
    shell = os.stat(outputs / "shell")
    assert not shell.st_mode & (stat.S_ISUID | stat.S_ISGID) and shell.st_mode & stat.S_IXUSR
    warnings = " | ".join(bound.console.warnings)
    assert "left passwd of the outputs" in warnings and "points outside" in warnings
    assert "left pipe of the outputs" in warnings


SLEEPER = """
import os, time
from runplz import App, Image, SshConfig
app = App("sleeper", ssh_config=SshConfig(use_docker=USE_DOCKER, max_runtime_seconds=LIMIT))

@app.function(image=Image.from_registry("python:3.11-slim"))
def nap(marker: str) -> None:
    print("napping", marker, flush=True)
    time.sleep(300)
"""


def _box(ssh_boxes, command: str, user: str | None = None) -> str:
    return ssh_boxes.ssh("runplz-near", command, user=user).stdout


def _alive(ssh_boxes, run: str) -> int:
    """How many live (not zombie) processes the run's process group has on the box."""
    command = (
        f"g=$(cat .runplz/runs/{run}/ctl/pgid 2>/dev/null) || exit 0; "
        "ps -eo pgid=,stat= | awk -v g=\"$g\" '$1==g && $2 !~ /^Z/' | wc -l"
    )
    text = _box(ssh_boxes, command).strip()
    return int(text) if text.isdigit() else 0


def _masters() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "ControlPath=/tmp/runplz-ssh-.*ControlPersist"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def _started(driver, marker: str) -> str:
    """Read the driver's merged output until the job says it runs; returns the run id."""
    run, seen = None, ""
    for line in driver.stdout:
        seen += line
        found = re.search(r"\(run ([0-9A-Za-z_-]+)\)", line)
        if found:
            run = found.group(1)
        if f"napping {marker}" in line:
            assert run, seen
            return run
    raise AssertionError(f"the job never started: {seen}")


@pytest.mark.parametrize("use_docker", [True, False], ids=["docker", "native"])
def test_a_killed_driver_leaves_nothing_running(tmp_path, cache, docker_engine, ssh_boxes, use_docker):
    marker = f"nap-{uuid.uuid4().hex[:8]}"
    script = make_repo(tmp_path / "repo", SLEEPER.replace("USE_DOCKER", str(use_docker)).replace("LIMIT", "6"))
    masters = _masters()
    driver = _cli(["ssh", "--host", "runplz-near", "job.py", "--marker", marker], script.parent, cache,
                  merge=True)
    run = _started(driver, marker)
    assert _alive(ssh_boxes, run)
    ours = _masters() - masters
    assert ours, "no ssh master of the driver's own"
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    deadline = time.monotonic() + 60
    while _alive(ssh_boxes, run):
        assert time.monotonic() < deadline, "the job outlived its time limit with its driver dead"
        time.sleep(0.5)
    assert _box(ssh_boxes, f"echo $(cat .runplz/runs/{run}/ctl/exit_code); test -f .runplz/runs/{run}/ctl/timed_out && echo timed-out").split() == ["124", "timed-out"]
    if use_docker:
        assert not _box(ssh_boxes, f"docker ps -q --filter label=runplz.run={run}").strip()
        return  # the master's end does not depend on the mode: the native case waits for it (~30 s)
    deadline = time.monotonic() + 90
    while ours & _masters():
        assert time.monotonic() < deadline, "the ssh master outlived its dead driver"
        time.sleep(1)


SUPERVISOR_KILLER = """
import os, time
from runplz import App, Image, SshConfig
app = App("parricide", ssh_config=SshConfig(use_docker=False))

@app.function(image=Image.from_registry("python:3.11-slim"))
def kill_parent(marker: str) -> None:
    print("napping", marker, flush=True)
    os.kill(os.getppid(), 9)
    time.sleep(300)
"""


def test_a_job_that_kills_its_supervisor_is_stopped_and_said_so(tmp_path, cache, docker_engine, ssh_boxes):
    marker = f"parricide-{uuid.uuid4().hex[:8]}"
    script = make_repo(tmp_path / "repo", SUPERVISOR_KILLER)
    bound = Bound(script, "runplz-near", tmp_path / "out", cache)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        bound.module.kill_parent.remote(marker=marker)
    assert time.monotonic() - started < 120
    assert caught.value.remote_type == "RunplzSupervisorLost" and "supervisor" in str(caught.value)
    run = re.search(r"\(run ([0-9A-Za-z_-]+)\)", " ".join(bound.console.infos)).group(1)
    assert _alive(ssh_boxes, run) == 0


def test_a_login_banner_is_named_before_rsync_trips_on_it(tmp_path, cache, docker_engine, ssh_boxes):
    home = ssh_boxes.add_user("runplz-noisy")
    with open(os.path.join(home, ".bashrc"), "w") as handle:
        handle.write('echo "Welcome to the noisy box"\n')
    script = make_repo(tmp_path / "repo", SAME_SIZE_JOB)
    bound = Bound(script, "runplz-noisy@runplz-near", tmp_path / "out", cache)
    with pytest.raises(TransportError, match="prints text for non-interactive logins.*Welcome to the noisy box.*bashrc"):
        bound.module.version.remote()


FILLER = """
import os
from runplz import App, Image, SshConfig
app = App("filler", ssh_config=SshConfig(use_docker=False))

@app.function(image=Image.from_registry("python:3.11-slim"))
def fill() -> None:
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, "first.txt"), "w") as handle:
        handle.write("kept")
    with open(os.path.join(out, "huge.bin"), "wb") as handle:
        while True:
            handle.write(b"x" * (1 << 20))
"""


@pytest.fixture
def small_box(ssh_boxes):
    """A login whose ~/.runplz lives on a 40 MB file system."""
    user = "runplz-small"
    home = ssh_boxes.add_user(user)
    folder = os.path.join(home, ".runplz")
    subprocess.run(["umount", folder], capture_output=True)
    subprocess.run(["rm", "-rf", folder], check=True)
    os.makedirs(folder)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0755", "tmpfs", folder], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"could not mount a small tmpfs: {mounted.stderr}")
    subprocess.run(["chown", f"{user}:{user}", folder], check=True)
    yield f"{user}@runplz-near", folder
    subprocess.run(["umount", "-l", folder], capture_output=True)


def test_a_full_disk_says_so_cleans_up_and_the_next_run_works(tmp_path, cache, docker_engine, ssh_boxes, small_box):
    host, folder = small_box
    script = make_repo(tmp_path / "repo", SAME_SIZE_JOB)
    (script.parent / "weights.bin").write_bytes(os.urandom(60 << 20))
    bound = Bound(script, host, tmp_path / "out", cache)
    with pytest.raises(NoSpaceLeft, match=r"no space left on runplz-small@runplz-near \(\d+ MB free in ~/.runplz\)"):
        bound.module.version.remote()
    runs = os.path.join(folder, "runs")
    assert not os.path.isdir(runs) or [n for n in os.listdir(runs) if not n.startswith(".")] == []
    (script.parent / "weights.bin").unlink()
    again = Bound(script, host, tmp_path / "out", cache)
    assert again.module.version.remote() == "AAAA"


def test_a_job_that_fills_the_disk_keeps_its_own_error_and_outputs(tmp_path, cache, docker_engine, ssh_boxes, small_box):
    host, folder = small_box
    script = make_repo(tmp_path / "repo", FILLER)
    bound = Bound(script, host, tmp_path / "out", cache)
    with pytest.raises(RemoteError) as caught:
        bound.module.fill.remote()
    assert caught.value.remote_type == "OSError"
    assert "No space left on device" in caught.value.remote_message
    assert (tmp_path / "out" / "first.txt").read_text() == "kept"
    assert any("no space left on runplz-small@runplz-near" in w for w in bound.console.warnings)
    again = Bound(make_repo(tmp_path / "repo2", SAME_SIZE_JOB), host, tmp_path / "out2", cache)
    assert again.module.version.remote() == "AAAA"


_trees = iter(range(1 << 30))


@settings(
    max_examples=8, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=tree_specs())
def test_random_trees_never_put_a_secret_on_the_box(tmp_path, ssh_boxes, spec):
    """The repo upload of every run: select, then push into the run's folder over real rsync."""
    case = tmp_path / f"case{next(_trees)}"
    made = make_tree(case, spec)
    chosen = TreeScanner().select(str(made.root), spec.anchored)
    check_selection(made, chosen, "\n".join(spec.ignore), spec.anchored)
    transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target("runplz-near"))
    transport.connect(wait=30)
    spot = f".runplz-test/{uuid.uuid4().hex[:12]}"
    try:
        Uploader(transport, TreeScanner(), RecordingConsole()).repo(chosen, f"{spot}/repo", f"{spot}/basis")
        dump = transport.run(["sh", "-c", f"cd {spot}/repo && find . -mindepth 1 | sort && find . -type f -exec cat {{}} +"])
        assert dump.exit_code == 0, dump.stderr
        assert MARK not in dump.stdout
        listed = {line[2:] for line in dump.stdout.splitlines() if line.startswith("./")}
        assert listed == set(chosen.paths())
    finally:
        transport.run(["rm", "-rf", spot])
        transport.close()


BIG_OUTPUT = """
import os
from runplz import App, Image, SshConfig
app = App("big-output", ssh_config=SshConfig(use_docker=False))

@app.function(image=Image.from_registry("python:3.11-slim"))
def write() -> str:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "big.bin"), "wb") as handle:
        handle.write(os.urandom(8 << 20))
    return "written"
"""


def test_outputs_that_do_not_fit_here_stay_on_the_box(tmp_path, cache, docker_engine, ssh_boxes):
    outputs = tmp_path / "small-out"
    outputs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(outputs)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"could not mount a small tmpfs: {mounted.stderr}")
    try:
        bound = Bound(make_repo(tmp_path / "repo", BIG_OUTPUT), "runplz-near", outputs, cache)
        with pytest.raises(NoSpaceLeft, match="no space left on this machine"):
            bound.module.write.remote()
        run = re.search(r"\(run ([0-9A-Za-z_-]+)\)", " ".join(bound.console.infos)).group(1)
        kept = _box(ssh_boxes, f"stat -c %s .runplz/runs/{run}/out/big.bin")
        assert kept.split() == [str(8 << 20)]
    finally:
        subprocess.run(["umount", "-l", str(outputs)], capture_output=True)
