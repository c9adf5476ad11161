"""Native mode end to end: a real venv (uv, or venv + pip), a real subprocess, no Docker."""

from __future__ import annotations

import pytest

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.container import make_container
from runplz.loader import load_app

from .jobs import make_repo

pytestmark = pytest.mark.real

JOB = '''
import os, sys
from runplz import App, Image, LocalConfig

app = App("native-e2e", local_config=LocalConfig(use_docker=False))
image = (
    Image.from_registry("python:3.11-slim")
    .apt_install("jq")
    .pip_install("six>=1.16")
    .pip_install_local_dir("lib")
)


@app.function(image=image, env={"MODE": "native"})
def work(n: int = 1, fail: bool = False):
    import six, mylib
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "n.txt"), "w") as handle:
        handle.write(str(n))
    if fail:
        raise ArithmeticError("no")
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"click", "dependency_injector", "attrs_not"})
    return {"n": n, "mylib": mylib.VALUE, "mode": os.environ["MODE"], "heavy": heavy,
            "venv": sys.prefix != sys.base_prefix}
'''


@pytest.fixture
def job(tmp_path):
    repo = make_repo(
        tmp_path / "repo", JOB,
        files={"lib/pyproject.toml": "[project]\nname='mylib'\nversion='0.1'\n", "lib/mylib/__init__.py": "VALUE = 3\n"},
    )
    console = RecordingConsole()
    container = make_container(str(tmp_path / "cache"))
    container.console.override(console)
    module, app = load_app(str(repo))
    app.bind("local", outputs_dir=str(tmp_path / "out"), container=container)
    module.console, module.outputs = console, tmp_path / "out"
    return module


def test_native_run_warm_cache_and_light_runtime(job):
    assert job.work.remote(n=4) == {"n": 4, "mylib": 3, "mode": "native", "heavy": [], "venv": True}
    assert (job.outputs / "n.txt").read_text() == "4"
    assert any("apt_install(jq)" in w for w in job.console.warnings)
    assert any(m.startswith("made environment") for m in job.console.infos)
    job.console.events.clear()
    assert job.work.remote(n=5)["n"] == 5
    assert not any(m.startswith("made environment") for m in job.console.infos)


def test_native_remote_exception(job):
    with pytest.raises(RemoteError) as caught:
        job.work.remote(n=2, fail=True)
    assert caught.value.remote_type == "ArithmeticError"
    assert (job.outputs / "n.txt").read_text() == "2"
