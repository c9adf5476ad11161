"""`runplz ps` / `status` ask the backends how runs whose driver is gone are doing:
which runs are asked about, the ON BACKEND column, the service over every
backend's fakes at once (one check per backend, only reading, one warning per
backend that cannot be reached), and the CLI over the fakes.

Per backend: tests/test_ps_reconcile_local.py (Docker), _ssh.py (run folders
on a box, boxes that do not answer), _brev.py, and tests/test_ps_slurm.py.
Shared parts: tests/ps_world.py.
"""

from __future__ import annotations

import pytest

from runplz.domain.run_liveness import NOT_REACHED, BackendView, Probe, probe_for
from runplz.domain.run_summary import summarize
from runplz.services.run_views import ps_table, status_text
from runplz.testing import FakeRunStore

from .ps_world import T0, a_world, cli_over, record, snapshot, summary


@pytest.fixture
def world(tmp_path):
    yield from a_world(tmp_path)


def test_only_runs_whose_driver_is_gone_before_an_end_are_asked_about():
    assert probe_for(summary("local", "docker")) == Probe("docker")
    assert probe_for(summary("ssh", "me@gpu1:2222")) == Probe("ssh", "me@gpu1:2222")
    assert probe_for(summary("brev", "my-box", detached=True)) == Probe("brev", "my-box")
    assert probe_for(summary(alive=True)) is None  # the driver knows best
    assert probe_for(summary(ended=True)) is None
    assert probe_for(summary("local", "native")) is None
    assert probe_for(summary("modal", "Modal")) is None
    assert probe_for(summary("slurm", "login1")) == Probe("slurm", "login1")

def test_the_table_gets_a_backend_column_only_when_there_is_something_to_show():
    store = FakeRunStore()
    run = record(store, 1, "ssh", "gpu1")
    rows = [summarize(store.events(run), False, T0 + 60)]
    assert "ON BACKEND" not in ps_table(rows) and "ON BACKEND" not in ps_table(rows, {})
    table = ps_table(rows, {run: BackendView("job running on the box", True)})
    header, line = table.splitlines()
    assert header.endswith("COST  ON BACKEND") and line.endswith("job running on the box")
    text = status_text(rows[0], view=BackendView("box STOPPED", False))
    assert "\non backend  box STOPPED\n" in text

# ---------------------------------------------------------------- the service over the fakes


def test_each_backend_is_asked_once_and_only_read(world):
    before = snapshot(world.home)
    got = world.reconciler().check(world.rows())
    assert got.warnings == ()
    views = {name: got.views.get(run) for name, run in world.runs.items()}
    assert views["docker_live"].text == "container runplz-demo-train-x running" and views["docker_live"].live
    assert views["docker_gone"] == BackendView("container gone", False)
    assert views["ssh_running"] == BackendView("job running on the box", True)
    assert views["ssh_ended"].line() == (
        f"job ended (exit 3), driver gone, outputs not collected; run `runplz down {world.runs['ssh_ended']}`")
    assert views["ssh_pending"].text == "no job was started on the box"
    assert views["brev_deleted"] == BackendView("box gone-box deleted", False)
    assert views["brev_stopped"] == BackendView("box STOPPED", False)
    assert views["brev_running"].text == "job ended (exit 0), driver gone"
    assert views["ended"] is None and views["alive"] is None  # not asked about
    hosts = [target.host for target in world.made]
    assert sorted(hosts) == ["gpu1", "up"]  # one connection per box; none to a stopped or deleted box
    assert [verb for verb, _ in world.brev.calls] == ["search --help", "ls"]
    assert world.engine.removed == [] and world.engine.runs == [] and world.engine.builds == []
    assert list(world.brev.boxes) == ["up", "cold"] and world.brev.boxes["cold"].status == "STOPPED"
    assert snapshot(world.home) == before


def test_nothing_is_asked_when_no_run_needs_it(world):
    got = world.reconciler().check(world.rows("ended", "alive"))
    assert got.views == {} and got.warnings == ()
    assert world.made == [] and world.brev.calls == []


def test_a_backend_that_cannot_be_reached_is_one_warning_and_the_rest_still_answers(world):
    refused = record(world.store, 30, "ssh", "me@nobody:2222")
    also = record(world.store, 31, "ssh", "me@nobody:2222")
    world.engine.available = False
    world.brev.faults = type(world.brev.faults)(unauthorized=True)
    rows = world.rows("ssh_running", "docker_gone", "brev_stopped") + [
        summarize(world.store.events(r), False, T0 + 100, r) for r in (refused, also)]
    got = world.reconciler().check(rows)
    assert got.views[world.runs["ssh_running"]].live is True
    assert got.views[refused] == NOT_REACHED == got.views[also]
    assert got.views[world.runs["docker_gone"]] == NOT_REACHED
    assert got.views[world.runs["brev_stopped"]] == NOT_REACHED
    assert len(got.warnings) == 3, got.warnings  # one per backend: ssh me@nobody:2222 (once for 2 runs), Docker, Brev
    assert any(w.startswith("could not check ssh box me@nobody:2222: ") for w in got.warnings)
    assert any(w.startswith("could not check the local Docker engine: ") for w in got.warnings)
    assert any(w.startswith("could not check Brev (brev ls): ") and "unauthorized" in w.lower() for w in got.warnings)

# ---------------------------------------------------------------- the CLI over the fakes


def test_ps_shows_the_backend_column_and_warnings_then_exits_0(world):
    refused = record(world.store, 50, "ssh", "nobody")
    done = cli_over(world, "ps", "-n", "50")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split()[-2:] == ["ON", "BACKEND"]
    row = {line.split()[0]: line for line in lines[1:]}
    assert row[world.runs["ssh_running"]].endswith("job running on the box")
    assert row[world.runs["brev_deleted"]].endswith("box gone-box deleted")
    assert row[world.runs["ended"]].endswith("  -")
    assert row[refused].endswith("not reached (see the warning)")
    assert done.stderr.splitlines() == [
        "runplz: warning: could not check ssh box nobody: nobody did not answer within 0s"]


def test_ps_no_check_reads_only_the_records(world):
    def refuse(**_):
        raise AssertionError("ps --no-check made a transport")

    world.transports = refuse
    world.engine.available = False  # asking it would be a warning
    done = cli_over(world, "ps", "--no-check")
    assert done.exit_code == 0 and "ON BACKEND" not in done.stdout and done.stderr == ""
    assert "driver died during run" in done.stdout
    assert world.brev.calls == []
    asked = cli_over(world, "ps")
    assert asked.exit_code == 0 and "could not check the local Docker engine" in asked.stderr
    assert "made a transport" in asked.stderr  # (the check runs; the refusal shows as a warning, ps goes on)


def test_status_shows_what_the_backend_says(world):
    done = cli_over(world, "status", world.runs["ssh_ended"])
    assert done.exit_code == 0, done.output
    assert "on backend  job ended (exit 3), driver gone, outputs not collected" in done.stdout
    assert "on backend" not in cli_over(world, "status", "--no-check", world.runs["ssh_ended"]).stdout
    assert "on backend" not in cli_over(world, "status", world.runs["ended"]).stdout
