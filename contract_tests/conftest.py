"""Contract tests keep runplz's state (run records, ledgers) out of the user's state directory."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory):
    if "RUNPLZ_STATE_DIR" not in os.environ:
        os.environ["RUNPLZ_STATE_DIR"] = str(tmp_path_factory.mktemp("runplz-state"))
    yield
