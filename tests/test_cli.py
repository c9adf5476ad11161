"""The CLI: parse, one call, render. Errors are one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from runplz import __version__
from runplz.cli.main import cli
from runplz.testing import fake_container

from .jobs import chdir, make_repo

ENTRY = '''
from runplz import App, Image
app = App("entry")

@app.function(image=Image.from_registry("python:3.11-slim"))
def train(steps: int, log_file: str = "train.log") -> dict:
    return {"steps": steps, "log_file": log_file}

@app.local_entrypoint()
def main(steps: int = 1, log_file: str = "a.log", verbose: bool = False):
    print(json.dumps(train.remote(steps=steps, log_file=log_file)) + f" verbose={verbose}")

import json
'''


@pytest.fixture
def invoke(tmp_path):
    container = fake_container(str(tmp_path / "cache"))

    def go(*args: str):
        with chdir(tmp_path):
            return CliRunner().invoke(cli, list(args), obj=container)

    go.container = container
    return go


def one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("runplz: error")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_implicit_entrypoint_prints_the_return_value(invoke, tmp_path):
    make_repo(tmp_path)
    result = invoke("local", "job.py", "--steps=4", "--label", "a b")
    assert result.exit_code == 0, result.output
    value = json.loads(result.stdout.strip().splitlines()[-1])
    assert value["steps"] == 4 and value["label"] == "a b"
    assert (tmp_path / "out" / "result.txt").read_text() == "a b:4"


def test_local_entrypoint_gets_typed_flags(invoke, tmp_path):
    make_repo(tmp_path, ENTRY)
    result = invoke("local", "job.py", "--steps", "3", "--log_file=x.log", "--verbose")
    assert result.exit_code == 0, result.output
    assert '{"log_file": "x.log", "steps": 3} verbose=True' in result.stdout


def test_no_abbreviation_matching_after_the_script(invoke, tmp_path):
    make_repo(tmp_path, ENTRY)
    result = invoke("local", "job.py", "--log=debug")
    assert result.exit_code == 2
    assert "--log" in one_line_error(result) and "--log-file" in result.output


def test_runplz_options_after_the_script_belong_to_the_entrypoint(invoke, tmp_path):
    make_repo(tmp_path, ENTRY)
    result = invoke("local", "job.py", "--outputs-dir=elsewhere")
    assert result.exit_code == 2
    assert "no flag --outputs-dir" in one_line_error(result)


def test_outputs_dir_option(invoke, tmp_path):
    make_repo(tmp_path)
    result = invoke("local", "--outputs-dir", "results", "job.py")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / "result.txt").exists()


def test_entrypoint_help_lists_its_flags(invoke, tmp_path):
    make_repo(tmp_path, ENTRY)
    result = invoke("local", "job.py", "--help")
    assert result.exit_code == 0
    for flag in ("--steps INT", "--log-file TEXT", "--verbose/--no-verbose"):
        assert flag in result.output


@pytest.mark.parametrize(
    "args, needle",
    [
        (["local", "--bogus", "job.py"], "--bogus"),
        (["local", "job.py", "--steps=many"], "expects int"),
        (["local", "job.py", "stray"], "unexpected argument"),
        (["local", "missing.py"], "no such script"),
        (["local"], "Missing argument"),
        (["local", "--no-build", "--native", "job.py", "--steps"], "needs a value"),
        (["ssh", "job.py"], "--host"),
        (["ssh", "--host", "bad host", "job.py"], "host"),
        (["ssh", "--host", "box:http", "job.py"], "not a port"),
        (["ssh", "--host", "[-G:]", "job.py"], "brackets are only for IPv6"),
        (["ssh", "--host", "host:22:33", "job.py"], "not a valid IPv6"),
        (["brev", "job.py"], "listed no offers"),
        (["brev", "--instance", "bad name!", "job.py"], "instance"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(invoke, tmp_path, args, needle):
    make_repo(tmp_path, ENTRY)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert needle in one_line_error(result)


@pytest.mark.parametrize(
    "script, needle",
    [
        ("x = (", "SyntaxError"),
        ("from runplz import App\n", "defines no runplz App"),
        ("from runplz import App\na = App('a')\nb = App('b')\n", "2 Apps"),
        ("from runplz import App, BrevConfig\napp = App('a', brev_config=BrevConfig(mode='vm', on_finish='later'))\n",
         "on_finish"),
        ("from runplz import App, Image\napp = App('a')\n@app.function(image=Image.from_registry('p'), min_cpu=0)\ndef f(): pass\n",
         "min_cpu"),
        ("raise RuntimeError('boom at import')\n", "boom at import"),
        ("from runplz import App, Image\napp = App('a')\n", "no @app.local_entrypoint() and 0 functions"),
    ],
)
def test_bad_scripts_are_one_line_and_exit_2(invoke, tmp_path, script, needle):
    make_repo(tmp_path, script)
    result = invoke("local", "job.py")
    assert result.exit_code == 2, result.output
    line = one_line_error(result)
    assert needle in line and "job.py" in line


def test_remote_failure_shows_the_remote_traceback_and_exits_with_its_code(invoke, tmp_path):
    make_repo(tmp_path)
    result = invoke("local", "job.py", "--fail")
    assert result.exit_code == 1
    assert "Traceback" in result.output and "ValueError: bad label 'x'" in result.output
    result = invoke("local", "job.py", "--code=9")
    assert result.exit_code == 9


@pytest.mark.parametrize(
    "host", ["[-G:]", "[-oProxyCommand=touch /tmp/x]:22", "-oProxyCommand=x", "host:22:33", "box:\uff12\uff12"]
)
def test_hostile_hosts_exit_2_in_one_line_and_never_run_ssh(tmp_path, host):
    from runplz.testing import FakeCommandRunner

    runner = FakeCommandRunner({})
    container = fake_container(str(tmp_path / "cache"), command_runner=runner)
    make_repo(tmp_path)
    with chdir(tmp_path):
        result = CliRunner().invoke(cli, ["ssh", "--host", host, "job.py"], obj=container)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("runplz: error: host"), result.stderr
    assert "Traceback" not in result.output
    assert runner.calls == []


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runplz", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_python_dash_m_runplz_works_and_errors_have_no_traceback(tmp_path):
    make_repo(tmp_path, "from runplz import App, SshConfig\napp = App('a', ssh_config=SshConfig(on_finish='stop'))\n")
    assert _cli("--version", cwd=tmp_path).stdout.strip().endswith(__version__)
    result = _cli("local", "job.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "SshConfig.on_finish" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_native_run_through_the_real_cli(tmp_path):
    make_repo(tmp_path)
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "runplz", "local", "--native", "job.py", "--steps=2", "--label=cli"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["label"] == "cli"
    assert "working 2 cli" in result.stdout
