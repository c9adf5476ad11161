"""End to end against a real Docker engine (started by the test setup)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.container import make_container
from runplz.loader import load_app

from .jobs import make_repo
from testsupport.signals import default_signals

pytestmark = pytest.mark.real

JOB = '''
import json, os, subprocess, sys
from runplz import App, Image

app = App("e2e")

image = (
    Image.from_registry("python:3.11-slim")
    .apt_install("jq")
    .pip_install("six>=1.16")
    .pip_install_local_dir("lib", editable=True)
    .run_commands("echo built-by-run-commands > /etc/runplz-marker")
)


@app.function(image=image, env={"MODE": "e2e", "TRICKY": "a b $(x) 'q'"}, timeout=600)
def work(steps: int = 1, fail: bool = False) -> dict:
    import six, mylib
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, "steps.txt"), "w") as handle:
        handle.write(str(steps))
    if fail:
        raise KeyError("no such step")
    jq = subprocess.run(["jq", "-n", "1+1"], capture_output=True, text=True).stdout.strip()
    return {
        "steps": steps, "jq": jq, "six": six.__name__, "mylib": mylib.VALUE,
        "marker": open("/etc/runplz-marker").read().strip(),
        "env": [os.environ["MODE"], os.environ["TRICKY"]],
        "secret_shipped": os.path.exists(".env"), "uid": os.getuid(),
    }


@app.function(image=Image.from_registry("python:3.11-slim"), gpu="T4")
def gpu_probe() -> str:
    return os.environ.get("NVIDIA_VISIBLE_DEVICES", "unset")


@app.function(image=Image.from_registry("python:3.11-slim"))
def sleeper() -> None:
    import time
    print("sleeping", flush=True)
    time.sleep(120)
'''


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    make_repo(
        root,
        JOB,
        files={
            "lib/pyproject.toml": "[project]\nname = 'mylib'\nversion = '0.1'\n",
            "lib/mylib/__init__.py": "VALUE = 41\n",
            ".env": "SECRET=never-ship-me\n",
        },
    )
    return root


@pytest.fixture
def job(repo, cache, tmp_path, docker_engine):
    console = RecordingConsole()
    container = make_container(str(cache))
    container.console.override(console)
    module, app = load_app(str(repo / "job.py"))
    app.bind("local", outputs_dir=str(tmp_path / "out"), container=container)
    module.console = console
    module.outputs = tmp_path / "out"
    return module


def test_dsl_ops_args_env_return_value_and_outputs(job):
    value = job.work.remote(steps=5)
    assert value == {
        "steps": 5, "jq": "2", "six": "six", "mylib": 41, "marker": "built-by-run-commands",
        "env": ["e2e", "a b $(x) 'q'"], "secret_shipped": False, "uid": os.getuid(),
    }
    assert (job.outputs / "steps.txt").read_text() == "5"


def test_second_run_of_an_unchanged_repo_builds_nothing(job):
    job.work.remote()
    job.console.events.clear()
    job.work.remote(steps=2)
    assert not [m for m in job.console.infos if m.startswith("building")]


def test_remote_exception_and_outputs_on_failure(job):
    with pytest.raises(RemoteError) as caught:
        job.work.remote(steps=3, fail=True)
    assert caught.value.remote_type == "KeyError"
    assert "no such step" in caught.value.remote_message
    assert "raise KeyError" in caught.value.remote_traceback
    assert caught.value.exit_code == 1
    assert (job.outputs / "steps.txt").read_text() == "3"


def test_gpu_function_gets_gpus_from_the_nvidia_hook(job):
    assert job.gpu_probe.remote() == "all"


def _docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def test_ctrl_c_stops_and_removes_the_container(repo, cache, tmp_path, docker_engine):
    entry = repo / "sleepy.py"
    entry.write_text(
        (repo / "job.py").read_text().replace('App("e2e")', 'App("e2e-sleepy")')
        + "\n@app.local_entrypoint()\ndef main():\n    sleeper.remote()\n"
    )
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    driver = subprocess.Popen(
        [sys.executable, "-m", "runplz", "local", "sleepy.py"],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            listed = _docker("ps", "-q", "--filter", "label=runplz.app=e2e-sleepy").stdout.split()
            if listed:
                break
            assert driver.poll() is None, driver.stdout.read()
            time.sleep(0.3)
        else:
            pytest.fail("the container never started")
        time.sleep(1)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130
    finally:
        if driver.poll() is None:
            driver.kill()
    assert _docker("ps", "-aq", "--filter", "label=runplz.app=e2e-sleepy").stdout.split() == []


def test_cli_docker_run_end_to_end(repo, cache, tmp_path, docker_engine):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    result = subprocess.run(
        [sys.executable, "-m", "runplz", "local", "--outputs-dir", str(tmp_path / "o"), "job.py", "--steps", "7"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 2, result.stderr  # three functions, no entrypoint
    assert "no @app.local_entrypoint()" in result.stderr
    single = repo / "single.py"
    single.write_text(
        "import os\nfrom runplz import App, Image\napp = App('e2e-single')\n"
        "@app.function(image=Image.from_registry('python:3.11-slim'))\n"
        "def hello(name: str = 'world') -> str:\n"
        "    open(os.path.join(os.environ['RUNPLZ_OUT'], 'hi.txt'), 'w').write(name)\n"
        "    return f'hello {name}'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "runplz", "local", "--outputs-dir", str(tmp_path / "o"), "single.py", "--name=docker"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == "hello docker"
    assert (tmp_path / "o" / "hi.txt").read_text() == "docker"
