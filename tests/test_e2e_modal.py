"""`runplz modal` end to end: the real modal client against the local fake control plane.

The fake runs each call for real, in a chrooted container process that cannot
import this runplz (testsupport/modal_fake).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from testsupport.modal_fixture import MODAL_VERSION, container_prerequisite, modal_fake  # noqa: F401

from .jobs import BASIC, make_repo

pytestmark = pytest.mark.real
RUNPLZ = [sys.executable, "-m", "runplz"]

SHAPED = '''
import os
from runplz import App, Image
app = App("shaped")
image = (
    Image.from_registry("ubuntu:22.04")
    .apt_install("curl")
    .pip_install("requests", index_url="https://pypi.example.invalid/simple")
    .pip_install_local_dir("pkg")
    .run_commands("echo built")
)

@app.function(image=image, gpu="a100", min_gpu_memory=80, num_gpus=2, min_cpu=2, min_memory=8, timeout=600)
def shaped() -> str:
    return open("pkg/marker.txt").read()
'''

BIG = '''
import os
from runplz import App, Image
app = App("big")

@app.function(image=Image.from_registry("python:3.11-slim"), timeout=300)
def big(megabytes: int) -> int:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "noise.bin"), "wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(10**6))
    open(os.path.join(os.environ["RUNPLZ_OUT"], "small.txt"), "w").write("small")
    return megabytes
'''

SLOW = '''
import os, time
from runplz import App, Image
app = App("slow")

@app.function(image=Image.from_registry("python:3.11-slim"), timeout=3)
def slow() -> None:
    open(os.path.join(os.environ["RUNPLZ_OUT"], "early.txt"), "w").write("early")
    time.sleep(120)
'''


def cli(repo, *args, env=None, timeout=240):
    return subprocess.run(
        [*RUNPLZ, "modal", *args], cwd=repo, env=env or dict(os.environ), capture_output=True, text=True,
        timeout=timeout,
    )


def error_lines(done) -> list[str]:
    assert "Traceback (most recent call last)" not in done.stderr.split("runplz: error")[-1]
    return [line for line in done.stderr.splitlines() if line.startswith("runplz: error")]


def test_a_run_returns_its_value_streams_its_logs_and_brings_outputs_back(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, BASIC, files={".env": "SECRET=1\n", "keys/id_rsa": "k"})
    done = cli(repo, "job.py", "--steps=2", "--label=modal")
    assert done.returncode == 0, done.stderr
    assert '"label": "modal"' in done.stdout and '"greeting": "hi there"' in done.stdout
    assert "working 2 modal" in done.stdout + done.stderr  # the job's print, through Modal's log stream
    assert (repo / "out" / "result.txt").read_text() == "modal:2"
    (create,) = modal_fake.function_creates()
    assert (create.function.function_name, create.function.timeout_secs) == ("work", 300)
    assert modal_fake.secrets() == [{"GREETING": "hi there"}]
    assert modal_fake.unimplemented() == [] and modal_fake.errors() == []
    log = re.search(r"runplz: run \S+; log: (\S+)", done.stderr).group(1)
    assert "[modal] working 2 modal" in open(log).read()  # the client's stream is in the driver log


def test_a_remote_exception_is_its_traceback_and_one_line(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, BASIC)
    done = cli(repo, "job.py", "--fail")
    assert done.returncode == 1, done.stderr
    assert "ValueError: bad label 'x'" in done.stderr
    (line,) = error_lines(done)
    assert "exit code 1" in line
    assert (repo / "out" / "result.txt").read_text() == "x:1"


def test_the_recorded_function_and_image_layers_match_the_spec(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, SHAPED, files={"pkg/marker.txt": "from the repo", "pkg/.env": "S=1"})
    done = cli(repo, "job.py")
    assert done.returncode == 0, done.stderr
    assert '"from the repo"' in done.stdout
    (create,) = modal_fake.function_creates()
    resources = create.function.resources
    assert (resources.gpu_config.gpu_type, resources.gpu_config.count) == ("A100-80GB", 2)
    assert (resources.milli_cpu, resources.memory_mb, create.function.timeout_secs) == (2000, 8192, 600)
    layers = modal_fake.image_layers()
    base = next(layer for layer in layers if layer.base_image_ref == "ubuntu:22.04")
    assert base.add_python.startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    commands = "\n".join(c for layer in layers for c in layer.dockerfile_commands)
    for needle in ("apt-get install -y curl", "pip install requests", "--index-url https://pypi.example.invalid/simple",
                   "install --no-cache-dir -e /runplz/repo/pkg", "echo built"):
        assert needle in commands, commands
    copied = {path for layer in layers for path in (layer.context_files or ())}
    assert not any(path.endswith(".env") for path in copied), copied


def test_outputs_warn_from_200_mb(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, BIG)
    done = cli(repo, "job.py", "--megabytes=205")
    assert done.returncode == 0, done.stderr
    assert "runplz: warning:" in done.stderr and "200 MB" in done.stderr
    assert (repo / "out" / "noise.bin").stat().st_size == 205 * 10**6


def test_outputs_of_256_mb_are_refused_before_extracting_and_kept_whole(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, BIG)
    done = cli(repo, "job.py", "--megabytes=260")
    assert done.returncode == 1, done.stderr
    (line,) = error_lines(done)
    assert "256 MB" in line and "Volume" in line
    out = repo / "out"
    (kept,) = list(out.iterdir())  # nothing extracted: only the kept archive
    assert kept.name.startswith("runplz-outputs-") and kept.stat().st_size >= 256 * 10**6
    assert str(kept) in line


def test_past_its_timeout_a_job_is_stopped_and_its_outputs_come_back(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, SLOW)
    started = time.monotonic()
    done = cli(repo, "job.py")
    assert time.monotonic() - started < 60
    assert done.returncode == 1, done.stderr
    (line,) = error_lines(done)
    assert "timeout of 3s" in line
    assert (repo / "out" / "early.txt").read_text() == "early"


def test_app_bind_from_python(modal_fake, tmp_path):
    from runplz import RemoteError
    from runplz.loader import load_app

    script = make_repo(tmp_path / "repo", BASIC)
    module, app = load_app(str(script))
    app.bind("modal", outputs_dir=str(tmp_path / "out"))
    assert module.work.remote(4, label="py")["steps"] == 4
    with pytest.raises(RemoteError) as caught:
        module.work.remote(code=9)
    assert caught.value.exit_code == 9
    assert (tmp_path / "out" / "result.txt").read_text() == "x:1"


def test_an_unreachable_modal_is_one_line_and_fails_fast(tmp_path):
    if container_prerequisite().startswith("the modal package"):
        pytest.fail("the modal package is needed: pip install -e '.[dev]'")
    from testsupport.modal_fake import ModalFake

    repo = tmp_path / "repo"
    make_repo(repo, BASIC)
    with ModalFake.unreachable(tmp_path / "dead") as env:
        started = time.monotonic()
        done = cli(repo, "job.py", env={**os.environ, **env}, timeout=50)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr
    (line,) = error_lines(done)
    assert "could not be reached" in line


def test_no_token_is_modals_own_words_in_one_line(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, BASIC)
    env = {k: v for k, v in os.environ.items() if k not in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")}
    done = cli(repo, "job.py", env=env, timeout=60)
    assert done.returncode == 1, done.stderr
    (line,) = error_lines(done)
    assert "Token missing" in line and "modal token new" in line


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_an_interrupt_stops_the_run_and_leaves_no_container(modal_fake, tmp_path, sig, code):
    import signal

    from testsupport.signals import default_signals

    repo = tmp_path / "repo"
    make_repo(repo, SLOW.replace("timeout=3", "timeout=300").replace("time.sleep(120)", "print('sleeping now', flush=True); time.sleep(120)"))
    child = subprocess.Popen(
        [*RUNPLZ, "modal", "job.py"], cwd=repo, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, preexec_fn=default_signals,
    )
    seen = ""
    for line in child.stdout:
        seen += line
        if "sleeping now" in line:
            break
    child.send_signal(getattr(signal, sig))
    rest, _ = child.communicate(timeout=60)
    assert child.wait() == code, seen + rest
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(run.returncode is None for run in modal_fake.containers()):
        time.sleep(0.2)
    assert all(run.returncode is not None for run in modal_fake.containers())


DOCKERFILE_JOB = '''
import os
from runplz import App, Image
app = App("dockerfile")

@app.function(image=Image.from_dockerfile("docker/Dockerfile"), timeout=60)
def read() -> list:
    return [open("/data/x.txt").read(), os.path.exists("/data/.env"), os.path.exists("/data/id_rsa")]
'''


def test_a_dockerfile_image_gets_its_context_without_secrets(modal_fake, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, DOCKERFILE_JOB, files={
        "docker/Dockerfile": "FROM python:3.11-slim\nCOPY data /data\n",
        "data/x.txt": "from the context", "data/.env": "S=1", "data/id_rsa": "k",
    })
    done = cli(repo, "job.py")
    assert done.returncode == 0, done.stderr
    assert '["from the context", false, false]' in done.stdout
    commands = [c for layer in modal_fake.image_layers() for c in layer.dockerfile_commands]
    assert "COPY data /data" in commands


def test_modal_killing_the_container_at_its_timeout_is_run_timeout(modal_fake, tmp_path):
    """The container side normally stops the job first; if Modal's own timeout
    fires instead, the client's FunctionTimeoutError becomes RunTimeout."""

    from runplz.adapters.modal_platform import ModalPlatform
    from runplz.domain.errors import RunTimeout
    from runplz.services.bundle import RuntimeBundle
    from runplz.domain.modal_resources import ModalResources
    from runplz.ports.serverless import ServerlessJob
    from runplz.domain.image import Image
    from runplz.domain.payload import PROTOCOL, Dispatch
    from runplz.protocol.wire import encode_dispatch
    from runplz import __version__

    repo = tmp_path / "repo"
    make_repo(repo, SLOW)
    job = ServerlessJob(
        app="slow", function="slow", image=Image.from_registry("python:3.11-slim"),
        resources=ModalResources(gpu=None, cpu=None, memory_mib=None, timeout=2), env={},
        payload=encode_dispatch(Dispatch(PROTOCOL, __version__, "r", "slow", "job.py", "slow", [], {})),
        repo_root=str(repo), repo_keep=frozenset({"job.py"}),
        bundle_dir=RuntimeBundle(str(tmp_path / "cache")).materialize(), deadline=0.0,
    )
    with pytest.raises(RunTimeout, match="timeout of 2s"):
        ModalPlatform().run(job)
