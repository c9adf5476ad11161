"""The help fast path prints exactly what click would, and only where it is right."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import runplz.cli as console
from runplz.cli import help_gen, help_text
from runplz.cli.main import run as click_run

PATHS = sorted(help_text.HELP)


def _fast(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["runplz", *args])
    with pytest.raises(SystemExit) as exited:
        console.entry()
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def _click(capsys, args: list[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        click_run(args)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_the_ready_texts_are_clicks_own_rendering():
    assert help_gen.render_all() == help_text.HELP, (
        "help_text.py is stale: run `python -m runplz.cli.help_gen` after changing the CLI's help"
    )
    assert help_gen.main(["--check"]) == 0


def test_every_command_path_is_ready():
    import click

    from runplz.cli.main import cli

    def walk(command, path):
        yield path
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, path + (name,))

    assert set(walk(cli, ())) == set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "runplz")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_the_fast_path_prints_what_click_prints(monkeypatch, capsys, path, flag):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("_RUNPLZ_COMPLETE", raising=False)
    args = [*path, flag]
    assert console._ready_help(args) is not None  # this one is answered without click
    assert _fast(monkeypatch, capsys, args) == _click(capsys, args)


@pytest.mark.parametrize("args", [[], ["plan"]])
def test_a_group_given_nothing_shows_its_help_on_stderr_as_click_does(monkeypatch, capsys, args):
    monkeypatch.setenv("COLUMNS", "80")
    assert console._ready_help(args) is not None
    code, out, err = _fast(monkeypatch, capsys, args)
    assert (code, out, err) == _click(capsys, args)
    assert code == 2 and out == "" and err.startswith("Usage: runplz")


@pytest.mark.parametrize("args", [
    ["ssh"],  # a missing option is an error, not help
    ["--help", "ssh"],
    ["ssh", "--host", "h", "--help"],
    ["-q", "--help"],
    ["nosuch", "--help"],
    ["--version"],
    ["ssh", "job.py", "--help"],  # the script's own --help
])
def test_anything_but_plain_help_goes_to_click(monkeypatch, args):
    monkeypatch.setenv("COLUMNS", "120")
    assert console._ready_help(args) is None


def test_a_narrow_terminal_or_shell_completion_goes_to_click(monkeypatch):
    monkeypatch.setenv("COLUMNS", "79")  # click wraps narrower there
    assert console._ready_help(["--help"]) is None
    monkeypatch.setenv("COLUMNS", "80")
    assert console._ready_help(["--help"]) is not None
    monkeypatch.setenv("_RUNPLZ_COMPLETE", "bash_complete")
    assert console._ready_help(["--help"]) is None


def _console(args: list[str], columns: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "_RUNPLZ_COMPLETE")}
    if columns is not None:
        env["COLUMNS"] = columns
    code = "import sys\nsys.argv[0] = 'runplz'\nfrom runplz.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)


def _through_click(args: list[str], columns: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "_RUNPLZ_COMPLETE")}
    if columns is not None:
        env["COLUMNS"] = columns
    code = "import sys\nsys.argv[0] = 'runplz'\nfrom runplz.cli.main import run\nrun()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("columns", [None, "60", "100"])
def test_the_console_entry_answers_as_click_at_any_width(columns):
    """No terminal (a pipe: click assumes 80 columns), a narrow one, a wide one."""
    for args in (["--help"], ["plan", "ssh", "-h"], []):
        fast, slow = _console(args, columns), _through_click(args, columns)
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert "Usage: runplz [OPTIONS] COMMAND [ARGS]..." in _console(["--help"], columns).stdout
