"""The `BoxLedger` contract."""

from __future__ import annotations

import pytest

from runplz.ports.ledger import BoxLedger


class LedgerFixtures:
    @pytest.fixture
    def ledger(self) -> BoxLedger:
        raise NotImplementedError

    @pytest.fixture
    def reopen(self, ledger):
        """A new ledger object over the same store."""
        raise NotImplementedError

    @pytest.fixture
    def dead_driver(self, ledger):
        """Make a record of ``name`` owned by a driver that is gone."""
        raise NotImplementedError

    @pytest.fixture
    def foreign(self, ledger):
        """Make a record of ``name`` made on another host."""
        raise NotImplementedError


class AbstractLedgerTests:
    def test_is_a_ledger(self, ledger):
        assert isinstance(ledger, BoxLedger)

    def test_record_forget_and_list_sorted(self, ledger):
        assert ledger.records() == ()
        second = ledger.record("runplz-b", "brev")
        first = ledger.record("runplz-a", "brev")
        assert [r.name for r in ledger.records()] == ["runplz-a", "runplz-b"]
        assert first.backend == second.backend == "brev"
        ledger.forget("runplz-b")
        ledger.forget("never-recorded")
        assert [r.name for r in ledger.records()] == ["runplz-a"]

    def test_recording_again_replaces(self, ledger):
        ledger.record("runplz-a", "brev")
        ledger.record("runplz-a", "brev")
        assert len(ledger.records()) == 1

    def test_records_survive_a_new_ledger(self, ledger, reopen):
        ledger.record("runplz-a", "brev")
        assert [r.name for r in reopen().records()] == ["runplz-a"]

    def test_a_live_drivers_records_are_not_orphans(self, ledger):
        ledger.record("runplz-live", "brev")
        assert ledger.orphans("brev") == ()

    def test_a_dead_drivers_records_are_orphans_of_their_backend_only(self, ledger, dead_driver):
        ledger.record("runplz-live", "brev")
        dead_driver("runplz-orphan", "brev")
        dead_driver("runplz-other", "slurm")
        assert [r.name for r in ledger.orphans("brev")] == ["runplz-orphan"]
        assert [r.name for r in ledger.orphans("slurm")] == ["runplz-other"]
        ledger.forget("runplz-orphan")
        assert ledger.orphans("brev") == ()

    def test_another_hosts_records_are_never_orphans(self, ledger, foreign):
        foreign("runplz-elsewhere", "brev")
        assert ledger.orphans("brev") == ()
        assert [r.name for r in ledger.records()] == ["runplz-elsewhere"]
