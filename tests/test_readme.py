"""The README stays true: its examples are the files the tests run."""

from pathlib import Path

from click.testing import CliRunner

from runplz import __version__
from runplz.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_examples_appear_verbatim():
    for name in ("embed.py", "test_hello.py"):
        assert (ROOT / "examples" / name).read_text() in README, name


def test_quick_start_and_test_commands_are_there():
    assert "runplz local --native examples/hello.py --steps=3" in README
    assert "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text().replace("exec bash", "bash")


def test_cli_synopsis_matches_the_commands():
    for command in ("local", "ssh", "brev", "modal"):
        assert f"runplz {command} " in README
        options = [p.opts for p in cli.commands[command].params if p.opts and p.opts[0].startswith("--")]
        for opts in options:
            if opts[0] != "--help":
                assert opts[0] in README, (command, opts)


def test_version_is_in_the_changelog_and_readme():
    assert f"## {__version__}" in (ROOT / "CHANGELOG.md").read_text()
    assert f"Status ({__version__})" in README
    assert CliRunner().invoke(cli, ["--version"]).output.strip().endswith(__version__)


def test_embedding_example_runs(tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "examples/embed.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "RUNPLZ_CACHE_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "'steps': 1" in result.stdout
    assert "ran:" in result.stdout and "runplz_boot.py" in result.stdout
