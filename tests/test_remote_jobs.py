"""Following a detached job: resume after drops, deadlines, unreachable boxes (fakes only)."""

from __future__ import annotations

import json

import pytest

from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_transport import FakeTransport
from runplz.adapters.job_output import RecordingJobOutput
from runplz.domain.errors import Unreachable
from runplz.domain.remote_layout import RESULT_MARK
from runplz.services.remote_run import PENDING_MARK, PastDeadline, RemoteJob, RemoteJobs

JOB = RemoteJob("runs/r1", ("python3", "job"), "/home/u", {}, "{}")
LOG = b"tick 0\ntick 1\rprogress\ntick 2\n"


def agent(transport: FakeTransport, drops_after: list[int], code: int = 3, slow: float = 0.0):
    """A fake `agent follow` that serves LOG from the offset, dropping the connection as told."""

    def program(inv) -> int:
        command, run, offset = inv.argv[3], inv.argv[4], int(inv.argv[5])
        assert (command, run) == ("follow", "runs/r1")
        end = drops_after.pop(0) if drops_after else len(LOG)
        inv.out(LOG[offset:end].decode(), end="")
        if end < len(LOG):
            transport.drop()
            return 255
        if slow:
            inv.sleep(slow)
        inv.err(RESULT_MARK + json.dumps({"exit_code": code, "result": None}))
        return 0

    return program


def jobs(transport, ready_wait=30.0):
    console, output = RecordingConsole(), RecordingJobOutput()
    return RemoteJobs(transport, transport.clock, console, output, "b", ready_wait), console, output


def test_resumes_from_the_byte_it_stopped_at_after_each_drop():
    transport = FakeTransport()
    transport.runner.program("python3", agent(transport, [5, 17]))
    transport.connect()
    follower, console, output = jobs(transport)
    finished = follower.follow(JOB, deadline=None)
    assert finished.exit_code == 3
    assert output.data == LOG
    assert transport.connections == 3
    assert sum("lost the connection" in w for w in console.warnings) == 2
    for warning in console.warnings:
        assert warning.count("lost the connection") == 1, warning
        assert "()" not in warning and ": )" not in warning, warning


def test_a_bounded_follow_that_comes_back_pending_is_asked_again():
    transport = FakeTransport()
    calls = []

    def program(inv) -> int:
        calls.append(int(inv.argv[5]))
        if len(calls) < 3:
            inv.out("x", end="")
            inv.err(PENDING_MARK)
            return 0
        inv.err(RESULT_MARK + json.dumps({"exit_code": 0, "result": None, "timed_out": True, "note": None}))
        return 0

    transport.runner.program("python3", program)
    transport.connect()
    follower, console, output = jobs(transport)
    finished = follower.follow(JOB, deadline=None)
    assert calls == [0, 1, 2] and output.data == b"xx"
    assert finished.timed_out and not console.warnings


def test_deadline_stops_following():
    transport = FakeTransport()
    transport.runner.program("python3", agent(transport, [], slow=100))
    transport.connect()
    follower, _, _ = jobs(transport)
    with pytest.raises(PastDeadline):
        follower.follow(JOB, deadline=transport.clock.monotonic() + 10)


def test_a_box_that_stays_away_is_unreachable_within_the_wait():
    transport = FakeTransport()
    transport.runner.program("python3", agent(transport, [5]))
    transport.connect()
    transport.unreachable_until = transport.clock.monotonic() + 1000
    follower, _, output = jobs(transport, ready_wait=30)
    started = transport.clock.monotonic()
    with pytest.raises(Unreachable):
        follower.follow(JOB, deadline=None)
    assert 30 <= transport.clock.monotonic() - started <= 31
    assert output.data == LOG[:5]


def test_a_box_that_comes_back_in_time_is_reconnected():
    transport = FakeTransport()
    transport.runner.program("python3", agent(transport, [5]))
    transport.connect()
    transport.unreachable_until = transport.clock.monotonic() + 20
    follower, _, output = jobs(transport, ready_wait=30)
    assert follower.follow(JOB, deadline=None).exit_code == 3
    assert output.data == LOG
