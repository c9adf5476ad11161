"""The agent's quick answers: a ready venv named without loading the builder, and
`follow` woken by the job's own end (the run's files still decide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.venv_builder import VenvBuilder
from runplz.domain.remote_layout import ENV_MARK
from runplz.ports.python_env import EnvRequest
from runplz.runtime.agent import _Nap

from .agentkit import Box, boot, box, job  # noqa: F401


def _venv(box: Box, root: str, key: str, *python_flags: str) -> subprocess.CompletedProcess:
    request = json.dumps({"key": key, "python": sys.executable, "root": root, "steps": []})
    return subprocess.run(
        [sys.executable, *python_flags, box.boot, "agent", "venv", request],
        cwd=box.home, capture_output=True, text=True, timeout=300,
    )


def _answer(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1][len(ENV_MARK):])


def test_a_ready_venv_is_named_without_loading_the_builder(box):
    key = "f00d" * 16
    made = _answer(_venv(box, "venvs", key))
    assert made["created"] is True
    again = _venv(box, "venvs", key, "-X", "importtime")
    assert _answer(again) == {"python": made["python"], "created": False}
    assert "runplz.adapters.venv_builder" not in again.stderr  # -X importtime names every module loaded
    # what the builder itself says of that venv
    builder = VenvBuilder(SubprocessRunner(), str(box.home / "venvs"))
    env = builder.ensure(EnvRequest(key, sys.executable, ()))
    assert (env.python, env.created) == (made["python"], False)


def test_an_unfinished_venv_is_made_again_by_the_builder(box):
    key = "beef" * 16
    half = box.home / "venvs" / key[:24]
    (half / "bin").mkdir(parents=True)  # no ready mark: a build that died half-way
    answer = _answer(_venv(box, "venvs", key))
    assert answer["created"] is True
    assert (half / ".runplz-ready").exists()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfds on this OS: naps are plain waits")
def test_the_nap_ends_when_the_job_process_does(tmp_path):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    (ctl / "pgid").write_text(str(child.pid))
    nap = _Nap(str(ctl))
    try:
        assert nap(120) is True  # woken by the end, long before the 120 s are up
        assert nap(0.01) is False  # after that, plain waits
    finally:
        nap.close()
        child.wait()


def test_the_nap_is_a_plain_wait_without_a_job_process(tmp_path):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    assert _Nap(str(ctl))(0.01) is False  # no pgid yet
    (ctl / "pgid").write_text("999999999")  # no such process
    assert _Nap(str(ctl))(0.01) is False


def test_follow_reports_a_job_that_ends_while_it_waits(box):
    started = box.start(job("""
        import time
        print('begun', flush=True)
        time.sleep(0.5)
        print('done', flush=True)
        raise SystemExit(3)
    """))
    assert started.returncode == 0, started.stderr
    text, record = box.follow()
    assert text.split() == ["begun", "done"]
    assert record["exit_code"] == 3
