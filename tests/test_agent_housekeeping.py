"""The agent's housekeeping: pruning old run folders, and the upload basis mirror."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from runplz.runtime.basis import mirror

from .agentkit import boot, box, job, wait_for  # noqa: F401

HOUR, DAY = 3600.0, 86400.0


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def _run(runs: Path, name: str, *, supervisor: int | None = None, ended: float | None = None,
         fetched: bool = False, age: float | None = None) -> Path:
    """A run folder as the agent leaves it; times are seconds ago."""
    ctl = runs / name / "ctl"
    ctl.mkdir(parents=True)
    (runs / name / "out").mkdir()
    (runs / name / "repo").mkdir()
    (runs / name / "repo" / "job.py").write_text("pass\n")
    (ctl / "job.log").write_bytes(b"x" * 5000)
    if not fetched:
        (runs / name / "out" / "data.bin").write_bytes(b"x" * 5000)
    if supervisor is not None:
        (ctl / "supervisor.pid").write_text(str(supervisor))
    if ended is not None:
        (ctl / "exit_code").write_text("0")
        os.utime(ctl / "exit_code", (time.time() - ended,) * 2)
    if fetched:
        (ctl / "fetched").touch()
    if age is not None:
        os.utime(runs / name, (time.time() - age,) * 2)
    return runs / name


@pytest.fixture
def runs(box):
    path = box.home / "runs"
    path.mkdir(parents=True)
    dead = _dead_pid()
    supervisor = subprocess.Popen(["sleep", "300"])
    _run(path, "running", supervisor=supervisor.pid, age=30 * DAY)
    for i in range(12):
        _run(path, f"fetched-{i:02d}", supervisor=dead, ended=HOUR + i * 60, fetched=True)
    _run(path, "unfetched-3d", supervisor=dead, ended=3 * DAY)
    _run(path, "unfetched-20d", supervisor=dead, ended=20 * DAY)
    _run(path, "unstarted-2d", age=2 * DAY)
    _run(path, "unstarted-1h", age=HOUR)
    (path / "fetched-11" / "ctl" / "locked").mkdir()
    (path / "fetched-11" / "ctl" / "locked" / "f").write_text("x")
    (path / "fetched-11" / "ctl" / "locked").chmod(0o500)
    (path / "stray-file").write_text("not a run")
    yield path
    supervisor.kill()
    supervisor.wait()


def test_prune_applies_the_rule(box, runs):
    done = box.agent("prune", "runs")
    assert done.returncode == 0, done.stderr
    left = sorted(p.name for p in runs.iterdir())
    kept = [".prune.lock", "running", "stray-file", "unfetched-3d", "unstarted-1h"]
    assert left == sorted(kept + [f"fetched-{i:02d}" for i in range(10)])
    assert done.stdout.startswith("pruned 4 run folders, ")
    assert int(done.stdout.split(", ")[1].split()[0]) >= 4 * 5000


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
def test_finished_runs_lose_their_code_copy_and_keep_what_is_left(box, runs):
    box.agent("prune", "runs")
    assert not (runs / "fetched-00" / "repo").exists() and (runs / "fetched-00" / "ctl" / "job.log").exists()
    assert not (runs / "unfetched-3d" / "repo").exists()
    assert (runs / "unfetched-3d" / "out" / "data.bin").exists(), "outputs that never came home stay"
    assert (runs / "running" / "repo" / "job.py").exists()


def test_prune_leaves_other_users_folders_alone(box, runs):
    os.chown(runs / "unstarted-2d", 12345, 12345)
    box.agent("prune", "runs")
    assert (runs / "unstarted-2d").exists()


def test_a_run_whose_supervisor_died_is_recorded_then_counts_as_finished(box, runs):
    orphan = _run(runs, "orphan", supervisor=_dead_pid())
    box.agent("prune", "runs")
    assert (orphan / "ctl" / "exit_code").read_text() == "255"
    assert "died while the job ran" in (orphan / "ctl" / "note").read_text()
    assert not (runs / "fetched-09").exists(), "the orphan is now among the 10 newest"


def test_start_prunes_after_starting(box, runs):
    started = box.start(job("pass"), name="new")
    assert started.returncode == 0, started.stderr
    assert wait_for(lambda: not (runs / "unstarted-2d").exists(), 10), "start did not prune"
    assert (runs / "new" / "ctl" / "supervisor.pid").exists()


def _tree(root: Path) -> dict:
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir",)
        else:
            found[rel] = ("file", path.read_bytes(), path.stat().st_mtime_ns)
    return found


def _source(root: Path) -> Path:
    (root / "pkg" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("aaa")
    (root / "pkg" / "b.py").write_text("b = 1")
    (root / "pkg" / "deep" / "c.bin").write_bytes(b"\0" * 3000)
    (root / "gone.txt").write_text("bye")
    (root / "was-dir").mkdir()
    (root / "was-dir" / "x").write_text("x")
    os.symlink("a.txt", root / "to-file")
    os.symlink("pkg", root / "to-dir")
    os.symlink("/nowhere/at/all", root / "dangling")
    return root


def test_mirror_copies_links_as_links_and_then_only_what_changed(tmp_path):
    source, dest = _source(tmp_path / "src"), tmp_path / "repos" / "k"
    assert mirror(str(source), str(dest))
    assert _tree(dest) == _tree(source)
    assert (tmp_path / "repos" / "k.lock").exists()
    kept = (dest / "pkg" / "b.py").stat().st_ino

    (source / "a.txt").write_text("AAA")
    os.utime(source / "a.txt", ns=(1, 1))
    (source / "gone.txt").unlink()
    (source / "pkg" / "deep" / "c.bin").unlink()
    (source / "pkg" / "deep").rmdir()
    (source / "was-dir" / "x").unlink()
    (source / "was-dir").rmdir()
    (source / "was-dir").write_text("now a file")
    (source / "to-file").unlink()
    os.symlink("pkg/b.py", source / "to-file")
    (source / "new").mkdir()
    (dest / "stray").write_text("only in the basis")
    assert mirror(str(source), str(dest))
    assert _tree(dest) == _tree(source)
    assert (dest / "pkg" / "b.py").stat().st_ino == kept, "an unchanged file is not copied again"


def test_start_refreshes_the_basis_and_survives_a_failing_one(box, tmp_path):
    run = box.run()
    _source(run / "repo")
    started = box.start(job("pass"), basis=["runs/r1/repo", "repos/k"])
    assert started.returncode == 0, started.stderr
    assert wait_for(lambda: (box.home / "repos" / "k").exists() and _tree(box.home / "repos" / "k") == _tree(run / "repo"), 10)
    (box.home / "blocked").write_text("a file where a folder should be")
    started = box.start(job("pass"), name="r2", basis=["runs/r2/repo", "blocked/k"])
    assert started.returncode == 0 and int(started.stdout) > 0, started.stderr
