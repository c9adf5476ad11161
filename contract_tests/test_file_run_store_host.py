"""The file `RunStore` on this host: stopping a run's job by its mark, never
another process; a disk that fills up (a real 64 KiB tmpfs; needs root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from runplz.adapters import marked_processes
from runplz.adapters.file_run_store import FileRunStore
from runplz.domain.errors import UsageError
from runplz.domain.job_stop import JobLeftRunning
from runplz.domain.run_record import JOB_MARK, Ended, Note
from testsupport.real import unavailable
from testsupport.tiny_disk import fill, mounted_tmpfs

from .suites.run_store import RUN_A, RUN_B, T0, started


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "state" / "runs")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (needs root), unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "tiny") as where:
        yield where


def test_only_processes_that_carry_the_runs_mark_are_signalled(folder):
    """A recorded pid or process group may name another process by now (ids are
    reused): nothing is signalled for its id, only for the run's mark."""
    store = FileRunStore(folder, job_grace=0.5)
    store.begin(started(RUN_A))
    mark = f"{JOB_MARK}={RUN_A}".encode()
    unmarked = subprocess.Popen(["sleep", "120"], start_new_session=True)
    other_run = subprocess.Popen(["sleep", "120"], env={**os.environ, JOB_MARK: RUN_B}, start_new_session=True)
    prefix = subprocess.Popen(["sleep", "120"], env={**os.environ, JOB_MARK: RUN_A + "0"}, start_new_session=True)
    # A group led by a process without the mark, with a marked member: only the member goes.
    mixed = subprocess.Popen(
        ["bash", "-c", f"env {JOB_MARK}={RUN_A} sleep 121 & exec sleep 122"], start_new_session=True,
    )
    # A whole marked group whose leader ignores SIGTERM: killed after the grace.
    stubborn = subprocess.Popen(
        ["bash", "-c", "trap '' TERM; sleep 123 & sleep 124 & while :; do sleep 0.1; done"],
        env={**os.environ, JOB_MARK: RUN_A}, start_new_session=True,
    )
    everyone = (unmarked, other_run, prefix, mixed, stubborn)
    try:
        deadline = time.monotonic() + 10
        found = marked_processes.scan(mark)[0]
        while len(found) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # bash, its sleeps 123 and 124 (its loop's sleep comes and goes); the mixed group's 121
            found = marked_processes.scan(mark)[0]
        assert len(found) >= 4 and mixed.pid not in found and stubborn.pid in found
        assert store.stop_job(RUN_A) >= len(found)  # and what the looping bash started meanwhile
        assert marked_processes.scan(mark)[0] == {}
        assert stubborn.wait(10) == -signal.SIGKILL
        for survivor in (unmarked, other_run, prefix, mixed):
            assert survivor.poll() is None, survivor.args
    finally:
        for child in everyone:
            if child.poll() is None:
                child.kill()
            child.wait()


def _marked(mark: bytes, env_value: str, *argv: str) -> subprocess.Popen:
    child = subprocess.Popen(list(argv or ["sleep", "120"]), env={**os.environ, JOB_MARK: env_value},
                             start_new_session=True)
    deadline = time.monotonic() + 10
    while child.pid not in marked_processes.scan(mark)[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    return child


def _with_pid(pid: int) -> subprocess.Popen | None:
    """A new unmarked process that got ``pid`` (the kernel's next pid is set
    through ns_last_pid; needs root), or None where that cannot be done."""
    for _ in range(100):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as handle:
                handle.write(str(pid - 1))
        except OSError:
            return None
        child = subprocess.Popen(["sleep", "120"], start_new_session=True)
        if child.pid == pid:
            return child
        child.kill()
        child.wait()
    return None


@pytest.mark.parametrize("pidfds", [True, False], ids=["pidfd", "start-time"])
def test_a_pid_that_changed_hands_after_the_look_is_never_signalled(pidfds):
    """The look found a marked process; before the signal it ended and its pid
    went to an unmarked one: that one gets nothing (pidfd: the signal goes to
    the dead process; no pidfds: the start time read again does not match)."""
    mark = f"{JOB_MARK}={RUN_A}".encode()
    marked = _marked(mark, RUN_A)
    _, start = marked_processes._stat(marked.pid)
    held = marked_processes._Process.hold(marked.pid, start, pidfds)
    # Start times count in clock ticks (10 ms): a pid steered back within the
    # same tick would look like the same process. Real pid reuse needs the
    # whole pid space to wrap first, never within one tick.
    time.sleep(0.05)
    marked.kill()
    marked.wait()  # reaped: its pid is free for the next process
    stranger = _with_pid(marked.pid)
    if stranger is None:
        held.close()
        unavailable("cannot steer the next pid (/proc/sys/kernel/ns_last_pid)")
    try:
        assert held.gone()
        held.send(signal.SIGKILL)
        time.sleep(0.2)
        assert stranger.poll() is None, "the pid's new owner was signalled"
    finally:
        held.close()
        stranger.kill()
        stranger.wait()


def _ignores_sigterm(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as handle:
        mask = next(line.split()[1] for line in handle if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


def test_processes_that_survive_sigkill_are_reported_not_counted_as_stopped(folder, monkeypatch):
    """A process stuck in the kernel outlives SIGKILL; simulated by a process
    that ignores SIGTERM and whose SIGKILL is dropped."""
    store = FileRunStore(folder, job_grace=0.3)
    store.begin(started(RUN_A))
    mark = f"{JOB_MARK}={RUN_A}".encode()
    stuck = _marked(mark, RUN_A, sys.executable, "-c",
                    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)")
    gentle = _marked(mark, RUN_A)
    deadline = time.monotonic() + 10  # until the stuck one ignores SIGTERM (its Python has started)
    while not _ignores_sigterm(stuck.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    send = marked_processes._Process.send

    def dropping(self, sig):
        if not (self.pid == stuck.pid and sig == signal.SIGKILL):
            send(self, sig)

    monkeypatch.setattr(marked_processes._Process, "send", dropping)
    monkeypatch.setattr(marked_processes, "KILL_WAIT", 0.5)
    try:
        with pytest.raises(JobLeftRunning) as raised:
            store.stop_job(RUN_A)
        assert raised.value.alive == (stuck.pid,) and raised.value.found >= 2
        assert "1 process of its job would not stop (pid %d), even after SIGKILL" % stuck.pid in str(raised.value)
        assert gentle.wait(5) == -signal.SIGTERM and stuck.poll() is None
    finally:
        for child in (stuck, gentle):
            if child.poll() is None:
                child.kill()
            child.wait()


def test_a_process_in_uninterruptible_sleep_costs_a_bounded_wait_and_is_reported(folder, monkeypatch):
    """Reading the environment of a process in state D may block: it is given
    `READ_WAIT` seconds, then left alone (not signalled) and named."""
    store = FileRunStore(folder, job_grace=0.2)
    store.begin(started(RUN_A))
    sleeper = subprocess.Popen(["sleep", "120"], start_new_session=True)
    real_live, real_read = marked_processes._live, marked_processes._read_environ
    release = threading.Event()

    def live():
        found = real_live()
        if sleeper.pid in found:
            found[sleeper.pid] = (b"D", found[sleeper.pid][1])
        return found

    def read(pid, entry):
        if pid == sleeper.pid:
            release.wait(30)  # as a read of a hung process's memory would
        return real_read(pid, entry)

    monkeypatch.setattr(marked_processes, "_live", live)
    monkeypatch.setattr(marked_processes, "_read_environ", read)
    monkeypatch.setattr(marked_processes, "READ_WAIT", 0.3)
    try:
        began = time.monotonic()
        with pytest.raises(JobLeftRunning) as raised:
            store.stop_job(RUN_A)
        assert time.monotonic() - began < 5
        assert raised.value.unchecked == (sleeper.pid,) and raised.value.found == 0 and raised.value.alive == ()
        assert "could not be checked for its mark (pid %d)" % sleeper.pid in str(raised.value)
        assert sleeper.poll() is None
    finally:
        release.set()
        sleeper.kill()
        sleeper.wait()


def test_a_host_without_proc_cannot_look(folder, monkeypatch):
    store = FileRunStore(folder)
    store.begin(started(RUN_A))
    monkeypatch.setattr(marked_processes, "PROC", folder + "/no-proc-here")
    assert store.stop_job(RUN_A) is None

def test_begin_on_a_full_disk_says_so_and_leaves_no_half_made_record(tiny_disk):
    store = FileRunStore(str(tiny_disk / "runs"))
    fill(tiny_disk)
    with pytest.raises(UsageError, match="the disk is full"):
        store.begin(started(RUN_A))
    assert store.runs() == () and os.listdir(tiny_disk / "runs") == []

def test_a_run_keeps_room_for_its_end_when_the_disk_fills(tiny_disk):
    store = FileRunStore(str(tiny_disk / "runs"))
    store.begin(started(RUN_A))
    fill(tiny_disk)
    landed = []
    with pytest.raises(UsageError, match="the disk is full"):
        for i in range(100):
            store.append(RUN_A, Note(f"{i:04d}" + "x" * 996, T0 + i))
            landed.append(i)
    assert len(landed) >= 8  # the reserve's 8 KiB, beyond what the events file's last block held
    notes = [e for e in store.events(RUN_A) if isinstance(e, Note)]
    assert [int(e.text[:4]) for e in notes] == landed  # nothing torn, nothing lost before the failure

def test_the_reserve_goes_back_to_the_disk_when_the_run_ends(folder):
    store = FileRunStore(folder)
    store.begin(started(RUN_A))
    assert os.path.exists(os.path.join(folder, RUN_A, "reserve"))
    store.append(RUN_A, Ended(0, "ok", T0 + 1))
    assert sorted(os.listdir(os.path.join(folder, RUN_A))) == ["events.jsonl"]

