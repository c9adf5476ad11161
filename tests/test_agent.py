"""The agent's start, follow, kill and watchdog, as real processes on this machine."""

from __future__ import annotations

import os
import time

from runplz.runtime.control import group_alive

from .agentkit import Box, boot, box, gone, job, wait_for  # noqa: F401

SPAWNS = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "300"])
open("../out/child.pid", "w").write(str(child.pid))
print("started", flush=True)
"""


def test_a_job_runs_detached_and_follow_reports_its_exit_code(box):
    started = box.start(job("print('hello', flush=True); raise SystemExit(3)"), env={"K": "v"})
    assert started.returncode == 0, started.stderr
    assert int(started.stdout.strip()) > 0
    log, record = box.follow()
    assert log == "hello\n"
    assert record == {"exit_code": 3, "result": None, "timed_out": False, "note": None}
    assert (box.ctl() / "payload.json").read_text() == "{}"
    assert not (box.ctl() / "limit").exists()


def test_start_does_not_copy_a_repo_and_needs_the_uploaded_one(box):
    (box.run() / "repo" / "code.txt").write_text("mine")
    box.start(job("print(open('code.txt').read(), flush=True)"))
    assert box.follow()[0] == "mine\n"


def test_what_a_finished_job_leaves_running_in_its_group_is_stopped(box):
    started = box.start(job(SPAWNS + "print('done', flush=True)"))
    pgid = int(started.stdout)
    assert box.follow()[1]["exit_code"] == 0
    assert wait_for(lambda: not group_alive(pgid), 10)
    assert gone(int((box.run() / "out" / "child.pid").read_text()))


def test_the_watchdog_stops_the_job_and_its_children_at_the_limit_with_no_driver(box, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/docker.log\n")
    (fake / "docker").chmod(0o755)
    box.env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    began = time.monotonic()
    started = box.start(job(SPAWNS + "time.sleep(300)"), limit=1.5, container="runplz-c1")
    pgid = int(started.stdout)
    assert (box.ctl() / "limit").read_text().strip() == "1.5"
    assert wait_for(lambda: (box.ctl() / "exit_code").exists(), 30)
    assert 1.4 < time.monotonic() - began < 10
    assert (box.ctl() / "exit_code").read_text() == "124"
    assert (box.ctl() / "timed_out").exists()
    assert not group_alive(pgid)
    assert gone(int((box.run() / "out" / "child.pid").read_text()))
    assert (tmp_path / "docker.log").read_text().startswith("stop -t 10 runplz-c1\nrm -f runplz-c1\n")
    log, record = box.follow()
    assert "started" in log
    assert record["exit_code"] == 124 and record["timed_out"] is True


def test_a_job_within_its_limit_is_not_stopped(box):
    box.start(job("import time; time.sleep(0.3)"), limit=30)
    assert box.follow()[1] == {"exit_code": 0, "result": None, "timed_out": False, "note": None}
    assert not (box.ctl() / ".timed_out").exists()


def test_a_job_that_kills_its_supervisor_is_stopped_and_reported(box):
    pgid = int(box.start(job(SPAWNS + "os.kill(os.getppid(), 9); time.sleep(300)")).stdout)
    supervisor = int((box.ctl() / "supervisor.pid").read_text())
    log, record = box.follow()
    assert "started" in log
    assert record["exit_code"] == 255 and record["result"] is None
    assert f"runplz supervisor (pid {supervisor}) died while the job ran" in record["note"]
    assert "runplz stopped the job" in record["note"]
    assert not group_alive(pgid)
    assert gone(int((box.run() / "out" / "child.pid").read_text()))
    assert box.follow()[1] == record, "a second follow reports the same"


def test_a_job_that_kills_its_supervisor_after_its_result_keeps_the_result(box):
    code = "open('../ctl/result.json', 'w').write('{\"ok\": 1}'); " + "os.kill(os.getppid(), 9); time.sleep(300)"
    pgid = int(box.start(job(SPAWNS + code)).stdout)
    _, record = box.follow()
    assert record["result"] == '{"ok": 1}'
    assert record["exit_code"] == 0
    assert "died while the job ran" in record["note"]
    assert not group_alive(pgid)


def test_follow_with_max_seconds_returns_pending_then_resumes_from_the_offset(box):
    pgid = int(box.start(job("print('one', flush=True); import time; time.sleep(300)")).stdout)
    began = time.monotonic()
    log, answer = box.follow(max_seconds=0.5)
    assert answer == "@@runplz-pending"
    assert log == "one\n"
    assert time.monotonic() - began < 5
    assert box.agent("kill", "runs/r1", "2").stdout.strip() == "killed"
    assert not group_alive(pgid)
    rest, record = box.follow(offset=len(log), max_seconds=5)
    assert rest == ""
    assert record["exit_code"] == 128 + 15 and record["timed_out"] is False


def test_a_job_that_cannot_start_is_reported_127(box):
    started = box.start(["/no/such/program"])
    assert started.returncode == 1 and started.stdout.strip() == "0"
    log, record = box.follow()
    assert "could not start the job" in log and record["exit_code"] == 127


def test_bad_arguments_exit_2(box):
    assert box.agent("follow", "runs/r1").returncode == 2
    assert box.agent().returncode == 2


def test_box_paths_are_relative_to_the_home(boot, tmp_path):
    other = Box(boot, tmp_path / "elsewhere")
    try:
        other.start(job("print('here', flush=True)"), name="r9")
        assert other.follow("r9")[0] == "here\n"
    finally:
        other.cleanup()
