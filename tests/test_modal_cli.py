"""`runplz modal` at the CLI: one line and the right exit code for every mistake."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from runplz.cli.main import cli
from runplz.testing import FakeModal, ModalFaults, fake_container

from .jobs import BASIC, chdir, make_repo
from .test_cli import one_line_error

SHAPED = '''
from runplz import App, Image
app = App("shaped")

@app.function(image=Image.from_registry("python:3.11-slim"), {decoration})
def main() -> int:
    return 1
'''


def run_cli(tmp_path, *args, platform=None):
    container = fake_container(str(tmp_path / "cache"), modal_platform=platform or FakeModal())
    with chdir(tmp_path):
        return CliRunner().invoke(cli, ["modal", *args], obj=container)


def test_a_run_prints_its_value_and_brings_outputs_back(tmp_path):
    make_repo(tmp_path, BASIC)
    result = run_cli(tmp_path, "job.py", "--steps=2")
    assert result.exit_code == 0, result.output
    assert '"steps": 2' in result.output
    assert (tmp_path / "out" / "result.txt").read_text() == "x:2"


@pytest.mark.parametrize(
    "decoration, needle",
    [
        ("gpu='T4-16GB'", "did you mean"),
        ("gpu='BOGUS', num_gpus=2", "A100-80GB"),
        ("gpu='A10', num_gpus=5", "at most 4"),
        ("min_disk=50", "Volume"),
        ("timeout=100000", "86400"),
    ],
)
def test_modal_mistakes_are_one_line_and_exit_2(tmp_path, decoration, needle):
    make_repo(tmp_path, SHAPED.format(decoration=decoration))
    result = run_cli(tmp_path, "job.py")
    assert result.exit_code == 2, result.output
    assert needle in one_line_error(result)


@pytest.mark.parametrize(
    "faults, needle", [(ModalFaults(unreachable=True), "could not be reached"), (ModalFaults(unauthenticated=True), "modal token new")]
)
def test_platform_failures_are_one_line_and_exit_1(tmp_path, faults, needle):
    make_repo(tmp_path, BASIC)
    result = run_cli(tmp_path, "job.py", platform=FakeModal(faults))
    assert result.exit_code == 1, result.output
    assert needle in one_line_error(result)


HIDE_MODAL = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'modal':
            raise ModuleNotFoundError("No module named 'modal'", name='modal')
sys.meta_path.insert(0, Hide())
from runplz.cli import main
sys.argv = ['runplz', 'modal', 'job.py']
main()
"""


def test_without_the_modal_package_one_line_names_the_extra(tmp_path):
    make_repo(tmp_path, BASIC)
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", HIDE_MODAL], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("runplz: error")]
    assert len(lines) == 1 and "pip install 'runplz[modal]'" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_detach_hands_the_same_command_to_the_launcher(tmp_path):
    from runplz.ports.launcher import Detached
    from runplz.testing import FakeLauncher

    make_repo(tmp_path, BASIC)
    launcher = FakeLauncher()
    container = fake_container(str(tmp_path / "cache"), launcher=launcher)
    with chdir(tmp_path):
        done = CliRunner().invoke(cli, ["modal", "--detach", "job.py", "--detach-me=1"], obj=container)
    assert done.exit_code == 0, done.output
    assert launcher.started == [(("modal", "job.py", "--detach-me=1"), ".")]
    assert "goes on in the background" in done.stderr and "runplz logs -f 20260101-000000-fa4e00" in done.stderr
    launcher.answer = Detached(None, 2, "", "runplz: error: main has no flag --nope\n")
    with chdir(tmp_path):
        failed = CliRunner().invoke(cli, ["modal", "--detach", "job.py", "--nope"], obj=container)
    assert failed.exit_code == 2 and "no flag --nope" in failed.stderr
