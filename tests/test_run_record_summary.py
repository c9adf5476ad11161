"""The fold of a run's events into its summary, and the retention rule."""

from __future__ import annotations

import pytest

from runplz.domain.run_record import PHASES, Box, Detached, Ended, ImageBuilt, Note, Phase, PhaseDone, Started
from runplz.domain.run_summary import DAY, RunSummary, describe, prune_candidates, prune_remote, summarize

T0 = 1_714_564_800.0


def start(run="20240501-120000-a1b2c3", at=T0):
    return Started(run, "ssh", "gpu1", "demo", "train", ("2",), ("HF_TOKEN",), "/out", at, 7, "1", "here")


def through(index: int, open_last: bool = True):
    """Events of a run that finished phases before ``index`` and (maybe) opened phase ``index``."""
    events = [start()]
    at = T0
    for name in PHASES[:index]:
        events += [Phase(name, at), PhaseDone(name, 10.0, at + 10)]
        at += 10
    if open_last:
        events.append(Phase(PHASES[index], at))
    return events, at


@pytest.mark.parametrize("index", range(len(PHASES)))
def test_running_in_every_phase(index):
    events, at = through(index)
    summary = summarize(events, driver_alive=True, now=at + 5)
    name = PHASES[index]
    assert (summary.state, summary.status, summary.phase) == ("running", f"running (phase {name})", name)
    assert summary.phase_seconds == tuple((done, 10.0) for done in PHASES[:index])
    assert summary.open_phase_seconds == 5
    assert summary.runtime == at + 5 - T0
    assert summary.last_event == f"{name} started" and summary.last_event_at == at
    assert not summary.finished


@pytest.mark.parametrize("index", range(len(PHASES)))
def test_died_during_every_phase(index):
    events, at = through(index)
    summary = summarize(events, driver_alive=False, now=at + 999)
    assert (summary.state, summary.status) == ("died", f"driver died during {PHASES[index]}")
    assert summary.runtime == at - T0  # up to the last thing it wrote, not up to now
    assert summary.open_phase_seconds is None and summary.finished


@pytest.mark.parametrize("index", range(1, len(PHASES) + 1))
def test_died_between_phases(index):
    events, _ = through(index, open_last=False) if index < len(PHASES) else through(index - 1, open_last=False)
    if index == len(PHASES):
        events += [Phase("collect", T0 + 60), PhaseDone("collect", 1.0, T0 + 61)]
    summary = summarize(events, driver_alive=False, now=T0 + 1e6)
    assert summary.status == f"driver died after {PHASES[index - 1]}"
    assert summary.phase is None


def test_died_before_its_first_phase_and_running_between_phases():
    assert summarize([start()], False, T0 + 5).status == "driver died before its first phase"
    assert summarize([start()], True, T0 + 5).status == "running"


@pytest.mark.parametrize("outcome, code, status", [
    ("ok", 0, "ok (exit 0)"), ("failed", 3, "failed (exit 3)"), ("failed", None, "failed"),
    ("timeout", 124, "timed out"), ("interrupted", 130, "interrupted"),
])
def test_ended(outcome, code, status):
    events = [start(), Phase("run", T0 + 1), Ended(code, outcome, T0 + 30)]
    for alive in (True, False):
        summary = summarize(events, driver_alive=alive, now=T0 + 1000)
        assert (summary.state, summary.status, summary.exit_code, summary.outcome) == ("ended", status, code, outcome)
        assert summary.runtime == 30 and summary.ended_at == T0 + 30
        assert summary.phase == "run"  # the phase it ended in
        assert summary.finished is (not alive)  # a driver still tearing down is not finished yet


def test_detached():
    events = [start(), Phase("run", T0 + 10), Box("a10", 3.6, T0), Detached(T0 + 11)]
    alive = summarize(events, True, T0 + 20)
    assert alive.status == "running (phase run)"
    gone = summarize(events, False, T0 + 100)
    assert (gone.state, gone.status, gone.runtime, gone.cost, gone.finished) == (
        "detached", "detached (phase run)", 100, pytest.approx(0.1), False)
    assert gone.open_phase_seconds == 90 and gone.last_event == "driver detached"
    assert prune_candidates([gone], T0 + 1e9, keep_days=0, keep_last=0) == ()
    over = summarize(events + [Ended(0, "ok", T0 + 50)], False, T0 + 100)
    assert (over.state, over.runtime) == ("ended", 50)


def test_identity_fields_and_extras():
    events = [start(), ImageBuilt("sha256:abc", T0 + 2), Note("first", T0 + 3), Note("second", T0 + 4),
              Phase("upload", T0 + 5), PhaseDone("upload", 1.0, T0 + 6, size=100),
              Phase("upload", T0 + 7), PhaseDone("upload", 2.5, T0 + 9.5, size=50),
              Phase("warmup", T0 + 10), PhaseDone("warmup", 4.0, T0 + 14),
              Phase("provision", T0 + 14), PhaseDone("provision", 1.0, T0 + 15)]
    summary = summarize(events, True, T0 + 20)
    assert (summary.run, summary.backend, summary.target, summary.app, summary.function) == (
        "20240501-120000-a1b2c3", "ssh", "gpu1", "demo", "train")
    assert summary.args == ("2",) and summary.env_names == ("HF_TOKEN",) and summary.outputs == "/out"
    assert summary.image_hash == "sha256:abc" and summary.notes == ("first", "second")
    assert summary.phase_seconds == (("provision", 1.0), ("upload", 3.5), ("warmup", 4.0))  # known phases first
    assert summary.phase_sizes == (("upload", 150),)
    assert summary.cost is None and summary.instance_type is None
    assert (summary.driver_pid, summary.driver_host, summary.driver_alive) == (7, "here", True)


def test_cost_is_price_times_hours_from_the_box():
    box = Box("gpu_1x_a10", 0.75, T0 + 100, name="runplz-x")
    running = summarize([start(), Phase("provision", T0 + 1), box], True, now=T0 + 100 + 1800)
    assert running.cost == pytest.approx(0.375) and not running.cost_is_lower_bound
    assert (running.instance_type, running.box_name, running.price_per_hour) == ("gpu_1x_a10", "runplz-x", 0.75)
    ended = summarize([start(), box, Ended(0, "ok", T0 + 100 + 7200)], False, now=T0 + 1e6)
    assert ended.cost == pytest.approx(1.5)
    died = summarize([start(), box, Phase("run", T0 + 100 + 3600)], False, now=T0 + 1e6)
    assert died.cost == pytest.approx(0.75) and died.cost_is_lower_bound
    fallback = summarize([start(), box, Box("gpu_1x_a100", 2.0, T0 + 200), Ended(1, "failed", T0 + 200 + 900)],
                         False, now=T0)
    assert fallback.cost == pytest.approx(0.5) and fallback.instance_type == "gpu_1x_a100"
    assert summarize([start(), box], True, now=T0).cost == 0  # a clock behind the box never bills negative


def test_no_start_record():
    summary = summarize([Phase("run", T0)], False, T0, run="20240501-x")
    assert (summary.run, summary.state, summary.runtime) == ("20240501-x", "unknown", None)
    assert summarize([], True, T0).last_event == ""


def test_describe():
    assert describe(PhaseDone("upload", 1.25, T0, size=2_345_678, detail="rsync")) == "upload done in 1.2s (2.3 MB, rsync)"
    assert describe(PhaseDone("collect", 1, T0, size=12)) == "collect done in 1.0s (12 B)"
    assert describe(Box("a10", 0.5, T0)) == "box a10 at $0.50/h"
    assert describe(Ended(2, "failed", T0)) == "ended: failed (exit 2)"
    assert describe(start()) == "started on ssh"


# ---------------------------------------------------------------- retention

def run(n: int, state: str, at: float, alive: bool = False, ended_at: float | None = None) -> RunSummary:
    status = {"running": "running", "ended": "ok (exit 0)", "died": "driver died during run", "unknown": "?"}[state]
    return RunSummary(
        run=f"run-{n:03d}", state=state, status=status, phase=None, started_at=None if state == "unknown" else at,
        ended_at=ended_at if ended_at is not None else (at + 60 if state == "ended" else None),
        last_event_at=at + 30, driver_alive=alive,
    )


NOW = T0 + 100 * DAY


def test_prune_only_old_finished_runs_beyond_the_newest():
    old = NOW - 30 * DAY
    runs = [
        run(1, "ended", old), run(2, "died", old), run(3, "running", old, alive=True),
        run(4, "ended", old, alive=True),  # Ended written, driver still tearing down
        run(5, "died", NOW - 3 * DAY), run(6, "unknown", old), run(7, "ended", NOW - 20 * DAY, ended_at=NOW - DAY),
    ]
    assert prune_candidates(runs, NOW, keep_days=14, keep_last=0) == ("run-001", "run-002")
    assert prune_candidates(runs, NOW, keep_days=14, keep_last=50) == ()
    newest_kept = [run(n, "ended", NOW - (40 - n) * DAY) for n in range(10)]
    assert prune_candidates(newest_kept, NOW, keep_days=14, keep_last=3) == tuple(f"run-{n:03d}" for n in range(7))
    assert prune_candidates(newest_kept, NOW, keep_days=35, keep_last=3) == ("run-000", "run-001", "run-002", "run-003", "run-004")


def test_a_running_run_is_never_pruned_however_old():
    ancient = [run(n, "running", T0, alive=True) for n in range(5)]
    assert prune_candidates(ancient, NOW, keep_days=0, keep_last=0) == ()


def test_remote_folders_follow_the_local_records():
    old = NOW - 30 * DAY
    runs = [run(1, "ended", old), run(2, "running", old, alive=True)]
    assert prune_remote(["run-002", "run-001", "run-999"], runs, NOW, keep_last=0) == ("run-001",)
