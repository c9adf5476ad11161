"""Driving the real agent as a real process, from a materialised runtime bundle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runplz.domain.layout import BOOT_SCRIPT
from runplz.domain.remote_layout import PENDING_MARK, RESULT_MARK
from runplz.services.bundle import RuntimeBundle


@pytest.fixture(scope="session")
def boot(tmp_path_factory) -> str:
    bundle = RuntimeBundle(str(tmp_path_factory.mktemp("agent-cache"))).materialize()
    return os.path.join(bundle, BOOT_SCRIPT)


def job(code: str) -> list[str]:
    """A Python job; its working folder is the run's repo/, so ``../out`` and ``../ctl``."""
    return [sys.executable, "-c", textwrap.dedent(code)]


def gone(pid: int) -> bool:
    """No such process, or only its zombie (the test box's init does not reap)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Box:
    """A login home for the agent, with the runs it started (all killed at the end)."""

    def __init__(self, boot: str, home: Path, env: dict | None = None) -> None:
        self.boot, self.home, self.env = boot, home, env
        self._started: list[Path] = []
        home.mkdir(parents=True, exist_ok=True)

    def agent(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, self.boot, "agent", *args], cwd=self.home, input=input,
            capture_output=True, text=True, timeout=timeout, env=self.env,
        )

    def run(self, name: str = "r1") -> Path:
        """A run folder with its uploaded repo/, as the driver leaves it before start."""
        (self.home / "runs" / name / "repo").mkdir(parents=True, exist_ok=True)
        return self.home / "runs" / name

    def start(self, argv: list[str], name: str = "r1", **spec) -> subprocess.CompletedProcess:
        run = self.run(name)
        body = {"argv": argv, "cwd": str(run / "repo"), "env": {}, "payload": "{}", "container": None,
                "limit": None, "basis": None, **spec}
        self._started.append(run / "ctl")
        return self.agent("start", f"runs/{name}", input=json.dumps(body))

    def follow(self, name: str = "r1", offset: int = 0, max_seconds: float | None = None, timeout: float = 60):
        """(log text, record or PENDING_MARK)."""
        args = ["follow", f"runs/{name}", str(offset)] + ([str(max_seconds)] if max_seconds else [])
        done = self.agent(*args, timeout=timeout)
        assert done.returncode == 0, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        if last == PENDING_MARK:
            return done.stdout, last
        assert last.startswith(RESULT_MARK), done.stderr
        return done.stdout, json.loads(last[len(RESULT_MARK):])

    def ctl(self, name: str = "r1") -> Path:
        return self.home / "runs" / name / "ctl"

    def cleanup(self) -> None:
        for ctl in self._started:
            for name, kill in (("pgid", os.killpg), ("supervisor.pid", os.kill)):
                text = (ctl / name).read_text().strip() if (ctl / name).exists() else ""
                if text.isdigit():
                    try:
                        kill(int(text), signal.SIGKILL)
                    except OSError:
                        pass


@pytest.fixture
def box(boot, tmp_path):
    made = Box(boot, tmp_path / "home")
    yield made
    made.cleanup()
