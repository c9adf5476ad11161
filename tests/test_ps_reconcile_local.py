"""`runplz ps` / `status` for a local Docker run whose driver is gone: the
run's labelled container (the pure view; then, marked ``real``, `runplz ps`
as a command after a driver killed with -9, on a real Docker engine)."""

from __future__ import annotations

import subprocess

import pytest

from runplz.domain.run_liveness import BackendView, container_view

from .ps_world import Runplz


def test_views_of_a_container():
    others = [("runplz-x-other", {"runplz.run": "r2"}, "running", None)]
    assert container_view("r1", others) == BackendView("container gone", False)
    running = container_view("r1", others + [("runplz-x-r1", {"runplz.run": "r1"}, "running", None)])
    assert running.text == "container runplz-x-r1 running" and running.live is True
    exited = container_view("r1", [("c", {"runplz.run": "r1"}, "exited", 137)])
    assert exited.text == "container c exited (exit 137)" and exited.live is False


@pytest.mark.real
def test_docker_a_killed_drivers_container_is_seen_running_then_gone(tmp_path, docker_engine):
    runplz = Runplz(tmp_path)
    run = runplz.killed_mid_run("local", "job.py", "--gate", "/never")
    name = f"runplz-ps-check-held-{run}"
    row, done = runplz.ps_row(run)
    assert "driver died during run" in row and row.endswith(f"container {name} running; stop it: `runplz down {run}`")
    assert done.stderr == ""
    assert "--no-check" in runplz("ps", "--help").stdout
    assert "ON BACKEND" not in runplz("ps", "--no-check").stdout
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    assert runplz.ps_row(run)[0].endswith("  container gone")
    assert "on backend  container gone" in runplz("status", run).stdout
