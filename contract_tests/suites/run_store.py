"""The `RunStore` contract."""

from __future__ import annotations

import pytest

from runplz.domain.errors import UsageError
from runplz.domain.run_record import Box, Ended, ImageBuilt, Note, Phase, PhaseDone, RunNotFound, Started
from runplz.domain.run_summary import summarize
from runplz.ports.run_store import RunStore

T0 = 1_714_564_800.0  # 2024-05-01 12:00:00Z


def started(run: str, at: float = T0, **changes) -> Started:
    fields = dict(
        run=run, backend="brev", target="gpu-box", app="demo", function="train",
        args=("--steps", "2"), env_names=("HF_TOKEN",), outputs="/tmp/out", at=at,
    )
    fields.update(changes)
    return Started(**fields)


RUN_A = "20240501-120000-aaaaaa"
RUN_B = "20240501-120500-bbbbbb"
RUN_C = "20240502-080000-abcdef"


class RunStoreFixtures:
    @pytest.fixture
    def store(self) -> RunStore:
        raise NotImplementedError

    @pytest.fixture
    def reopen(self, store):
        """A new store object over the same storage."""
        raise NotImplementedError

    @pytest.fixture
    def dead_driver(self, store):
        """``dead_driver(started, events)``: a run begun (with those events) by a driver that is gone."""
        raise NotImplementedError

    @pytest.fixture
    def write_log(self, store):
        """``write_log(run_id, data)``: append bytes to the run's driver log."""
        raise NotImplementedError


class AbstractRunStoreTests:
    def test_is_a_run_store(self, store):
        assert isinstance(store, RunStore)

    def test_begin_stamps_the_driver_and_events_come_back_equal(self, store):
        stamped = store.begin(started(RUN_A))
        assert stamped.driver_pid > 0 and stamped.driver_host
        later = [Phase("provision", T0 + 1), Box("gpu_1x_a10", 0.75, T0 + 2, name="runplz-x"),
                 PhaseDone("provision", 40.5, T0 + 41), Phase("upload", T0 + 41),
                 PhaseDone("upload", 2.0, T0 + 43, size=12345, detail="rsync"), ImageBuilt("sha256:ab", T0 + 50),
                 Note("hello", T0 + 51), Ended(0, "ok", T0 + 60)]
        for event in later:
            store.append(RUN_A, event)
        assert store.events(RUN_A) == (stamped, *later)

    def test_begin_twice_or_with_a_bad_id_is_refused(self, store):
        store.begin(started(RUN_A))
        with pytest.raises(ValueError):
            store.begin(started(RUN_A))
        for bad in ("", "../up", "a/b", ".hidden"):
            with pytest.raises(ValueError):
                store.begin(started(bad))

    def test_unknown_runs_and_second_starts(self, store):
        with pytest.raises(RunNotFound):
            store.append(RUN_A, Note("x", T0))
        with pytest.raises(RunNotFound):
            store.events(RUN_A)
        store.begin(started(RUN_A))
        with pytest.raises(ValueError):
            store.append(RUN_A, started(RUN_A))

    def test_runs_newest_first(self, store):
        assert store.runs() == ()
        for run in (RUN_B, RUN_C, RUN_A):
            store.begin(started(run))
        assert store.runs() == (RUN_C, RUN_B, RUN_A)

    def test_resolve_last_and_prefixes(self, store):
        with pytest.raises(RunNotFound, match="no runs"):
            store.resolve("last")
        for run in (RUN_A, RUN_B, RUN_C):
            store.begin(started(run))
        assert store.resolve("last") == RUN_C
        assert store.resolve(RUN_B) == RUN_B
        assert store.resolve("20240502") == RUN_C
        assert store.resolve("20240501-1205") == RUN_B
        with pytest.raises(RunNotFound, match="matches 2 runs") as ambiguous:
            store.resolve("20240501")
        assert isinstance(ambiguous.value, UsageError) and "\n" not in str(ambiguous.value)
        with pytest.raises(RunNotFound, match="no run matches"):
            store.resolve("1999")

    def test_records_survive_a_new_store(self, store, reopen):
        store.begin(started(RUN_A))
        store.append(RUN_A, Phase("build", T0 + 1))
        again = reopen()
        assert again.runs() == (RUN_A,)
        assert [type(event) for event in again.events(RUN_A)] == [Started, Phase]

    def test_a_live_driver_is_alive(self, store):
        store.begin(started(RUN_A))
        store.append(RUN_A, Phase("upload", T0 + 1))
        assert store.driver_alive(RUN_A)
        assert summarize(store.events(RUN_A), store.driver_alive(RUN_A), T0 + 2).status == "running (phase upload)"

    def test_a_dead_driver_shows_where_it_died(self, store, dead_driver):
        dead_driver(started(RUN_B), [Phase("provision", T0 + 1), PhaseDone("provision", 3, T0 + 4),
                                      Phase("connect", T0 + 4)])
        assert not store.driver_alive(RUN_B)
        summary = summarize(store.events(RUN_B), store.driver_alive(RUN_B), T0 + 100)
        assert summary.status == "driver died during connect"
        assert summary.runtime == 4

    def test_a_gone_driver_is_not_signalled(self, store, dead_driver):
        dead_driver(started(RUN_B), [Phase("run", T0 + 1)])
        assert store.stop_driver(RUN_B) is False

    def test_the_driver_log(self, store, write_log):
        store.begin(started(RUN_A))
        assert store.log_path(RUN_A).endswith("driver.log") and RUN_A in store.log_path(RUN_A)
        assert store.read_log(RUN_A, 0) == b""
        write_log(RUN_A, b"one\n")
        write_log(RUN_A, b"two\n")
        assert store.read_log(RUN_A, 0) == b"one\ntwo\n"
        assert store.read_log(RUN_A, 4) == b"two\n"
        assert store.read_log(RUN_A, 4, limit=2) == b"tw"
        assert store.read_log(RUN_A, 99) == b""

    def test_remove(self, store, write_log):
        store.begin(started(RUN_A))
        store.begin(started(RUN_B))
        write_log(RUN_A, b"x")
        store.remove(RUN_A)
        store.remove(RUN_C)
        assert store.runs() == (RUN_B,)
        with pytest.raises(RunNotFound):
            store.events(RUN_A)
