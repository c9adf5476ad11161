"""The ssh backend's whole flow over the local transport: no sshd, no root needed."""

from __future__ import annotations

import pytest
from dependency_injector import providers

from runplz import RemoteError, SshConfig
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.job_output import RecordingJobOutput
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.container import make_container
from runplz.domain.call import FunctionCall
from runplz.domain.errors import RunTimeout
from runplz.domain.host import SshTarget
from runplz.loader import load_app
from runplz.services.ssh_backend import SshSettings

from .jobs import make_repo

JOB = '''
import os, time
from runplz import App, Image
app = App("over-local")

@app.function(image=Image.from_registry("python:3.11-slim"), env={"K": "v w"})
def go(n: int, fail: bool = False, nap: float = 0) -> dict:
    open(os.path.join(os.environ["RUNPLZ_OUT"], "go.txt"), "w").write(str(n))
    print("hello from the box", flush=True)
    time.sleep(nap)
    if fail:
        raise LookupError("nope")
    return {"n": n, "k": os.environ["K"]}
'''


@pytest.fixture
def backend(tmp_path):
    def make(config: SshConfig):
        container = make_container(str(tmp_path / "cache"))
        console, output = RecordingConsole(), RecordingJobOutput()
        container.console.override(console)
        container.job_output.override(output)
        transport = LocalTransport(SubprocessRunner(), str(tmp_path / "box-home"), name="box")
        settings = SshSettings(str(tmp_path / "out"), config, SshTarget("box"))
        return container.ssh_backend(transport=transport, settings=settings), console, output

    return make


def call(script, name, **kwargs):
    _, app = load_app(str(script))
    function = app.registered_functions[name]
    return FunctionCall(app.name, function.spec, str(script), [], kwargs)


def test_native_run_value_output_and_failure(backend, tmp_path):
    script = make_repo(tmp_path / "repo", JOB)
    run, console, output = backend(SshConfig(use_docker=False))
    assert run.call(call(script, "go", n=3)) == {"n": 3, "k": "v w"}
    assert b"hello from the box" in output.data
    assert (tmp_path / "out" / "go.txt").read_text() == "3"
    with pytest.raises(RemoteError) as caught:
        run.call(call(script, "go", n=4, fail=True))
    assert caught.value.remote_type == "LookupError"
    assert (tmp_path / "out" / "go.txt").read_text() == "4"


def test_runtime_cap(backend, tmp_path):
    script = make_repo(tmp_path / "repo", JOB)
    run, _, _ = backend(SshConfig(use_docker=False, max_runtime_seconds=2))
    with pytest.raises(RunTimeout, match="max_runtime_seconds=2"):
        run.call(call(script, "go", n=5, nap=60))
    assert (tmp_path / "out" / "go.txt").read_text() == "5"


def test_a_run_that_fails_before_it_starts_leaves_no_folder_behind(backend, tmp_path):
    from runplz.domain.errors import UsageError

    script = make_repo(tmp_path / "repo", JOB.replace(
        'Image.from_registry("python:3.11-slim")', 'Image.from_registry("python:3.11-slim").pip_install_local_dir("missing")'
    ))
    run, _, _ = backend(SshConfig(use_docker=False))
    with pytest.raises(UsageError, match="no such folder"):
        run.call(call(script, "go", n=1))
    runs = tmp_path / "box-home" / ".runplz" / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []


def _limit_files(tmp_path) -> list[str]:
    runs = tmp_path / "box-home" / ".runplz" / "runs"
    return [p.read_text().strip() for p in sorted(runs.glob("*/ctl/limit"))]


def test_no_timeout_and_no_max_runtime_means_no_limit_on_the_box(backend, tmp_path):
    script = make_repo(tmp_path / "repo", JOB)
    run, _, _ = backend(SshConfig(use_docker=False))
    assert run.call(call(script, "go", n=1, nap=0.2)) == {"n": 1, "k": "v w"}
    runs = list((tmp_path / "box-home" / ".runplz" / "runs").glob("*/ctl"))
    assert len(runs) == 1 and (runs[0] / "exit_code").read_text().strip() == "0"
    assert _limit_files(tmp_path) == []  # the supervisor got no limit


@pytest.mark.parametrize(
    "timeout, max_runtime, reason",
    [(60, 2, "max_runtime_seconds=2"), (2, 60, "its timeout of 2s"), (2, None, "its timeout of 2s")],
)
def test_the_smaller_limit_applies_and_is_named(backend, tmp_path, timeout, max_runtime, reason):
    script = make_repo(tmp_path / "repo", JOB.replace('env={"K": "v w"})', f'env={{"K": "v w"}}, timeout={timeout})'))
    run, _, _ = backend(SshConfig(use_docker=False, max_runtime_seconds=max_runtime))
    with pytest.raises(RunTimeout, match=f"go ran past {reason} on box"):
        run.call(call(script, "go", n=6, nap=60))
    assert _limit_files(tmp_path) == ["2"]


def test_the_ssh_backend_hands_its_transport_to_the_shared_path(tmp_path):
    """Embedding tools (and the next backends) reach the run path through one provider."""
    from runplz.services.remote_path import RemoteRunSettings

    seen = []

    class Path:
        def __init__(self, transport, settings):
            seen.append((transport, settings))

        def call(self, call):
            return "from the path"

    container = make_container(str(tmp_path / "cache"))
    container.remote_run_path.override(providers.Factory(Path))
    transport = LocalTransport(SubprocessRunner(), str(tmp_path / "box-home"), name="box")
    config = SshConfig(use_docker=False, max_runtime_seconds=7, ssh_ready_wait_seconds=9)
    backend = container.ssh_backend(transport=transport, settings=SshSettings("/tmp/o", config, SshTarget("box")))
    assert backend.call(None) == "from the path"
    assert seen == [(transport, RemoteRunSettings(outputs_dir="/tmp/o", mode="native", max_runtime_seconds=7, ready_wait_seconds=9))]
