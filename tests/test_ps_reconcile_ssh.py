"""`runplz ps` / `status` for an ssh run whose driver is gone: its run folder
on the box (the marked report, the views, the folder script run by a real
``sh`` and changing nothing), a box that never answers or hangs (given up on
in time, leaving nothing running); then, marked ``real``, `runplz ps` as a
command against a throwaway sshd box, an unreachable one and one stuck in its
handshake."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest

from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.marked_processes import ProcessFence
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.errors import Unreachable
from runplz.domain.run_liveness import (
    FOLDER_MARK,
    FOLDER_SCRIPT,
    NOT_REACHED,
    BackendView,
    FolderState,
    folder_argv,
    folder_view,
    parse_folder_report,
)
from runplz.domain.run_summary import summarize
from runplz.services.run_reconcile import RunReconciler
from runplz.testing import FakeClock, FakeTransport
from testsupport.sshd import free_port

from .ps_world import (
    STATES, T0, Runplz, a_world, home_with_runs, pids_naming, record, snapshot, write_record,
)


@pytest.fixture
def world(tmp_path):
    yield from a_world(tmp_path)


def test_the_folder_report_is_read_from_marked_lines_only():
    text = (
        "Welcome to the box!\n"
        f"{FOLDER_MARK}r1 running no\n"
        f"{FOLDER_MARK}r2 ended yes no 3\n"
        f"{FOLDER_MARK}r3 ended no yes 124\n"
        f"{FOLDER_MARK}r4 orphaned yes\n"
        f"{FOLDER_MARK}r5 missing no\n"
        f"{FOLDER_MARK}r6 pending no\n"
        f"{FOLDER_MARK}r7 exploded no\n"
        f"{FOLDER_MARK}r8 ended no no \n"
        "r9 running no\n"
    )
    assert parse_folder_report(text) == {
        "r1": FolderState("running"),
        "r2": FolderState("ended", True, False, 3),
        "r3": FolderState("ended", False, True, 124),
        "r4": FolderState("orphaned", True),
        "r5": FolderState("missing"),
        "r6": FolderState("pending"),
        "r8": FolderState("ended"),
    }


def test_views_of_a_run_folder():
    run = "r1"
    assert folder_view(run, FolderState("running")) == BackendView("job running on the box", True)
    ended = folder_view(run, FolderState("ended", True, False, 3))
    assert ended.line() == "job ended (exit 3), driver gone, outputs not collected; run `runplz down r1`"
    assert ended.live is False
    assert folder_view(run, FolderState("ended", False, True, 124)).text == "job timed out (exit 124), driver gone"
    assert "supervisor died" in folder_view(run, FolderState("orphaned")).text
    assert folder_view(run, FolderState("missing")).text == "no run folder on the box"
    assert folder_view(run, FolderState("pending")).text == "no job was started on the box"
    assert folder_view(run, None).live is None

# ---------------------------------------------------------------- the run-folder script, with a real sh


def test_the_folder_script_reads_each_state_and_changes_nothing(tmp_path):
    home, live = home_with_runs(tmp_path)
    zombie = subprocess.Popen(["true"])  # not reaped: its /proc cmdline reads empty, as a kernel thread's would
    unknown = home / ".runplz" / "runs" / "r-unknown" / "ctl"
    unknown.mkdir(parents=True)
    (unknown / "supervisor.pid").write_text(str(zombie.pid))
    try:
        while open(f"/proc/{zombie.pid}/stat").read().rpartition(")")[2].split()[0] != "Z":
            time.sleep(0.01)
        before = snapshot(home)
        transport = LocalTransport(SubprocessRunner(), str(home))
        transport.connect()
        runs = [f"r-{state}" for state in STATES] + ["r-missing", "r-unknown"]
        assert folder_argv(runs) == ["sh", "-s", "--", *runs]  # the script comes on stdin: any login shell
        result = transport.run(folder_argv(runs), input=FOLDER_SCRIPT.encode())
        assert result.exit_code == 0, result.stderr
        assert parse_folder_report(result.stdout) == {
            "r-unknown": FolderState("unknown"),
            "r-running": FolderState("running"),
            "r-ended": FolderState("ended", True, False, 3),
            "r-timeout": FolderState("ended", False, True, 124),
            "r-orphan": FolderState("orphaned"),
            "r-pending": FolderState("pending"),
            "r-missing": FolderState("missing"),
        }
        assert snapshot(home) == before
        assert folder_view("r-unknown", FolderState("unknown")) == BackendView(
            "cannot tell whether the job runs (its supervisor's pid shows no command line)")
    finally:
        zombie.wait()
        live.kill()
        live.wait()

# ---------------------------------------------------------------- boxes that do not answer, over the fakes


def test_a_box_that_never_answers_is_given_up_on_in_time(world):
    hole = record(world.store, 40, "ssh", "hole")
    rows = world.rows("ssh_running") + [summarize(world.store.events(hole), False, T0 + 100, hole)]
    started = time.monotonic()
    got = world.reconciler(seconds=1.0).check(rows)
    assert time.monotonic() - started < 5
    assert got.views[hole] == NOT_REACHED and got.views[world.runs["ssh_running"]].live is True
    assert got.warnings == ("could not check ssh box hole: no answer within 1s",)

class Hung(FakeTransport):
    """A box whose connect starts a program that hangs (an ssh stuck in its
    handshake), in a session of its own as the real runner starts it."""

    def __init__(self, token: str, **kwargs):
        super().__init__(**kwargs)
        self.token = token
        self.closed = 0

    def connect(self, wait: float = 0) -> None:
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(60)", self.token], timeout=120)
        raise Unreachable(f"{self.name} did not answer")

    def close(self) -> None:
        self.closed += 1


def test_what_an_abandoned_check_started_does_not_outlive_it_and_its_transport_is_closed(world):
    token = f"runplz-ps-hung-{secrets.token_hex(4)}"
    hung = Hung(token, name="hung")
    hole = record(world.store, 41, "ssh", "hung")
    rows = world.rows("ssh_running") + [summarize(world.store.events(hole), False, T0 + 100, hole)]
    transports = lambda target: hung if target.host == "hung" else world.transports(target)  # noqa: E731
    reconciler = RunReconciler(world.engine, world.brev, transports, FakeClock(), seconds=1.0, stragglers=ProcessFence)
    started = time.monotonic()
    got = reconciler.check(rows)
    assert time.monotonic() - started < 8
    assert got.warnings == ("could not check ssh box hung: no answer within 1s",)
    assert got.views[world.runs["ssh_running"]].live is True
    assert pids_naming(token, whole_arg=True) == [], "the hung program outlived the check"
    assert hung.closed == 1  # by its check, once the program was stopped
    assert "RUNPLZ_FENCE" not in os.environ

# ---------------------------------------------------------------- real parts: `runplz ps` as a command


@pytest.mark.real
def test_ssh_a_killed_drivers_job_is_seen_running_then_ended_and_a_dead_box_is_a_warning(tmp_path, ssh_boxes):
    runplz = Runplz(tmp_path)
    gate = f"/tmp/runplz-ps-gate-{secrets.token_hex(6)}"
    run = runplz.killed_mid_run("ssh", "--host", "runplz-near", "job.py", "--gate", gate)
    port = free_port()
    nobody = f"runplz@127.0.0.1:{port}"
    old = "20000101-000000-abcdef"
    write_record(runplz.state, old, nobody)

    before = ssh_boxes.near.accepted()
    started = time.monotonic()
    row, done = runplz.ps_row(run)
    assert time.monotonic() - started < 30
    assert row.endswith("  job running on the box"), done.stdout + done.stderr
    assert ssh_boxes.near.accepted() - before == 1  # one connection for the box
    (warning,) = done.stderr.splitlines()
    assert warning.startswith(f"runplz: warning: could not check ssh box {nobody}: ") and "refused" in warning.lower()
    assert next(line for line in done.stdout.splitlines() if line.startswith(old)).endswith("not reached (see the warning)")

    ssh_boxes.ssh("runplz-near", f"touch {gate}")
    row = runplz.wait_row(run, f"job ended (exit 3), driver gone, outputs not collected; run `runplz down {run}`")
    assert "driver died during run" in row
    down = runplz("down", run, timeout=180)
    assert down.returncode == 0 and (runplz.repo / "out" / "early.txt").read_text() == "early", down.stdout + down.stderr
    assert runplz.ps_row(run)[0].split()[4] == "interrupted"  # ended: no longer asked about
    ssh_boxes.ssh("runplz-near", f"rm -f {gate}")

def _left_behind(tmpdir) -> tuple[list[str], list[int]]:
    """What a `runplz ps` that used ``tmpdir`` left: the control folders there,
    and the processes that name it (an ssh master)."""
    return os.listdir(tmpdir), pids_naming(str(tmpdir))


@pytest.mark.real
def test_a_box_that_does_not_answer_costs_ps_a_bounded_wait_and_one_warning(tmp_path, far_box):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    runplz = Runplz(tmp_path, TMPDIR=str(tmpdir))
    write_record(runplz.state, "20000101-000000-abcdef", "runplz-far")
    far_box.link(False)
    try:
        started = time.monotonic()
        done = runplz("ps")
        took = time.monotonic() - started
        left = _left_behind(tmpdir)
    finally:
        far_box.link(True)
    assert done.returncode == 0 and done.stdout.splitlines()[1].endswith("not reached (see the warning)")
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("runplz: warning: could not check ssh box runplz-far: "), warning
    assert took < 15, took
    assert left == ([], []), left  # no ssh master, no control-socket folder


@pytest.mark.real
def test_a_box_stuck_in_its_handshake_leaves_no_ssh_behind_when_ps_gives_up(tmp_path, ssh_boxes):
    """A box that sends its banner and then nothing: ssh's ConnectTimeout does
    not cover the rest of the handshake, so the check misses ps's budget; ps
    stops that ssh before it exits."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    runplz = Runplz(tmp_path, TMPDIR=str(tmpdir))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def serve():
        while True:
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            peer.sendall(b"SSH-2.0-OpenSSH_9.0 stuck\r\n")
            held.append(peer)  # and never another byte

    threading.Thread(target=serve, daemon=True).start()
    write_record(runplz.state, "20000101-000000-abcdef", f"runplz@127.0.0.1:{port}")
    try:
        started = time.monotonic()
        done = runplz("ps")
        took = time.monotonic() - started
        left = _left_behind(tmpdir)
    finally:
        listener.close()
        for peer in held:
            peer.close()
    assert done.returncode == 0 and done.stdout.splitlines()[1].endswith("not reached (see the warning)"), done
    (warning,) = done.stderr.splitlines()
    assert "no answer within 10s" in warning, warning
    assert held, "ssh never reached the box"
    assert took < 20, took
    assert left == ([], []), left
