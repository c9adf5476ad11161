"""The ssh backend end to end: real sshd boxes, real ssh and rsync, real Docker on the box."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.job_output import RecordingJobOutput
from runplz.container import make_container
from runplz.domain.errors import RunTimeout
from runplz.loader import load_app

from .jobs import make_repo
from testsupport.signals import default_signals

pytestmark = pytest.mark.real

JOB = '''
import json, os, sys, time
from runplz import App, Image, SshConfig

app = App("ssh-e2e", ssh_config=SshConfig(use_docker=USE_DOCKER, max_runtime_seconds=MAX_RUNTIME))
image = Image.from_registry("python:3.11-slim").pip_install_local_dir("lib")


@app.function(image=image, env={"GREETING": "hi 'there' $(nope) `nope`"}, min_cpu=64, min_memory=100000)
def work(n: int = 1, fail: bool = False, code: int = 0, ticks: int = 0, pause: float = 0.0) -> dict:
    import mylib
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "n.txt"), "w") as handle:
        handle.write(str(n))
    for i in range(ticks):
        print(f"tick {i}", flush=True)
        time.sleep(pause)
    if fail:
        raise RuntimeError(f"asked to fail at {n}")
    if code:
        sys.exit(code)
    return {"n": n, "greeting": os.environ["GREETING"], "lib": mylib.VALUE,
            "in_run_dir": "/.runplz/runs/" in os.getcwd() or os.getcwd() == "/runplz/repo",
            "secret_shipped": os.path.exists(".env"), "stale_output": os.path.exists(os.path.join(os.environ["RUNPLZ_OUT"], "old.txt"))}


@app.function(image=Image.from_registry("python:3.11-slim"), gpu="T4")
def gpu_probe() -> str:
    return os.environ.get("NVIDIA_VISIBLE_DEVICES", "unset")


@app.function(image=Image.from_registry("python:3.11-slim"), timeout=600)
def sleeper(marker: str) -> None:
    print("sleeping", flush=True)
    time.sleep(300)


@app.function(image=Image.from_registry("python:3.11-slim"))
def echo(value: str) -> dict:
    return {"value": value, "env": os.environ.get("HOSTILE")}
'''


def write_job(root, use_docker: bool, max_runtime=None, extra_env: str | None = None):
    source = JOB.replace("USE_DOCKER", str(use_docker)).replace("MAX_RUNTIME", repr(max_runtime))
    if extra_env is not None:
        source = source.replace(
            '@app.function(image=Image.from_registry("python:3.11-slim"))\ndef echo',
            f'@app.function(image=Image.from_registry("python:3.11-slim"), env={{"HOSTILE": {extra_env!r}}})\ndef echo',
        )
    return make_repo(
        root, source,
        files={
            "lib/pyproject.toml": "[project]\nname = 'mylib'\nversion = '0.1'\n"
            "[build-system]\nrequires = ['setuptools']\nbuild-backend = 'setuptools.build_meta'\n",
            "lib/mylib/__init__.py": "VALUE = 41\n",
            ".env": "SECRET=never-ship-me\n",
            "data/table.csv": "".join(f"{i},{i * i},{i % 7}\n" for i in range(20000)),
        },
    )


class Bound:
    def __init__(self, script, host, outputs, cache):
        self.console = RecordingConsole()
        self.output = RecordingJobOutput()
        container = make_container(str(cache))
        container.console.override(self.console)
        container.job_output.override(self.output)
        self.module, self.app = load_app(str(script))
        self.app.bind("ssh", host=host, outputs_dir=str(outputs), container=container)
        self.outputs = outputs

    @property
    def uploaded(self) -> int:
        line = next(m for m in reversed(self.console.infos) if m.startswith("uploaded"))
        number, unit = re.match(r"uploaded ([\d.]+) (\w+)", line).groups()
        return int(float(number) * {"B": 1, "KB": 1024, "MB": 1 << 20, "GB": 1 << 30}[unit])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(params=[True, False], ids=["docker", "native"])
def bound(request, tmp_path, cache, docker_engine, ssh_boxes):
    script = write_job(tmp_path / "repo", use_docker=request.param)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("an earlier run's output")
    return Bound(script, "runplz-near", tmp_path / "out", cache)


def test_args_env_return_value_outputs_and_warnings(bound):
    value = bound.module.work.remote(n=5)
    assert value == {
        "n": 5, "greeting": "hi 'there' $(nope) `nope`", "lib": 41, "in_run_dir": True,
        "secret_shipped": False, "stale_output": False,
    }
    assert (bound.outputs / "n.txt").read_text() == "5"
    warnings = " | ".join(bound.console.warnings)
    assert "wants min_cpu=64 but runplz-near has" in warnings
    assert "wants min_memory=100000 GB but runplz-near has" in warnings


def test_remote_exception_and_outputs_on_failure(bound):
    with pytest.raises(RemoteError) as caught:
        bound.module.work.remote(n=9, fail=True)
    assert caught.value.remote_type == "RuntimeError"
    assert caught.value.remote_message == "asked to fail at 9"
    assert "raise RuntimeError" in caught.value.remote_traceback
    assert caught.value.exit_code == 1
    assert (bound.outputs / "n.txt").read_text() == "9"


def test_exact_exit_code(bound):
    with pytest.raises(RemoteError) as caught:
        bound.module.work.remote(code=7)
    assert caught.value.exit_code == 7


def test_job_output_streams_back(bound):
    bound.module.work.remote(ticks=3)
    assert bound.output.data.decode().splitlines()[-3:] == ["tick 0", "tick 1", "tick 2"]


def test_second_run_of_an_unchanged_repo_uploads_nothing_builds_nothing_one_connection(bound, ssh_boxes):
    bound.module.work.remote()
    bound.console.events.clear()
    before = ssh_boxes.near.accepted()
    bound.module.work.remote(n=2)
    assert ssh_boxes.near.accepted() - before == 1
    repo_size = sum(f.stat().st_size for f in bound.outputs.parent.joinpath("repo").rglob("*") if f.is_file())
    assert bound.uploaded <= repo_size / 100
    assert not [m for m in bound.console.infos if m.startswith(("building", "made environment"))]


def test_docker_gpu_flag_from_the_boxes_nvidia_hook(tmp_path, cache, docker_engine, ssh_boxes):
    bound = Bound(write_job(tmp_path / "repo", use_docker=True), "runplz-near", tmp_path / "out", cache)
    assert bound.module.gpu_probe.remote() == "all"
    assert any("nvidia-smi on runplz-near reports none" in w for w in bound.console.warnings)


def _box_processes(ssh_boxes, pattern: str) -> list[str]:
    result = ssh_boxes.ssh("runplz-near", f"pgrep -af {pattern!r} || true")
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


def test_max_runtime_kills_only_this_run(tmp_path, cache, docker_engine, ssh_boxes):
    decoy = f"decoy-{os.getpid()}-runplz_boot.py"
    ssh_boxes.ssh("runplz-near", f"setsid bash -c 'exec -a {decoy} sleep 120' </dev/null >/dev/null 2>&1 &")
    assert _box_processes(ssh_boxes, decoy), "the decoy did not start"
    bound = Bound(write_job(tmp_path / "repo", use_docker=False, max_runtime=3), "runplz-near", tmp_path / "out", cache)
    marker = f"marker-{os.getpid()}"
    started = time.monotonic()
    with pytest.raises(RunTimeout, match="max_runtime_seconds=3.*killed this run's process group"):
        bound.module.sleeper.remote(marker=marker)
    assert time.monotonic() - started < 60
    time.sleep(0.5)
    assert _box_processes(ssh_boxes, "sleeper") == []
    assert _box_processes(ssh_boxes, decoy), "a process of another run was killed"


def _kill_masters() -> int:
    found = subprocess.run(["pgrep", "-f", "ControlPath=/tmp/runplz-ssh-.*ControlPersist"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return len(pids)


def test_a_dropped_connection_is_survived_and_the_exit_code_is_exact(tmp_path, cache, docker_engine, ssh_boxes):
    bound = Bound(write_job(tmp_path / "repo", use_docker=False), "runplz-near", tmp_path / "out", cache)
    bound.module.work.remote()  # warm the box

    killed = []

    def cut():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"tick 3" not in bound.output.data:
            time.sleep(0.05)
        killed.append(_kill_masters())

    cutter = threading.Thread(target=cut)
    cutter.start()
    with pytest.raises(RemoteError) as caught:
        bound.module.work.remote(n=6, ticks=12, pause=0.25, code=3)
    cutter.join()
    assert killed == [1]
    assert caught.value.exit_code == 3
    ticks = [line for line in bound.output.data.decode().splitlines() if line.startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(12)]
    assert any("lost the connection" in w for w in bound.console.warnings)
    assert (bound.outputs / "n.txt").read_text() == "6"


def test_the_far_box_in_its_own_network_namespace(tmp_path, cache, docker_engine, ssh_boxes, far_box):
    bound = Bound(write_job(tmp_path / "repo", use_docker=False), "runplz-far", tmp_path / "out", cache)
    before = far_box.accepted()
    assert bound.module.work.remote(n=11)["n"] == 11
    assert far_box.accepted() - before == 1


def _cli(args, cwd, ssh_boxes, cache, **kwargs):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "runplz", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals, **kwargs,
    )


def test_cli_run_and_ctrl_c(tmp_path, cache, docker_engine, ssh_boxes):
    script = write_job(tmp_path / "repo", use_docker=False)
    (script.parent / "single.py").write_text(
        "import os\nfrom runplz import App, Image, SshConfig\napp = App('ssh-cli', ssh_config=SshConfig(use_docker=False))\n"
        "@app.function(image=Image.from_registry('python:3.11-slim'))\n"
        "def hello(name: str = 'world') -> str:\n"
        "    open(os.path.join(os.environ['RUNPLZ_OUT'], 'hi.txt'), 'w').write(name)\n"
        "    return f'hello {name}'\n"
    )
    done = _cli(["ssh", "--host", "runplz-near", "single.py", "--name", "ssh"], script.parent, ssh_boxes, cache)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == "hello ssh"
    assert (script.parent / "out" / "hi.txt").read_text() == "ssh"

    (script.parent / "sleepy.py").write_text(
        script.read_text() + "\n@app.local_entrypoint()\ndef main():\n    sleeper.remote(marker='ctrl-c')\n"
    )
    driver = _cli(["ssh", "--host", "runplz-near", "sleepy.py"], script.parent, ssh_boxes, cache)
    deadline = time.monotonic() + 300
    job = "runplz_boot.py /home/runplz/.runplz/runs/"
    while time.monotonic() < deadline and not _box_processes(ssh_boxes, job):
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.3)
    time.sleep(0.5)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "stopping the run" in err
    time.sleep(0.5)
    assert _box_processes(ssh_boxes, job) == []
    assert (script.parent / "out").is_dir()


def test_down_after_a_killed_driver_stops_the_job_on_the_box_and_brings_its_outputs(tmp_path, cache, ssh_boxes):
    script = write_job(tmp_path / "repo", use_docker=False)
    (script.parent / "stuck.py").write_text(
        "import os, time\nfrom runplz import App, Image, SshConfig\n"
        "app = App('ssh-down', ssh_config=SshConfig(use_docker=False))\n"
        "@app.function(image=Image.from_registry('python:3.11-slim'))\n"
        "def stuck() -> None:\n"
        "    open(os.path.join(os.environ['RUNPLZ_OUT'], 'early.txt'), 'w').write('early')\n"
        "    print('stuck-started', flush=True)\n"
        "    time.sleep(300)\n"
    )
    driver = _cli(["ssh", "--host", "runplz-near", "stuck.py"], script.parent, ssh_boxes, cache)
    for line in driver.stdout:
        if "stuck-started" in line:
            break
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    job = "runplz_boot.py /home/runplz/.runplz/runs/"
    assert _box_processes(ssh_boxes, job), "the job should outlive its killed driver"
    down = _cli(["down", "last"], script.parent, ssh_boxes, cache)
    out, err = down.communicate(timeout=180)
    assert down.returncode == 0 and "stopped its job on runplz-near" in out, out + err
    assert (script.parent / "out" / "early.txt").read_text() == "early"
    time.sleep(0.5)
    assert _box_processes(ssh_boxes, job) == []
    status = _cli(["status", "last"], script.parent, ssh_boxes, cache).communicate(timeout=60)[0]
    assert "interrupted" in status
