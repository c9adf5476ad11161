"""BoxLedger contract: the file ledger (real processes as drivers) and the fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runplz.adapters.fake_ledger import FakeLedger
from runplz.adapters.file_ledger import FileLedger

from .suites.ledger import AbstractLedgerTests, LedgerFixtures


class TestFileLedger(AbstractLedgerTests, LedgerFixtures):
    @pytest.fixture
    def folder(self, tmp_path):
        return str(tmp_path / "boxes")

    @pytest.fixture
    def ledger(self, folder):
        return FileLedger(folder)

    @pytest.fixture
    def reopen(self, folder):
        return lambda: FileLedger(folder)

    @pytest.fixture
    def dead_driver(self, folder):
        def make(name: str, backend: str) -> None:
            code = f"from runplz.adapters.file_ledger import FileLedger; FileLedger({folder!r}).record({name!r}, {backend!r})"
            subprocess.run([sys.executable, "-c", code], check=True)  # the driver records, then exits

        return make

    @pytest.fixture
    def foreign(self, folder):
        def make(name: str, backend: str) -> None:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{name}.json"), "w") as handle:
                json.dump({"name": name, "backend": backend, "driver_pid": 1, "driver_host": "elsewhere.invalid",
                           "created": 1.0}, handle)

        return make

    def test_a_reused_pid_is_not_the_driver(self, folder, ledger):
        ledger.record("runplz-a", "brev")
        path = os.path.join(folder, "runplz-a.json")
        with open(path) as handle:
            data = json.load(handle)
        data["driver_started"] = "1"  # this pid, but another process's start time
        with open(path, "w") as handle:
            json.dump(data, handle)
        assert [r.name for r in ledger.orphans("brev")] == ["runplz-a"]

    def test_unreadable_records_are_skipped(self, folder, ledger):
        ledger.record("runplz-a", "brev")
        with open(os.path.join(folder, "broken.json"), "w") as handle:
            handle.write("{")
        assert [r.name for r in ledger.records()] == ["runplz-a"]

    def test_an_unusable_folder_is_one_readable_error(self, tmp_path):
        from runplz.domain.errors import UsageError

        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        with pytest.raises(UsageError, match="RUNPLZ_STATE_DIR"):
            FileLedger(str(blocker / "boxes")).record("runplz-a", "brev")

    def test_the_folder_is_private(self, folder, ledger):
        ledger.record("runplz-a", "brev")
        assert os.stat(folder).st_mode & 0o077 == 0


class TestFakeLedger(AbstractLedgerTests, LedgerFixtures):
    @pytest.fixture
    def ledger(self):
        return FakeLedger()

    @pytest.fixture
    def reopen(self, ledger):
        return lambda: ledger

    @pytest.fixture
    def dead_driver(self, ledger):
        def make(name: str, backend: str) -> None:
            driver = ledger.driver
            ledger.driver = 4242
            ledger.record(name, backend)
            ledger.end_driver(4242)
            ledger.driver = driver

        return make

    @pytest.fixture
    def foreign(self, ledger):
        return lambda name, backend: ledger.add_foreign(name, backend, "elsewhere.invalid")
