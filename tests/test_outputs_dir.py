"""--outputs-dir / outputs_dir= may not be a folder whose files the outputs could overwrite."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from runplz.cli.main import cli
from runplz.domain.errors import ConfigError, UsageError
from runplz.loader import load_app
from runplz.services.repo import check_outputs_dir
from runplz.testing import FakeCommandRunner, fake_container

from .jobs import chdir, make_repo

# A job whose output is named like its own source file.
CLOBBER = '''
import os
from runplz import App, Image

app = App("clobber")


@app.function(image=Image.from_registry("python:3.11-slim"))
def work() -> str:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "job.py"), "w") as handle:
        handle.write("overwritten")
    return "done"
'''

BACKENDS = {
    "local": ["local"],
    "native": ["local", "--native"],
    "ssh": ["ssh", "--host", "box"],
}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A repo at tmp/home/proj (home is tmp/home), a sibling home-less folder, and a link to the repo."""
    home = tmp_path / "home"
    repo = home / "proj"
    make_repo(repo, CLOBBER)
    (home / "proj-link").symlink_to(repo)
    monkeypatch.setenv("HOME", str(home))
    return repo


def snapshot(root) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(folder, name), root): open(os.path.join(folder, name), "rb").read()
        for folder, _, names in os.walk(root)
        for name in names
    }


REFUSED = [
    (".", "is the repo root"),
    ("./", "is the repo root"),
    ("{repo}", "is the repo root"),
    ("{repo}/sub/..", "is the repo root"),
    ("../proj-link", "is the repo root"),
    ("..", "holds the repo root"),
    ("/", "holds the repo root"),
    ("{home}", "holds the repo root"),
    ("~", "holds the repo root"),
]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("outputs, needle", REFUSED)
def test_cli_refuses_in_one_line_and_touches_nothing(world, tmp_path, backend, outputs, needle):
    runner = FakeCommandRunner({})
    container = fake_container(str(tmp_path / "cache"), command_runner=runner)
    path = outputs.format(repo=world, home=world.parent)
    before = snapshot(tmp_path)
    with chdir(world):
        result = CliRunner().invoke(cli, [*BACKENDS[backend], "--outputs-dir", path, "job.py"], obj=container)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith("runplz: error: outputs_dir (--outputs-dir) ") and needle in line, line
    assert repr(path) in line and "(use a folder such as ./out)" in line
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before
    assert runner.calls == []


def test_home_folder_is_refused_even_outside_the_repo(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    repo = tmp_path / "work" / "proj"
    make_repo(repo, CLOBBER)
    monkeypatch.setenv("HOME", str(home))
    container = fake_container(str(tmp_path / "cache"))
    for path in ("~", str(home), f"{home}/."):
        with chdir(repo):
            result = CliRunner().invoke(cli, ["local", "--outputs-dir", path, "job.py"], obj=container)
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and "is your home folder" in result.stderr, result.stderr
    assert os.listdir(home) == []


@pytest.mark.parametrize("outputs", ["out", "./out", "results/run1", "{repo}/out", "{elsewhere}"])
def test_cli_accepts_subfolders_and_folders_elsewhere(world, tmp_path, outputs):
    container = fake_container(str(tmp_path / "cache"))
    path = outputs.format(repo=world, elsewhere=tmp_path / "elsewhere")
    with chdir(world):
        result = CliRunner().invoke(cli, ["local", "--outputs-dir", path, "job.py"], obj=container)
    assert result.exit_code == 0, result.output
    assert (world / "job.py").read_text() != "overwritten"
    written = world / path if not os.path.isabs(path) else tmp_path / path
    assert (written / "job.py").read_text() == "overwritten"


@pytest.mark.parametrize("native", [None, True], ids=["docker", "native"])
def test_app_bind_refuses_the_repo_root_and_remote_never_runs(world, tmp_path, native):
    module, app = load_app(str(world / "job.py"))
    container = fake_container(str(tmp_path / "cache"))
    source = (world / "job.py").read_text()
    with pytest.raises(ConfigError, match="is the repo root"):
        app.bind("local", outputs_dir=str(world), native=native, container=container)
    with pytest.raises(ConfigError, match="is the repo root"):
        app.bind("local", outputs_dir=world, native=native, container=container)
    with pytest.raises(UsageError, match="has no backend"):
        module.work.remote()
    assert (world / "job.py").read_text() == source


def test_app_bind_refuses_hosts_folders_for_ssh_too(world, tmp_path):
    _, app = load_app(str(world / "job.py"))
    runner = FakeCommandRunner({})
    container = fake_container(str(tmp_path / "cache"), command_runner=runner)
    with pytest.raises(ConfigError, match="holds the repo root"):
        app.bind("ssh", host="box", outputs_dir=str(world.parent), container=container)
    assert runner.calls == []


@pytest.mark.parametrize("native", [None, True], ids=["docker", "native"])
def test_app_bind_with_a_subfolder_runs_and_keeps_the_source(world, tmp_path, native):
    module, app = load_app(str(world / "job.py"))
    container = fake_container(str(tmp_path / "cache"))
    app.bind("local", outputs_dir=str(world / "out"), native=native, container=container)
    assert module.work.remote() == "done"
    assert (world / "out" / "job.py").read_text() == "overwritten"
    assert (world / "job.py").read_text() != "overwritten"


def test_check_outputs_dir_without_a_script_checks_only_home(tmp_path):
    check_outputs_dir(str(tmp_path), None, home=str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="is your home folder"):
        check_outputs_dir(str(tmp_path / "home" / "."), None, home=str(tmp_path / "home"))


def test_the_repos_git_and_folders_of_keys_are_refused(tmp_path):
    import pytest

    from runplz.domain.errors import ConfigError
    from runplz.services.repo import check_outputs_dir

    repo = tmp_path / "repo"
    (repo / ".git" / "hooks").mkdir(parents=True)
    script = repo / "job.py"
    script.write_text("")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"inside the repo's \.git"):
        check_outputs_dir(str(repo / ".git" / "hooks"), str(script), home=str(home))
    with pytest.raises(ConfigError, match=r"inside ~/\.ssh"):
        check_outputs_dir(str(home / ".ssh" / "out"), str(script), home=str(home))
    check_outputs_dir(str(repo / "out"), str(script), home=str(home))
