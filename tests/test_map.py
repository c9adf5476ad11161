"""`.map()` / `.starmap()`: the rules (property tests), the generic fan-out over
test backends, and the API over the local backend with the shipped fakes."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplz import Image, RemoteError, RunTimeout
from runplz.domain.call import FunctionCall
from runplz.domain.errors import ArgumentError, ConfigError, ItemCancelled, NoBackend
from runplz.domain.fan_out import Arrivals, MapOptions, Outcome, Tally, indexed, item_folder, map_inputs, plain_inputs
from runplz.domain.spec import function_spec
from runplz.loader import load_app
from runplz.ports.backend import Backend, MapBackend, StoppableBackend
from runplz.services.fan_out import Stops, fan_out
from runplz.testing import FakeClock, RecordingConsole, fake_container

from .jobs import make_repo


# --- the rules ------------------------------------------------------------------


@given(st.permutations(list(range(12))))
def test_ordered_arrivals_are_given_in_input_order_whatever_the_finishing_order(order):
    arrivals = Arrivals(12, ordered=True)
    given_out, arrived = [], set()
    for index in order:
        arrived.add(index)
        given_out += [r.index for r in arrivals.add(Outcome(index, value=index))]
        first_missing = min(set(range(13)) - arrived)
        assert given_out == list(range(first_missing))  # all before the first gap, nothing after it
    assert given_out == list(range(12))


@given(st.permutations(list(range(9))))
def test_unordered_arrivals_are_given_as_they_come(order):
    arrivals = Arrivals(9, ordered=False)
    assert [r.index for i in order for r in arrivals.add(Outcome(i))] == list(order)


def test_an_arrival_twice_or_out_of_range_is_refused():
    arrivals = Arrivals(2, ordered=True)
    arrivals.add(Outcome(0))
    for bad in (0, 2, -1):
        with pytest.raises(ValueError):
            arrivals.add(Outcome(bad))


@given(st.lists(st.sampled_from(["start", "ok", "fail", "cancel_running", "cancel_pending"]), max_size=40))
def test_the_tally_always_adds_up(steps):
    tally = Tally(10)
    for step in steps:
        if step == "start" and tally.pending:
            tally.started()
        elif step in ("ok", "fail") and tally.running:
            tally.ended(failed=step == "fail")
        elif step == "cancel_running" and tally.running:
            tally.stopped(was_running=True)
        elif step == "cancel_pending" and tally.pending:
            tally.stopped(was_running=False)
        counts = (tally.pending, tally.running, tally.done, tally.failed, tally.cancelled)
        assert min(counts) >= 0 and sum(counts) == 10
        assert tally.line() == (
            f"done {tally.done}, running {tally.running}, pending {tally.pending}, failed {tally.failed}"
        )


def test_map_zips_to_the_shortest_and_starmap_spreads_tuples():
    assert map_inputs("f", ([1, 2, 3], iter(["a", "b"])), star=False) == [(1, "a"), (2, "b")]
    assert map_inputs("f", ([(1, 2), [3, 4]],), star=True) == [(1, 2), (3, 4)]
    with pytest.raises(ArgumentError, match=r"f.starmap\(\) input 1 must be a tuple"):
        map_inputs("f", ([(1,), 5],), star=True)
    with pytest.raises(ArgumentError, match="argument 1 must be an iterable"):
        map_inputs("f", ("abc",), star=False)
    with pytest.raises(ArgumentError, match="needs an iterable"):
        map_inputs("f", (), star=False)


@given(st.integers(0, 20), st.integers(0, 20))
def test_a_bad_input_is_named_by_its_index(size, bad):
    inputs = [(i,) for i in range(size)]
    if bad < size:
        inputs[bad] = ({1, 2},)
        with pytest.raises(ArgumentError, match=rf"^f.map\(\) input {bad}: "):
            plain_inputs("f", inputs, {"k": (1, 2)})
    else:
        assert plain_inputs("f", inputs, {"k": (1, 2)}) == [([i], {"k": [1, 2]}) for i in range(size)]


def test_a_failure_names_its_index():
    error = indexed(RemoteError("ValueError", "five", "tb", 1), 5)
    assert (error.index, str(error), error.remote_type, error.exit_code) == (5, "input 5: ValueError: five", "ValueError", 1)
    assert str(RemoteError("ValueError", "five", "tb", 1)) == "ValueError: five"  # the seed's shape, unchanged
    timeout = indexed(RunTimeout("f ran past 1s"), 3)
    assert isinstance(timeout, RunTimeout) and timeout.index == 3
    assert [item_folder(i) for i in (0, 7, 12)] == ["0", "7", "12"]
    with pytest.raises(ValueError):
        item_folder(-1)


# --- the generic fan-out over test backends -------------------------------------------------


SPEC = function_spec("f", image=Image.from_registry("python:3.11-slim"))


def _calls(n):
    return [FunctionCall("a", SPEC, "/x/job.py", [i], {}, run_id=f"run-{i}", index=i) for i in range(n)]


class SleepyBackend:
    """Item i sleeps ``delays[i]`` and returns i*i; ``fail`` indices raise RemoteError.
    Stoppable: a stopped call raises `ItemCancelled` within a poll."""

    def __init__(self, delays, fail=()):
        self.delays, self.fail = delays, set(fail)
        self.stops = Stops()
        self.started, self.ended, self.live, self.peak = [], [], 0, 0
        self.lock = threading.Lock()

    def call(self, call):
        index = call.args[0]
        with self.lock:
            self.started.append(index)
            self.live += 1
            self.peak = max(self.peak, self.live)
        try:
            with self.stops.waiting(call.run_id):
                deadline = time.monotonic() + self.delays[index]
                while time.monotonic() < deadline:
                    time.sleep(0.005)
            if index in self.fail:
                raise RemoteError("ValueError", f"bad {index}", "", 1)
            self.ended.append(index)
            return index * index
        finally:
            with self.lock:
                self.live -= 1

    def stop(self, call):
        self.stops.ask(call.run_id)


class PlainBackend(SleepyBackend):
    """No ``stop``: the fan-out interrupts its thread instead; it cleans up on interrupt."""

    stop = None  # type: ignore[assignment]

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.cleaned = []

    def call(self, call):
        try:
            return SleepyBackend.call(self, FunctionCall("a", SPEC, "/x", call.args, {}, index=call.index))
        except KeyboardInterrupt:
            self.cleaned.append(call.args[0])
            raise


def _run(backend, n, **options):
    console = RecordingConsole()
    gen = fan_out(backend, _calls(n), MapOptions(**options), console, FakeClock(), "f")
    return gen, console


def test_results_in_input_order_with_at_most_k_at_once():
    backend = SleepyBackend([0.05, 0.01, 0.03, 0.0, 0.02, 0.04, 0.0, 0.01])
    gen, console = _run(backend, 8, concurrency=3)
    assert list(gen) == [i * i for i in range(8)]
    assert backend.peak <= 3 and sorted(backend.started) == list(range(8))
    assert console.progresses[-1] == "" and "done 8, running 0, pending 0, failed 0" in console.progresses
    assert console.infos[-1].startswith("f.map: 8 done, 0 failed of 8 in ")


def test_unordered_results_come_as_they_finish():
    backend = SleepyBackend([0.3, 0.0, 0.0])
    gen, _ = _run(backend, 3, concurrency=3, order_outputs=False)
    assert list(gen)[-1] == 0


def test_the_first_failure_raises_naming_its_index_and_nothing_more_starts():
    backend = SleepyBackend([0.5, 0.5, 0.0, 0.0, 0.0, 0.0], fail=[2])
    gen, console = _run(backend, 6, concurrency=3)
    with pytest.raises(RemoteError) as caught:
        list(gen)
    assert caught.value.index == 2 and str(caught.value) == "input 2: ValueError: bad 2"
    assert sorted(backend.started) == [0, 1, 2]  # 3..5 never started
    assert backend.ended == [] and backend.live == 0  # 0 and 1 were stopped, not waited for
    assert console.infos[-1].startswith("f.map: 0 done, 1 failed, 5 cancelled of 6")


def test_return_exceptions_gives_each_failure_in_its_place_and_cancels_nothing():
    backend = SleepyBackend([0.0] * 5, fail=[1, 3])
    gen, _ = _run(backend, 5, concurrency=2, return_exceptions=True)
    results = list(gen)
    assert [r if not isinstance(r, RemoteError) else r.index for r in results] == [0, 1, 4, 3, 16]
    assert all(isinstance(results[i], RemoteError) for i in (1, 3))


def test_leaving_the_loop_early_stops_what_runs():
    backend = SleepyBackend([0.0, 5.0, 5.0, 5.0])
    gen, _ = _run(backend, 4, concurrency=2)
    assert next(gen) == 0
    started = time.monotonic()
    gen.close()
    assert time.monotonic() - started < 3 and backend.live == 0 and 3 not in backend.started


def test_a_backend_without_stop_is_interrupted_in_its_thread():
    backend = PlainBackend([0.0, 5.0, 0.0], fail=[2])
    assert not isinstance(backend, StoppableBackend) and isinstance(backend, Backend)
    gen, _ = _run(backend, 3, concurrency=3)
    started = time.monotonic()
    with pytest.raises(RemoteError, match="input 2"):
        list(gen)
    assert time.monotonic() - started < 3 and backend.cleaned == [1] and backend.live == 0


class NativeMapper:
    """A backend with a fan-out of its own (`MapBackend`), as Slurm's job array will be."""

    def __init__(self):
        self.asked = None

    def call(self, call):
        raise AssertionError("map() is used, not call()")

    def map(self, calls, concurrency, sink, cancel):
        self.asked = concurrency
        for call in reversed(calls):
            sink.started(call.index)
            sink.finished(call.index, call.args[0] + 100)


def test_a_map_backend_is_used_for_its_own_fan_out():
    backend = NativeMapper()
    assert isinstance(backend, MapBackend)
    gen, _ = _run(backend, 4, concurrency=7)
    assert list(gen) == [100, 101, 102, 103] and backend.asked == 7


def test_stops_before_the_job_starts_and_during_it():
    stops = Stops()
    stops.ask("r1")
    with pytest.raises(ItemCancelled):
        with stops.waiting("r1"):
            raise AssertionError("never reached")
    caught = []

    def wait():
        try:
            with stops.waiting("r2"):
                while True:
                    time.sleep(0.005)
        except ItemCancelled:
            caught.append(True)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.1)
    assert stops.ask("r2") is True
    thread.join(2)
    assert caught == [True]


# --- the API, over the local native backend with the fakes ---------------------------------


JOB = '''
import os, time
from runplz import App, Image

app = App("mapjob")


@app.function(image=Image.from_registry("python:3.11-slim"))
def square(x, scale=1, fail_at=-1):
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "value.txt"), "w") as handle:
        handle.write(str(x))
    if x == fail_at:
        raise ValueError(f"no {x}")
    return x * x * scale


@app.function(image=Image.from_registry("python:3.11-slim"))
def add(a, b):
    return a + b
'''


@pytest.fixture
def job(tmp_path):
    module, app = load_app(str(make_repo(tmp_path / "repo", JOB)))
    container = fake_container(str(tmp_path / "cache"))
    app.bind("local", outputs_dir=str(tmp_path / "out"), native=True, container=container)
    module.out, module.container = tmp_path / "out", container
    return module


def test_map_results_outputs_per_index_and_records(job):
    assert list(job.square.map(range(4), kwargs={"scale": 2}, concurrency=2)) == [0, 2, 8, 18]
    assert sorted(p.name for p in job.out.iterdir()) == ["0", "1", "2", "3"]
    assert [(job.out / str(i) / "value.txt").read_text() for i in range(4)] == ["0", "1", "2", "3"]
    store = job.container.run_store()
    outputs = sorted(store.events(run)[0].outputs for run in store.runs())
    assert outputs == [str(job.out / str(i)) for i in range(4)]


def test_starmap_and_a_single_input_map_still_gets_its_folder(job):
    assert list(job.add.starmap([(1, 2), [3, 4]])) == [3, 7]
    assert list(job.square.map([3])) == [9]
    assert (job.out / "0" / "value.txt").read_text() == "3"


def test_failure_raises_with_index_or_comes_back_in_place(job):
    with pytest.raises(RemoteError) as caught:
        list(job.square.map(range(3), kwargs={"fail_at": 1}, concurrency=1))
    assert caught.value.index == 1 and caught.value.remote_type == "ValueError"
    assert not (job.out / "2").exists()  # never started
    results = list(job.square.map(range(3), kwargs={"fail_at": 1}, return_exceptions=True))
    assert results[0] == 0 and results[2] == 4 and isinstance(results[1], RemoteError) and results[1].index == 1


def test_bad_inputs_and_options_raise_before_anything_runs(job):
    with pytest.raises(ArgumentError, match=r"square.map\(\) input 2: argument 0"):
        job.square.map([1, 2, {3}])
    with pytest.raises(ArgumentError, match="kwargs"):
        job.square.map([1], kwargs=[1])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="concurrency"):
            job.square.map([1], concurrency=bad)
    assert not job.out.exists() and not job.container.run_store().runs()


def test_nothing_runs_until_iterated_and_unbound_map_says_what_to_do(job, tmp_path):
    job.square.map(range(3))
    assert not job.out.exists()
    module, _ = load_app(str(make_repo(tmp_path / "other", JOB)))
    with pytest.raises(NoBackend, match=r"square.map\(\) has no backend"):
        module.square.map([1])


def test_a_backend_map_does_not_run_on_yet_is_refused_before_anything_runs(job):
    from runplz.domain.errors import UsageError

    class NoMapYet:
        map_unsupported = "elsewhere"

        def call(self, call):  # pragma: no cover - the refusal comes first
            raise AssertionError("called")

    job.square.app._backend = NoMapYet()
    with pytest.raises(UsageError, match=r"square.map\(\) does not run on the elsewhere backend yet"):
        job.square.map([1, 2])
    assert not job.out.exists()


def test_map_inputs_leave_the_status_line_to_the_map_and_share_one_log(job):
    console = job.container.console()
    assert list(job.square.map(range(3), concurrency=2)) == [0, 1, 4]
    phases = [m for m in console.progresses if m and not m.startswith(("done", "running", "pending", "failed"))]
    assert not [m for m in phases if m.endswith("\u2026")], phases  # no input's "build…" / "run…"
    store = job.container.run_store()
    starts = [store.events(run)[0] for run in store.runs()]
    assert sorted(s.index for s in starts) == [0, 1, 2] and len({s.map_id for s in starts}) == 1
    assert len({s.log for s in starts}) == 1


def test_every_input_of_a_map_gets_its_own_run_id_even_when_the_random_part_repeats(monkeypatch):
    """Ids made in one second differ only in 3 random bytes: two inputs sharing
    one would share a box, a run folder or a container."""
    from runplz.services import fan_out as fan

    repeats = iter(["20240101-000000-aaaaaa"] * 3 + [f"20240101-000000-{i:06x}" for i in range(10)])
    monkeypatch.setattr(fan, "new_run_id", lambda clock: next(repeats))
    map_id, items = fan.item_calls(_calls(4), "/out", FakeClock())
    ids = [map_id] + [item.run_id for item in items]
    assert len(set(ids)) == len(ids)


def test_a_stop_waits_for_a_shielded_block_then_lands():
    """Outputs being fetched (or a box being deleted) are not cut short by a map's stop."""
    from runplz.services import fan_out as fan
    from runplz.services.map_shield import shielded

    inside, release, seen = threading.Event(), threading.Event(), []

    def work():
        try:
            with shielded():
                inside.set()
                release.wait(5)
                seen.append("block finished")
            seen.append("after the block")  # never: the held stop lands as the block ends
        except ItemCancelled:
            seen.append("cancelled")

    thread = threading.Thread(target=work)
    thread.start()
    assert inside.wait(5)
    assert fan._interrupt(thread)  # held, not raised
    time.sleep(0.2)
    release.set()
    thread.join(5)
    assert seen == ["block finished", "cancelled"]
