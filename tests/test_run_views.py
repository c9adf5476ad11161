"""`runplz ps`, `status` and `logs [-f]` over run records: golden text and the follower."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.fake_run_store import FakeRunStore
from runplz.adapters.file_run_store import FileRunStore
from runplz.domain.run_record import Box, Ended, ImageBuilt, Note, Phase, PhaseDone, RunNotFound, Started
from runplz.domain.run_summary import DAY, summarize
from runplz.services.run_views import (
    duration, follow_log, prune_records, ps_table, status_text, summaries, summary_of,
)

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_714_564_800.0  # 2024-05-01 12:00:00Z


def started(run, backend="ssh", target="gpu1", at=T0, function="train"):
    return Started(run, backend, target, "demo", function, ("--steps", "2"), ("HF_TOKEN", "WANDB_API_KEY"),
                   "/home/me/proj/outputs", at)


def populated() -> FakeRunStore:
    store = FakeRunStore()
    ok = "20240501-120000-aaaaaa"
    store.begin(started(ok, "local", "docker"))
    for event in (Phase("build", T0 + 1), ImageBuilt("sha256:0123456789abcdef", T0 + 20), PhaseDone("build", 19, T0 + 20),
                  Phase("run", T0 + 20), PhaseDone("run", 62.5, T0 + 82.5), Ended(0, "ok", T0 + 83)):
        store.append(ok, event)
    store.end_driver(1)  # that driver exited
    died = "20240501-130000-bbbbbb"
    store.driver = 2
    store.begin(started(died, "brev", "runplz-demo-bbbbbb", at=T0 + 3600))
    for event in (Phase("provision", T0 + 3601), Box("gpu_1x_a10", 0.75, T0 + 3610, name="runplz-demo-bbbbbb"),
                  PhaseDone("provision", 120, T0 + 3721), Phase("upload", T0 + 3721),
                  PhaseDone("upload", 2.25, T0 + 3723.25, size=2_345_678), Phase("run", T0 + 3724),
                  Note("job is on epoch 3", T0 + 5000)):
        store.append(died, event)
    store.end_driver(2)
    live = "20240501-140000-cccccc"
    store.driver = 3
    store.begin(started(live, "brev", "my-a100", at=T0 + 7200, function="evaluate"))
    for event in (Phase("connect", T0 + 7201), Box("gpu_1x_a100", 1.5, T0 + 7200), PhaseDone("connect", 3, T0 + 7204),
                  Phase("upload", T0 + 7204)):
        store.append(live, event)
    failed = "20240501-150000-dddddd"
    store.begin(started(failed, "modal", "modal", at=T0 + 10800))
    store.append(failed, Phase("run", T0 + 10801))
    store.append(failed, Ended(3, "failed", T0 + 10900))
    return store


NOW = T0 + 7200 + 65


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RUNPLZ_REGOLD"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_ps_table_golden():
    _golden("run_ps.txt", ps_table(summaries(populated(), NOW)))
    assert ps_table(()) == "no runs recorded\n"


@pytest.mark.parametrize("run, name", [
    ("20240501-130000-bbbbbb", "run_status_died.txt"),
    ("20240501-140000-cccccc", "run_status_running.txt"),
    ("20240501-120000-aaaaaa", "run_status_ok.txt"),
])
def test_status_golden(run, name):
    store = populated()
    _golden(name, status_text(summary_of(store, run, NOW), log_path=f"/state/runs/{run}/driver.log"))


def test_summaries_limit_and_unknown():
    store = populated()
    assert [s.run for s in summaries(store, NOW, limit=2)] == ["20240501-150000-dddddd", "20240501-140000-cccccc"]
    with pytest.raises(RunNotFound):
        summary_of(store, "nope", NOW)


def test_durations():
    assert [duration(s) for s in (None, 0, 59.94, 60, 3599, 3600, 90061)] == [
        "-", "0.0s", "59.9s", "1m00s", "59m59s", "1h00m", "25h01m"]


def test_prune_records_removes_only_what_the_rule_selects():
    store = populated()
    removed = prune_records(store, NOW + 30 * DAY, keep_days=14, keep_last=1)
    assert removed == ("20240501-120000-aaaaaa", "20240501-130000-bbbbbb")  # the live run stays, the newest too
    assert prune_records(store, NOW + 30 * DAY, keep_days=14, keep_last=0) == ()  # driver 3 still runs both
    store.end_driver(3)
    assert prune_records(store, NOW + 30 * DAY, keep_days=14, keep_last=0) == (
        "20240501-140000-cccccc", "20240501-150000-dddddd")
    assert store.runs() == ()


# ---------------------------------------------------------------- the follower

RUN = "20240501-120000-aaaaaa"


class ScriptedClock(FakeClock):
    """Runs ``steps[i]`` at the i-th sleep: what the world does between two polls."""

    def __init__(self, steps):
        super().__init__()
        self.steps = list(steps)

    def sleep(self, seconds):
        super().sleep(seconds)
        if self.steps:
            self.steps.pop(0)()


def test_without_follow_prints_what_is_there_and_returns():
    store = FakeRunStore()
    store.begin(started(RUN))
    store.write_log(RUN, "one\n")
    out = io.StringIO()
    assert follow_log(store, RUN, FakeClock(), out) == 4
    assert out.getvalue() == "one\n"


def test_follow_until_ended_loses_nothing_written_before_the_end():
    store = FakeRunStore()
    store.begin(started(RUN))
    store.write_log(RUN, "one\n")
    steps = [
        lambda: store.write_log(RUN, "two\n"),
        lambda: None,
        lambda: (store.write_log(RUN, "last words \xe9"[:-1]), store.write_log(RUN, "\xe9\n"),
                 store.append(RUN, Ended(0, "ok", T0))),
        lambda: pytest.fail("followed past the end"),
    ]
    clock = ScriptedClock(steps)
    out = io.StringIO()
    follow_log(store, RUN, clock, out, follow=True, poll=0.5)
    assert out.getvalue() == "one\ntwo\nlast words \xe9\n"
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_follow_stops_when_the_driver_dies_and_works_after():
    store = FakeRunStore()
    store.begin(started(RUN))
    clock = ScriptedClock([lambda: (store.write_log(RUN, "partial"), store.kill(RUN))])
    out = io.StringIO()
    follow_log(store, RUN, clock, out, follow=True)
    assert out.getvalue() == "partial"
    again = io.StringIO()
    follow_log(store, RUN, FakeClock(), again, follow=True)  # from another terminal, after the death
    assert again.getvalue() == "partial"


def test_a_split_multibyte_character_and_bad_bytes():
    store = FakeRunStore()
    store.begin(started(RUN))
    store.write_log(RUN, "\u20ac".encode()[:2])
    clock = ScriptedClock([lambda: (store.write_log(RUN, "\u20ac".encode()[2:] + b"\xff\n"), store.kill(RUN))])
    out = io.StringIO()
    follow_log(store, RUN, clock, out, follow=True)
    assert out.getvalue() == "\u20ac\ufffd\n"


class YieldingClock(FakeClock):
    def sleep(self, seconds):
        super().sleep(seconds)
        time.sleep(0.0005)  # let the writer thread run


def test_two_followers_and_a_writer_thread():
    store = FakeRunStore()
    store.begin(started(RUN))
    lines = [f"line {i}\n" for i in range(300)]

    def writer():
        for index, line in enumerate(lines):
            store.write_log(RUN, line)
            if index % 50 == 0:
                time.sleep(0.001)
        store.append(RUN, Ended(0, "ok", T0))

    outs = [io.StringIO(), io.StringIO()]
    followers = [threading.Thread(target=follow_log, args=(store, RUN, YieldingClock(), out, True)) for out in outs]
    writing = threading.Thread(target=writer)
    for thread in followers + [writing]:
        thread.start()
    for thread in followers + [writing]:
        thread.join(20)
        assert not thread.is_alive()
    assert outs[0].getvalue() == outs[1].getvalue() == "".join(lines)


def test_follow_a_real_driver_that_was_killed(tmp_path):
    folder = str(tmp_path / "runs")
    code = (
        "import os, signal\n"
        "from runplz.adapters.file_run_store import FileRunStore\n"
        "from runplz.domain.run_record import *\n"
        f"store = FileRunStore({folder!r})\n"
        f"store.begin({started(RUN)!r})\n"
        f"store.append({RUN!r}, Phase('run', {T0 + 1}))\n"
        f"open(store.log_path({RUN!r}), 'a').write('building\\nrunning\\n')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    store = FileRunStore(folder)
    out = io.StringIO()
    follow_log(store, RUN, FakeClock(), out, follow=True)
    assert out.getvalue() == "building\nrunning\n"
    assert summarize(store.events(RUN), store.driver_alive(RUN), T0 + 9).status == "driver died during run"
