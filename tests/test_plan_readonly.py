"""`runplz plan` only reads: every Brev call is a read, no command runs, no file is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runplz.adapters.fake_brev import FakeBox
from runplz.testing import FakeBrev, FakeCommandRunner, fake_container
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator

from .test_plan import CASES
from .test_plan_support import TWO, job_repo, run_plan

READS = {"search", "search --help", "ls"}
ROOT = Path(__file__).resolve().parents[1]


class Refuses:
    """Any call on it fails the test: plan must not reach this adapter."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.touched: list[str] = []

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        self.touched.append(name)
        raise AssertionError(f"runplz plan called {self.what}.{name}")


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = os.path.join(folder, name)
                info = os.lstat(path)
                found[path] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_only_reads_through_the_fakes(tmp_path, monkeypatch, case):
    config, timeout, args = CASES[case]
    repo = tmp_path / "repo"
    job_repo(repo, config, timeout)
    cache, state = tmp_path / "cache", tmp_path / "state"
    cache.mkdir()
    state.mkdir()
    monkeypatch.setenv("RUNPLZ_STATE_DIR", str(state))
    brev = FakeBrev(CATALOG, boxes={"mybox": FakeBox("mybox", "g5.xlarge", True, status="RUNNING", build_status="COMPLETED")})
    runner = FakeCommandRunner()  # knows no program: any command fails and is recorded
    refusing = {name: Refuses(name) for name in ("container_engine", "python_env_builder", "modal_platform", "box_ledger", "ssh_transport")}
    container = fake_container(str(cache), brev=brev, command_runner=runner, **refusing)
    before = snapshot(repo, cache, state)
    result = run_plan(container, *args, "job.py", cwd=repo)
    assert result.exit_code == 0, result.output
    assert snapshot(repo, cache, state) == before
    assert runner.calls == []
    assert all(not fake.touched for fake in refusing.values())
    verbs = [verb for verb, _ in brev.calls]
    assert set(verbs) <= READS, verbs
    if case.startswith("brev"):
        assert "search" in verbs or "ls" in verbs
    assert brev.boxes["mybox"].status == "RUNNING" and list(brev.boxes) == ["mybox"]


def _emulated(tmp_path: Path, script: str | None = None, config: str = "") -> tuple[BrevEmulator, Path, dict]:
    emu = BrevEmulator.make(tmp_path / "brev", CATALOG)
    # a named box already there, written as the emulator keeps it (no sshd: it is never reached)
    state = {"instances": {"mybox": {
        "id": "abc123def", "instance_type": "g5.xlarge", "gpu": "A10G", "stoppable": True, "status": "RUNNING",
        "build_status": "COMPLETED", "polls_left": 0, "fails": False, "mode": "vm", "container_image": None,
        "min_disk": None, "marker": "0" * 32, "port": None,
    }}}
    (tmp_path / "brev" / "state.json").write_text(json.dumps(state))
    repo = tmp_path / "repo"
    job_repo(repo, config, script=script)
    env = {
        **os.environ,
        "PATH": emu.bin_dir + os.pathsep + os.environ["PATH"],
        "RUNPLZ_STATE_DIR": str(tmp_path / "state"),
        "RUNPLZ_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT) + os.pathsep + str(ROOT / "src"),
    }
    return emu, repo, env


_MAIN = (
    "import sys\nfrom runplz.cli.main import cli\nfrom runplz.cli.plan import plan\n"
    "cli.add_command(plan)\ncli.main(sys.argv[1:])\n"
)


@pytest.mark.parametrize(
    "config, args",
    [
        ("", ["brev", "job.py"]),
        ('brev_config=BrevConfig(mode="vm")', ["brev", "--json", "job.py", "--steps", "2"]),
        ('brev_config=BrevConfig(instance_type="g5.2xlarge")', ["brev", "job.py"]),
        ('brev_config=BrevConfig(mode="vm", use_docker=False)', ["brev", "--instance", "mybox", "job.py"]),
    ],
    ids=["ephemeral", "vm-json", "pinned", "named"],
)
def test_every_brev_argv_the_emulator_logs_is_a_read(tmp_path, config, args):
    """The real `brev` adapter over the emulator (a real executable on PATH, no sshd needed)."""
    emu, repo, env = _emulated(tmp_path, config=config)
    watched = (repo, tmp_path / "cache", tmp_path / "state")
    before = snapshot(*watched)
    state_before = (tmp_path / "brev" / "state.json").read_text()
    proc = subprocess.run([sys.executable, "-c", _MAIN, "plan", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    argvs = emu.argvs()
    assert argvs, "plan made no brev call at all"
    for argv in argvs:
        assert argv[0] in ("search", "ls"), argv
        assert "create" not in argv and "start" not in argv and "refresh" not in argv
    assert snapshot(*watched) == before, "plan wrote a file"
    assert not (tmp_path / "cache").exists() and not (tmp_path / "state").exists()
    assert json.loads((tmp_path / "brev" / "state.json").read_text())["instances"].keys() == json.loads(state_before)["instances"].keys()
    if args[1] == "--instance":
        assert ["ls", "--json"] in argvs
    else:
        assert any(argv[0] == "search" and "--help" not in argv for argv in argvs)


def test_a_two_function_app_over_the_emulator_reads_only(tmp_path):
    emu, repo, env = _emulated(tmp_path, script=TWO)
    proc = subprocess.run([sys.executable, "-c", _MAIN, "plan", "brev", "job.py", "--n", "3"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "function prepare" in proc.stdout and "function train" in proc.stdout
    assert {argv[0] for argv in emu.argvs()} <= {"search", "ls"}


@pytest.mark.parametrize("args", [
    ["slurm", "--host", "runplz-slurm", "job.py"],
    ["slurm", "--json", "job.py", "--steps", "2"],
], ids=["login-node", "this-machine-json"])
def test_plan_slurm_runs_nothing_at_all(tmp_path, args):
    """Every program a slurm run would use is a tripwire on PATH: plan calls none of them."""
    tripwires = tmp_path / "bin"
    tripwires.mkdir()
    calls = tmp_path / "calls.log"
    for program in ("ssh", "rsync", "sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo", "srun", "docker"):
        path = tripwires / program
        path.write_text(f"#!/bin/sh\necho {program} \"$@\" >> {calls}\nexit 1\n")
        path.chmod(0o755)
    repo = tmp_path / "repo"
    job_repo(repo, 'slurm_config=__import__("runplz").SlurmConfig(account="ml")')
    env = {
        **os.environ,
        "PATH": str(tripwires) + os.pathsep + os.environ["PATH"],
        "RUNPLZ_STATE_DIR": str(tmp_path / "state"),
        "RUNPLZ_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT) + os.pathsep + str(ROOT / "src"),
    }
    before = snapshot(repo)
    proc = subprocess.run([sys.executable, "-c", _MAIN, "plan", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --account=ml" in proc.stdout
    assert not calls.exists(), calls.read_text()
    assert snapshot(repo) == before, "plan wrote a file"
    assert not (tmp_path / "cache").exists() and not (tmp_path / "state").exists()
