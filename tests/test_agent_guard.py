"""``agent guard``: time limit, exit codes, signals, and reaping as PID 1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from .agentkit import boot, gone, job, wait_for  # noqa: F401

PARENT = """
import subprocess, time
child = subprocess.Popen(["sleep", "300"])
print(child.pid, flush=True)
time.sleep(300)
"""


def guard(boot, limit: str, argv: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, boot, "agent", "guard", limit, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def test_the_limit_stops_the_job_and_its_grandchildren(boot, tmp_path):
    began = time.monotonic()
    running = guard(boot, "1", job(PARENT))
    out, err = running.communicate(timeout=60)
    assert running.returncode == 124
    assert 1 <= time.monotonic() - began < 10
    assert err.strip().endswith("runplz: the job ran past its time limit of 1s and was stopped")
    assert gone(int(out.split()[0]))


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(boot):
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(300)\n"
    )
    began = time.monotonic()
    running = guard(boot, "0.5", job(code))
    out, _ = running.communicate(timeout=60)
    assert running.returncode == 124 and out == "up\n"
    assert 10 <= time.monotonic() - began < 20


@pytest.mark.parametrize("code, expected", [
    ("raise SystemExit(7)", 7),
    ("pass", 0),
    ("import os; os.kill(os.getpid(), 9)", 128 + 9),
])
def test_the_exit_code_passes_through(boot, code, expected):
    running = guard(boot, "0", job(code))
    running.communicate(timeout=60)
    assert running.returncode == expected


def test_stdio_is_inherited(boot):
    running = guard(boot, "30", job("import sys; print(sys.stdin.read().upper()); print('e', file=sys.stderr)"),
                    stdin=subprocess.PIPE)
    out, err = running.communicate("abc", timeout=60)
    assert (out, err, running.returncode) == ("ABC\n", "e\n", 0)


def test_a_missing_program_is_127(boot):
    running = guard(boot, "0", ["/no/such/program"])
    _, err = running.communicate(timeout=60)
    assert running.returncode == 127 and "could not start the job" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_reach_the_whole_job(boot, sig):
    running = guard(boot, "0", job(PARENT))
    grandchild = int(running.stdout.readline())
    running.send_signal(sig)
    running.communicate(timeout=30)
    assert running.returncode == 128 + sig
    assert wait_for(lambda: gone(grandchild), 5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_job_that_ignores_a_passed_on_signal_is_killed_before_the_driver_gives_up(boot, sig):
    code = (
        "import signal, subprocess, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    running = guard(boot, "0", job(code))
    grandchild = int(running.stdout.readline())
    began = time.monotonic()
    running.send_signal(sig)
    running.communicate(timeout=30)
    assert running.returncode == 128 + signal.SIGKILL
    assert time.monotonic() - began < 5  # the local driver kills the guard itself after 5 s
    assert wait_for(lambda: gone(grandchild), 5)


def test_what_the_job_leaves_running_ends_with_it(boot):
    code = "import subprocess\nchild = subprocess.Popen(['sleep', '300'])\nprint(child.pid, flush=True)\n"
    running = guard(boot, "0", job(code))
    out, _ = running.communicate(timeout=30)
    assert running.returncode == 0
    assert wait_for(lambda: gone(int(out.split()[0])), 5)


def test_as_pid_1_it_reaps_orphans(boot):
    if os.getuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to run the guard as PID 1 of a PID namespace")
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a PID namespace here: {probe.stderr.decode().strip()}")
    script = "(sleep 0.2 &); sleep 1.5; echo pid1=$(cat /proc/1/comm); ps -eo stat= | grep -c '^Z'; exit 3"
    argv = [sys.executable, boot, "agent", "guard", "30", "sh", "-c", script]
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    lines = done.stdout.split()
    assert lines[0].startswith("pid1=python")
    assert lines[1] == "0", "an orphan was left a zombie"
