"""What the seed promised its users, kept: exception classes, defaults, small
API shapes, and the CLI's hint for runplz's own options written after SCRIPT.

The real-job cases run through the CLI on native runs and through the public
API (`app.bind('local', native=True)`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import runplz
from runplz import App, Image, RemoteError, RunTimeout
from runplz.domain.errors import ConfigError, UsageError
from runplz.domain.limits import modal_timeout, run_limit

from .jobs import make_repo

IMAGE = Image.from_registry("python:3.11-slim")


def job():
    return 1


# --- exceptions users catch --------------------------------------------------


def test_remote_failures_and_timeouts_are_runtime_errors():
    assert issubclass(RemoteError, RuntimeError) and issubclass(RemoteError, runplz.RunplzError)
    assert issubclass(RunTimeout, RuntimeError) and issubclass(RunTimeout, runplz.RunplzError)


def test_remote_without_a_backend_is_a_runtime_error():
    app = App("nobackend")

    @app.function(image=IMAGE)
    def work():
        return 1

    with pytest.raises(RuntimeError, match=r"work.remote\(\) has no backend"):
        work.remote()
    with pytest.raises(UsageError):  # still one readable line from the CLI
        work.remote()


def test_calling_a_function_directly_is_both_type_and_runtime_error():
    app = App("direct")

    @app.function(image=IMAGE)
    def work():
        return 1

    for kind in (TypeError, RuntimeError, UsageError):
        with pytest.raises(kind, match=r"call work.remote\(...\)"):
            work()
    assert work.local() == 1


@pytest.mark.parametrize("image", [None, "python:3.11-slim", 3])
def test_a_missing_image_is_a_type_error(image):
    app = App("noimage")
    with pytest.raises(TypeError, match="image="):
        app.function(image=image)(job)
    with pytest.raises(ConfigError):  # and still the ValueError configs raise
        app.function(image=image)(job)


def test_decorator_without_parentheses_is_a_type_error():
    app = App("noparens")
    with pytest.raises(TypeError, match="parentheses"):
        app.function(job)


# --- small API shapes ---------------------------------------------------------


def test_bind_returns_the_app_so_calls_chain(tmp_path):
    app = App("chain")
    assert app.bind("local", native=True, outputs_dir=str(tmp_path / "out")) is app


def test_functions_alias_is_read_only():
    app = App("alias")

    @app.function(image=IMAGE)
    def work():
        return 1

    assert app.functions == app.registered_functions == {"work": work}
    with pytest.raises(TypeError):
        app.functions["other"] = work  # type: ignore[index]


def test_env_numbers_and_bools_become_strings_as_in_the_seed():
    app = App("envs")

    @app.function(image=IMAGE, env={"SEED": 7, "FLAG": True, "RATE": 0.5, "NAME": "x"})
    def work():
        return 1

    assert dict(work.spec.env) == {"SEED": "7", "FLAG": "True", "RATE": "0.5", "NAME": "x"}
    for bad in (None, b"7", [1], {"a": 1}):
        with pytest.raises(ConfigError, match=r"env"):
            app.function(image=IMAGE, env={"X": bad})(job)


def test_empty_dsl_ops_are_no_ops():
    generated: list[str] = []
    image = IMAGE.pip_install(*generated).apt_install().run_commands().pip_install(index_url="https://x/simple")
    assert image == IMAGE and image.ops == ()
    with pytest.raises(ConfigError, match="Dockerfile"):
        Image.from_dockerfile("Dockerfile").apt_install()


def test_image_op_is_exported_and_reads_like_the_seed():
    image = (
        IMAGE.apt_install("git")
        .pip_install("numpy", index_url="https://x/simple")
        .pip_install_local_dir("lib", editable=False)
        .run_commands("echo hi")
    )
    assert all(isinstance(op, runplz.ImageOp) for op in image.ops)
    assert [(op.kind, op.args, op.kwargs_dict()) for op in image.ops] == [
        ("apt_install", ("git",), {}),
        ("pip_install", ("numpy",), {"index_url": "https://x/simple"}),
        ("pip_install_local_dir", (), {"path": "lib", "editable": "0"}),
        ("run", ("echo hi",), {}),
    ]
    assert "ImageOp" in runplz.__all__


# --- timeout: Modal's knob in the seed ----------------------------------------


def test_unset_timeout_caps_nothing_outside_modal():
    app = App("limits")

    @app.function(image=IMAGE)
    def unset():
        return 1

    @app.function(image=IMAGE, timeout=90)
    def explicit():
        return 1

    assert unset.spec.timeout is None
    assert run_limit(unset.spec.timeout) is None
    assert run_limit(unset.spec.timeout, 30).seconds == 30
    assert run_limit(explicit.spec.timeout).seconds == 90
    assert run_limit(explicit.spec.timeout, 30).reason == "max_runtime_seconds=30"
    assert run_limit(explicit.spec.timeout, 300).reason == "its timeout of 90s"
    assert modal_timeout(unset.spec.timeout) == 3600
    assert modal_timeout(explicit.spec.timeout) == 90


# --- real jobs: through the CLI and the public API ------------------------------

JOB = '''
import json, os
from runplz import App, Image, LocalConfig

app = App("promises", local_config=LocalConfig(use_docker=False))
image = Image.from_registry("python:3.11-slim").pip_install(*[]).apt_install().run_commands()


@app.function(image=image, env={"SEED": 7, "FLAG": True})
def probe(fail: bool = False):
    if fail:
        raise ValueError("boom")
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
        guard = [part.decode() for part in handle.read().split(b"\\0") if part]
    return {"env": [os.environ["SEED"], os.environ["FLAG"]], "guard": guard}


@app.function(image=image, timeout=2)
def slow():
    import time
    time.sleep(120)


@app.local_entrypoint()
def main(which: str = "probe", fail: bool = False):
    if which == "slow":
        slow.remote()
    else:
        print("RESULT " + json.dumps(probe.remote(fail=fail)))
'''


def _limit_of(guard: list[str]) -> str:
    """The LIMIT argument of `agent guard LIMIT ARGV...` in the job's parent's argv."""
    return guard[guard.index("guard") + 1]


def _cli(repo, cache, *args):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "runplz", *args], cwd=repo, capture_output=True, text=True, timeout=600, env=env
    )


@pytest.mark.real
def test_cli_native_runs_keep_the_seed_promises(tmp_path):
    repo = make_repo(tmp_path / "repo", JOB).parent
    cache = tmp_path / "cache"

    ok = _cli(repo, cache, "local", "--native", "job.py")
    assert ok.returncode == 0, ok.stderr
    line = next(text for text in ok.stdout.splitlines() if text.startswith("RESULT "))
    value = json.loads(line[len("RESULT "):])
    assert value["env"] == ["7", "True"]
    assert _limit_of(value["guard"]) == "0", value["guard"]  # unset timeout: no cap

    slow = _cli(repo, cache, "local", "--native", "job.py", "--which=slow")
    assert slow.returncode == 1, slow.stderr
    assert "slow ran past its timeout of 2s" in slow.stderr

    failed = _cli(repo, cache, "local", "--native", "job.py", "--fail")
    assert failed.returncode == 1 and "ValueError: boom" in failed.stderr

    hint = _cli(repo, cache, "local", "job.py", "--outputs-dir", "elsewhere")
    assert hint.returncode == 2
    assert hint.stderr.strip().splitlines() == [
        "runplz: error: main has no flag --outputs-dir; runplz's own --outputs-dir goes before SCRIPT: "
        "runplz local --outputs-dir elsewhere job.py"
    ]
    assert not (repo / "elsewhere").exists()


@pytest.mark.real
def test_public_api_native_runs_raise_what_the_seed_raised(tmp_path, monkeypatch):
    from runplz.loader import load_app

    monkeypatch.setenv("RUNPLZ_CACHE_DIR", str(tmp_path / "cache"))
    path = make_repo(tmp_path / "repo", JOB)
    module, app = load_app(str(path))
    assert app.bind("local", native=True, outputs_dir=str(tmp_path / "out")) is app

    value = module.probe.remote()
    assert value["env"] == ["7", "True"] and _limit_of(value["guard"]) == "0"
    with pytest.raises(RuntimeError, match="ValueError: boom") as failed:
        module.probe.remote(fail=True)
    assert isinstance(failed.value, RemoteError) and failed.value.exit_code == 1
    with pytest.raises(RuntimeError, match="ran past its timeout of 2s") as slow:
        module.slow.remote()
    assert isinstance(slow.value, RunTimeout)
    with pytest.raises(TypeError, match="JSON"):
        module.probe.remote(fail={1, 2})
