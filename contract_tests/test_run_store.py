"""RunStore contract: the file store (real processes as drivers) and the fake,
plus a state machine that drives both with the same operations."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from runplz.adapters.fake_run_store import FakeRunStore
from runplz.adapters.file_run_store import FileRunStore
from runplz.domain.errors import UsageError
from runplz.domain.run_record import (
    JOB_MARK, Box, Detached, Ended, ImageBuilt, Note, Phase, PhaseDone, RunNotFound, Started, Teardown,
    encode_event,
)
from runplz.domain.run_summary import summarize

from .suites.run_store import RUN_A, RUN_B, T0, AbstractRunStoreTests, RunStoreFixtures, started


def _child(folder: str, body: str) -> list[str]:
    code = (
        "import sys\n"
        "from runplz.adapters.file_run_store import FileRunStore\n"
        "from runplz.domain.run_record import *\n"
        f"store = FileRunStore({folder!r})\n" + body
    )
    return [sys.executable, "-c", code]


class LeftJobTests:
    """`stop_job`: what a run's job left running on this host, and nothing else.
    ``left_job(run_id)`` leaves a process of that run's job running and returns
    a probe: is it still running?"""

    def test_nothing_left_is_nothing_found(self, store):
        store.begin(started(RUN_A))
        assert store.stop_job(RUN_A) == 0

    def test_the_runs_job_is_stopped_and_another_runs_is_not(self, store, left_job):
        store.begin(started(RUN_A))
        store.begin(started(RUN_B))
        mine, theirs = left_job(RUN_A), left_job(RUN_B)
        assert mine() and theirs()
        assert store.stop_job(RUN_A) == 1
        assert not mine() and theirs()
        assert store.stop_job(RUN_A) == 0

    def test_a_bad_id_is_refused(self, store):
        with pytest.raises(RunNotFound):
            store.stop_job("../up")


class TestFileRunStore(AbstractRunStoreTests, RunStoreFixtures, LeftJobTests):
    @pytest.fixture
    def folder(self, tmp_path):
        return str(tmp_path / "state" / "runs")

    @pytest.fixture
    def store(self, folder):
        return FileRunStore(folder)

    @pytest.fixture
    def reopen(self, folder):
        return lambda: FileRunStore(folder)

    @pytest.fixture
    def dead_driver(self, folder):
        def make(begun: Started, events) -> None:
            body = f"store.begin({begun!r})\n" + "".join(f"store.append({begun.run!r}, {e!r})\n" for e in events)
            subprocess.run(_child(folder, body), check=True)  # the driver writes, then exits

        return make

    @pytest.fixture
    def write_log(self, store):
        def write(run_id: str, data: bytes) -> None:
            with open(store.log_path(run_id), "ab") as handle:
                handle.write(data)

        return write

    @pytest.fixture
    def left_job(self):
        children = []

        def leave(run_id: str):
            child = subprocess.Popen(["sleep", "120"], env={**os.environ, JOB_MARK: run_id}, start_new_session=True)
            children.append(child)
            return lambda: child.poll() is None

        yield leave
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()

    def test_folders_are_private_and_files_too(self, folder, store):
        store.begin(started(RUN_A))
        assert os.stat(folder).st_mode & 0o077 == 0
        assert os.stat(os.path.join(folder, RUN_A)).st_mode & 0o777 == 0o700
        assert os.stat(os.path.join(folder, RUN_A, "events.jsonl")).st_mode & 0o777 == 0o600

    def test_a_sigkilled_driver_leaves_a_record_of_how_far_it_got(self, folder, store):
        body = (
            f"store.begin({started(RUN_A)!r})\n"
            f"store.append({RUN_A!r}, Phase('provision', {T0 + 1}))\n"
            f"store.append({RUN_A!r}, PhaseDone('provision', 2.0, {T0 + 3}))\n"
            f"store.append({RUN_A!r}, Phase('upload', {T0 + 3}))\n"
            "print('ready', flush=True)\nsys.stdin.read()\n"
        )
        child = subprocess.Popen(_child(folder, body), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            assert store.driver_alive(RUN_A)
            assert summarize(store.events(RUN_A), True, T0 + 5).status == "running (phase upload)"
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert not store.driver_alive(RUN_A)
        summary = summarize(store.events(RUN_A), store.driver_alive(RUN_A), T0 + 500)
        assert summary.status == "driver died during upload"
        assert summary.phase_seconds == (("provision", 2.0),)

    def test_two_processes_append_at_once(self, folder, store):
        store.begin(started(RUN_A))
        store.begin(started(RUN_B))
        loop = "for i in range(150):\n    store.append({run!r}, Note(f'{run} {{i}}', float(i)))\n"
        children = [
            subprocess.Popen(_child(folder, loop.format(run=run)))
            for run in (RUN_A, RUN_B, RUN_B)  # two writers on B: lines never interleave
        ]
        assert [child.wait(30) for child in children] == [0, 0, 0]
        notes_a = [e.text for e in store.events(RUN_A) if isinstance(e, Note)]
        assert notes_a == [f"{RUN_A} {i}" for i in range(150)]
        notes_b = [e.text for e in store.events(RUN_B) if isinstance(e, Note)]
        assert sorted(notes_b) == sorted([f"{RUN_B} {i}" for i in range(150)] * 2)

    def test_a_torn_last_line_is_ignored_and_the_next_event_still_lands(self, folder, store):
        store.begin(started(RUN_A))
        store.append(RUN_A, Phase("build", T0 + 1))
        path = os.path.join(folder, RUN_A, "events.jsonl")
        with open(path, "ab") as handle:
            handle.write(encode_event(Phase("run", T0 + 2)).encode()[:17])  # killed mid-write
        assert [type(e) for e in store.events(RUN_A)] == [Started, Phase]
        store.append(RUN_A, Ended(1, "failed", T0 + 3))
        assert store.events(RUN_A)[1:] == (Phase("build", T0 + 1), Ended(1, "failed", T0 + 3))

    def test_unknown_kinds_and_broken_lines_are_skipped(self, folder, store):
        store.begin(started(RUN_A))
        with open(os.path.join(folder, RUN_A, "events.jsonl"), "a") as handle:
            handle.write(json.dumps({"v": 2, "kind": "from_the_future", "at": 1}) + "\n{nonsense\n")
        store.append(RUN_A, Note("after", T0))
        assert [type(e) for e in store.events(RUN_A)] == [Started, Note]

    def test_a_reused_pid_is_not_the_driver(self, folder, store):
        store.begin(started(RUN_A))
        path = os.path.join(folder, RUN_A, "events.jsonl")
        with open(path) as handle:
            first, *rest = handle.read().splitlines(keepends=True)
        data = json.loads(first)
        data["driver_started"] = "1"  # this pid, another process's start time
        with open(path, "w") as handle:
            handle.write(json.dumps(data) + "\n" + "".join(rest))
        assert not store.driver_alive(RUN_A)

    def test_another_hosts_driver_is_taken_as_alive(self, folder, store):
        os.makedirs(os.path.join(folder, RUN_A))
        line = encode_event(attrs.evolve(started(RUN_A), driver_pid=1, driver_host="elsewhere.invalid"))
        with open(os.path.join(folder, RUN_A, "events.jsonl"), "w") as handle:
            handle.write(line + "\n")
        assert store.driver_alive(RUN_A)

    def test_an_unusable_folder_is_one_readable_error(self, tmp_path):
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        with pytest.raises(UsageError, match="RUNPLZ_STATE_DIR"):
            FileRunStore(str(blocker / "runs")).begin(started(RUN_A))

    def test_stray_entries_are_not_runs(self, folder, store):
        store.begin(started(RUN_A))
        os.makedirs(os.path.join(folder, "half-made"))
        open(os.path.join(folder, "notes.txt"), "w").close()
        assert store.runs() == (RUN_A,)
        with pytest.raises(RunNotFound):
            store.events("../escape")


class TestFakeRunStore(AbstractRunStoreTests, RunStoreFixtures, LeftJobTests):
    @pytest.fixture
    def store(self):
        return FakeRunStore()

    @pytest.fixture
    def left_job(self, store):
        def leave(run_id: str):
            store.start_job(run_id)
            return lambda: store.jobs.get(run_id, 0) > 0

        return leave

    def test_a_host_without_proc_cannot_look(self, store):
        store.begin(started(RUN_A))
        store.can_look = False
        assert store.stop_job(RUN_A) is None

    @pytest.fixture
    def reopen(self, store):
        return lambda: store

    @pytest.fixture
    def dead_driver(self, store):
        def make(begun: Started, events) -> None:
            driver, store.driver = store.driver, 4242
            store.begin(begun)
            for event in events:
                store.append(begun.run, event)
            store.driver = driver
            store.end_driver(4242)

        return make

    @pytest.fixture
    def write_log(self, store):
        return store.write_log


# Both stores, the same operations, the same answers.

IDS = ("20240501-120000-aaaaaa", "20240501-120000-aabbbb", "20240502-000000-cccccc", "20240502-000001-c")
_at = st.floats(min_value=0, max_value=4e9, allow_nan=False)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
EVENTS = st.one_of(
    st.builds(Phase, st.sampled_from(("provision", "upload", "run", "custom")), _at),
    st.builds(PhaseDone, st.sampled_from(("provision", "upload")), _at, _at, st.none() | st.integers(0, 2**40), _text),
    st.builds(Note, _text, _at),
    st.builds(Box, _text, st.floats(0, 100, allow_nan=False), _at, _text),
    st.builds(ImageBuilt, _text, _at),
    st.builds(Detached, _at),
    st.builds(Teardown, _text, st.sampled_from(("delete", "stop", "leave")), _at),
    st.builds(Ended, st.none() | st.integers(-255, 255), st.sampled_from(("ok", "failed", "timeout", "interrupted")), _at),
)


def _outcome(call):
    try:
        return ("ok", call())
    except (RunNotFound, ValueError) as exc:
        return ("raised", type(exc).__name__)


def _blank(events):
    if isinstance(events, tuple) and events and isinstance(events[0], Started):
        return (attrs.evolve(events[0], driver_pid=0, driver_started="", driver_host=""),) + events[1:]
    return events


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="runstore-")
        self.real = FileRunStore(os.path.join(self.folder, "runs"))
        self.fake = FakeRunStore()

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def both(self, op):
        real, fake = _outcome(lambda: op(self.real)), _outcome(lambda: op(self.fake))
        if real[0] == "ok" and isinstance(real[1], Started):
            real, fake = ("ok", _blank((real[1],))), ("ok", _blank((fake[1],)))
        assert real == fake
        return real

    @rule(run=st.sampled_from(IDS), at=_at, args=st.lists(_text, max_size=3))
    def begin(self, run, at, args):
        self.both(lambda store: store.begin(started(run, at=at, args=args)))

    @rule(run=st.sampled_from(IDS), event=EVENTS)
    def append(self, run, event):
        self.both(lambda store: store.append(run, event))

    @rule(run=st.sampled_from(IDS), data=st.binary(max_size=20))
    def log(self, run, data):
        if run in self.fake.runs():
            with open(self.real.log_path(run), "ab") as handle:
                handle.write(data)
            self.fake.write_log(run, data)

    @rule(run=st.sampled_from(IDS), offset=st.integers(0, 30), limit=st.integers(1, 30))
    def read_log(self, run, offset, limit):
        if run in self.fake.runs():
            self.both(lambda store: store.read_log(run, offset, limit))

    @rule(text=st.sampled_from(("last", "2024", "20240501-120000-aa", "20240502", "20240502-000000", "x", "")))
    def resolve(self, text):
        self.both(lambda store: store.resolve(text))

    @rule(run=st.sampled_from(IDS))
    def remove(self, run):
        self.both(lambda store: store.remove(run))

    @invariant()
    def same_runs_and_events(self):
        assert self.real.runs() == self.fake.runs()
        for run in IDS:
            real = _outcome(lambda: _blank(self.real.events(run)))
            assert real == _outcome(lambda: _blank(self.fake.events(run)))
            if real[0] == "ok":
                assert self.real.driver_alive(run) and self.fake.driver_alive(run)
                assert summarize(real[1], True, T0) == attrs.evolve(
                    summarize(_blank(self.fake.events(run)), True, T0)
                )


StoresAgree.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestStoresAgree = StoresAgree.TestCase
