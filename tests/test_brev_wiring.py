"""The brev backend as the container wires it: the CLI, app.bind, the state
folder, and one whole run over the local transport (no sshd)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from runplz.adapters.brev_cli import BrevCli
from runplz.adapters.file_ledger import FileLedger
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.cli.main import cli
from runplz.container import default_state_dir, make_container
from runplz.loader import load_app
from runplz.services.brev_backend import BrevBackend
from runplz.testing import FakeBrev, FakeLedger, fake_container
from testsupport.brev_catalog import CATALOG

from .brev_stubs import StubRuns
from .jobs import chdir, make_repo

TWO = '''
import os
from runplz import App, BrevConfig, Image
app = App("two", brev_config=BrevConfig(mode="vm", use_docker=False, ssh_ready_wait_seconds=60))
image = Image.from_registry("python:3.11-slim")

@app.function(image=image, min_cpu=2)
def prep(n: int = 1) -> int:
    open(os.path.join(os.environ["RUNPLZ_OUT"], "prep.txt"), "w").write(str(n))
    return n + 1

@app.function(image=image, gpu="A10G")
def train(n: int = 1) -> int:
    return n * 10

@app.local_entrypoint()
def main(n: int = 1):
    print("result", train.remote(n=prep.remote(n=n)))
'''


def test_state_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNPLZ_STATE_DIR", str(tmp_path / "state"))
    assert default_state_dir() == str(tmp_path / "state")
    monkeypatch.delenv("RUNPLZ_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == str(tmp_path / "xdg" / "runplz")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == str(tmp_path / "home" / ".local" / "state" / "runplz")


def test_the_container_wires_both_brev_ports_to_one_cli_and_a_file_ledger(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNPLZ_STATE_DIR", str(tmp_path / "state"))
    container = make_container(str(tmp_path / "cache"))
    assert isinstance(container.brev_cli(), BrevCli)
    assert container.brev_catalog() is container.brev_cli() is container.brev_instances()
    ledger = container.box_ledger()
    assert isinstance(ledger, FileLedger)
    ledger.record("runplz-x", "brev")
    assert (tmp_path / "state" / "boxes" / "runplz-x.json").exists()
    fake = FakeBrev(CATALOG)
    container.brev_instances.override(fake)  # each port can be overridden alone
    assert container.brev_instances() is fake and isinstance(container.brev_catalog(), BrevCli)


def _stubbed(tmp_path, brev: FakeBrev):
    container = fake_container(str(tmp_path / "cache"), brev=brev, box_ledger=FakeLedger())
    runs = StubRuns(brev, lambda call, box: (call.kwargs.get("n", 1) + 1) if call.spec.name == "prep"
                    else call.kwargs.get("n", 1) * 10)
    container.remote_run_path.override(providers.Callable(runs.paths))
    container.ssh_transport.override(providers.Callable(runs.transports))
    return container, runs


def test_cli_named_box_serves_every_call_and_is_stopped_when_the_entrypoint_ends(tmp_path):
    brev = FakeBrev(CATALOG)
    brev.create("my-box", ["g5.xlarge"])
    container, runs = _stubbed(tmp_path, brev)
    make_repo(tmp_path, TWO)
    with chdir(tmp_path):
        result = CliRunner().invoke(cli, ["brev", "--instance", "my-box", "job.py", "--n", "4"], obj=container)
    assert result.exit_code == 0, result.output
    assert "result 50" in result.stdout
    assert [(box, mode, name) for box, mode, name in runs.runs] == [("my-box", "native", "prep"), ("my-box", "native", "train")]
    assert brev.boxes["my-box"].status == "STOPPED"
    assert [verb for verb, _ in brev.calls].count("stop") == 1


def test_cli_typo_guard_is_one_line_and_exit_2(tmp_path):
    brev = FakeBrev(CATALOG)
    container, runs = _stubbed(tmp_path, brev)
    make_repo(tmp_path, TWO)
    with chdir(tmp_path):
        result = CliRunner().invoke(cli, ["brev", "--instance", "my-bx", "job.py"], obj=container)
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("runplz: error")]
    assert "no Brev instance named my-bx" in line and "auto_create_instances=True" in line
    assert runs.runs == [] and "create" not in [verb for verb, _ in brev.calls]


def test_cli_ephemeral_boxes_one_per_call(tmp_path):
    brev = FakeBrev(CATALOG)
    container, runs = _stubbed(tmp_path, brev)
    make_repo(tmp_path, TWO)
    with chdir(tmp_path):
        result = CliRunner().invoke(cli, ["brev", "job.py"], obj=container)
    assert result.exit_code == 0, result.output
    boxes = [box for box, _, _ in runs.runs]
    assert len(set(boxes)) == 2 and all(box.startswith("runplz-two-") for box in boxes)
    assert brev.boxes == {}
    created = [detail.types[0] for verb, detail in brev.calls if verb == "create"]
    assert created == ["cpu-2x8-nostop", "g5.xlarge"]  # each call sized to its function


def test_bind_makes_a_brev_backend_and_a_rebind_releases_the_named_box(tmp_path):
    brev = FakeBrev(CATALOG)
    brev.create("my-box", ["g5.xlarge"])
    container, runs = _stubbed(tmp_path, brev)
    module, app = load_app(str(make_repo(tmp_path, TWO)))
    app.bind("brev", instance="my-box", outputs_dir=str(tmp_path / "out"), container=container)
    assert isinstance(app._backend, BrevBackend)
    assert module.prep.remote(n=1) == 2
    app.bind("brev", outputs_dir=str(tmp_path / "out"), container=container)
    assert brev.boxes["my-box"].status == "STOPPED"


@pytest.mark.parametrize("mode", ["vm-native", "container"])
def test_a_whole_ephemeral_run_over_the_local_transport(tmp_path, mode):
    brev = FakeBrev(CATALOG)
    ledger = FakeLedger()
    container = make_container(str(tmp_path / "cache"), state_dir=str(tmp_path / "state"))
    container.brev_catalog.override(brev)
    container.brev_instances.override(brev)
    container.box_ledger.override(ledger)
    container.ssh_transport.override(providers.Callable(
        lambda target: LocalTransport(SubprocessRunner(), str(tmp_path / "boxes" / target.host), name=target.host)
    ))
    source = TWO if mode == "vm-native" else TWO.replace('mode="vm", use_docker=False, ', "").replace(
        'Image.from_registry("python:3.11-slim")',
        'Image.from_registry("python:3.11-slim").run_commands("echo made > INLINE")',
    ).replace("INLINE", str(tmp_path / "inline.txt"))
    module, app = load_app(str(make_repo(tmp_path / "repo", source)))
    app.bind("brev", outputs_dir=str(tmp_path / "out"), container=container)
    assert module.prep.remote(n=6) == 7
    assert (tmp_path / "out" / "prep.txt").read_text() == "6"
    assert brev.boxes == {} and ledger.records() == ()
    (create,) = [detail for verb, detail in brev.calls if verb == "create"]
    assert create.mode == ("vm" if mode == "vm-native" else "container")
    if mode == "container":
        assert (tmp_path / "inline.txt").read_text() == "made\n"
