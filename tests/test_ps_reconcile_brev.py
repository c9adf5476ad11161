"""`runplz ps` / `status` for a Brev run whose driver is gone: the box as
`brev ls` lists it (the pure view; then, marked ``real``, `runplz ps` as a
command against the brev emulator over a throwaway sshd box)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest

from runplz.domain.run_liveness import BackendView, box_view
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator

from .ps_world import Runplz


def test_views_of_a_box():
    assert box_view("b", None, False) == BackendView("box b deleted", False)
    assert box_view("b", "STOPPED", False, "STOPPED") == BackendView("box STOPPED", False)
    assert box_view("b", "RUNNING", False, "RUNNING, shell NOT READY").text == "box RUNNING, shell NOT READY"
    assert box_view("b", "RUNNING", True) is None  # its run folder tells


@pytest.mark.real
def test_brev_a_killed_drivers_box_is_seen_running_stopped_then_deleted_and_ps_only_reads(tmp_path, ssh_boxes):
    emu = BrevEmulator.make(tmp_path / "brev", CATALOG, boxes=ssh_boxes)
    runplz = Runplz(tmp_path, PATH=emu.bin_dir + os.pathsep + os.environ["PATH"])
    brev = lambda *args: subprocess.run([emu.brev, *args], env=runplz.env, capture_output=True, text=True, timeout=60)  # noqa: E731
    try:
        assert brev("create", "ps-box", "--type", "cpu-4x16").returncode == 0
        gate = f"/tmp/runplz-ps-gate-{secrets.token_hex(6)}"
        run = runplz.killed_mid_run("brev", "--instance", "ps-box", "job.py", "--gate", gate)
        seen = len(emu.argvs())
        row, done = runplz.ps_row(run)
        assert row.endswith("  job running on the box"), done.stdout + done.stderr
        assert brev("stop", "ps-box").returncode == 0
        assert runplz.ps_row(run)[0].endswith("  box STOPPED")
        assert brev("delete", "ps-box").returncode == 0
        after = len(emu.argvs())
        row, done = runplz.ps_row(run)
        assert row.endswith("  box ps-box deleted") and done.stderr == ""
        by_ps = [argv for argv in emu.argvs()[seen:] if argv[:1] not in (["stop"], ["delete"])]
        assert by_ps and all(argv[0] in ("ls", "search") for argv in by_ps), by_ps
        assert all(argv == ["search", "--help"] for argv in by_ps if argv[0] == "search")
        assert len([argv for argv in emu.argvs()[after:] if argv[0] == "ls"]) == 1  # one `brev ls` per ps
        assert json.loads((tmp_path / "brev" / "state.json").read_text())["instances"] == {}
    finally:
        emu.shutdown()
