import sys

import pytest


@pytest.fixture(autouse=True)
def _forget_job_modules():
    """Job scripts are imported by path under their file name; forget them between tests."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if name in ("job", "main", "train") or name.startswith("_runplz_script_") or (
            getattr(module, "__file__", "") or ""
        ).startswith("/tmp/"):
            sys.modules.pop(name, None)
    sys.path[:] = path


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory):
    """Run records, ledgers and driver logs of the tests stay out of the user's state directory."""
    import os

    if "RUNPLZ_STATE_DIR" not in os.environ:
        os.environ["RUNPLZ_STATE_DIR"] = str(tmp_path_factory.mktemp("runplz-state"))
    yield
