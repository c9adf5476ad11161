"""The local fake Modal control plane, driven by the real `modal` client (pinned 1.6.4).

Run real tests serialized with the other real tests:
    flock /tmp/runplz-real.lock .venv/bin/python -m pytest tests/test_modal_fake.py -q -p no:cacheprovider
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from testsupport.real import required, unavailable

try:
    import modal
except ImportError:  # RUNPLZ_REQUIRE_REAL=1 makes a missing client a failure, not a skip
    if required():
        raise
    pytest.skip("the modal package is not installed (pip install -e '.[dev]')", allow_module_level=True)
from testsupport.modal_fake import ModalFake  # noqa: E402

from testsupport.modal_fixture import container_prerequisite as _container_prerequisite, modal_fake  # noqa: E402,F401


@pytest.fixture
def fake(modal_fake):
    """A running fake with the client env applied to this process."""
    return modal_fake


def _load(tmp_path, source: str, stem: str | None = None, module_name: str | None = None):
    """Write `source` to <tmp>/<stem>.py and import it (under `module_name`, default the stem)."""
    stem = stem or f"fakejob_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{stem}.py"
    path.write_text(textwrap.dedent(source))
    name = module_name or stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


FILE_JOB = """
    import os, sys
    import modal

    app = modal.App("fake-file-job")
    image = (
        modal.Image.from_registry("python:3.11-slim", add_python="3.11")
        .apt_install("git")
        .pip_install("numpy", index_url="https://pypi.example.invalid/simple")
        .run_commands("echo built")
    )

    @app.function(image=image, gpu="A100-80GB:4", cpu=4.0, memory=16384, timeout=120, name="train")
    def train(x):
        print("stdout-marker-123")
        print("stderr-marker-456", file=sys.stderr)
        return {"double": x * 2, "cwd": os.getcwd(), "file": __file__}

    @app.function(timeout=30)
    def fails():
        raise ValueError("boom-789")

    @app.function(timeout=30)
    def dies():
        print("about to die")
        os._exit(3)

    @app.function(timeout=2)
    def sleeps():
        import time
        time.sleep(60)
"""


@pytest.mark.real
def test_file_function_value_logs_and_recorded_definitions(fake, tmp_path, capfd):
    job = _load(tmp_path, FILE_JOB)
    with modal.enable_output():
        with job.app.run():
            result = job.train.remote(21)
    out, err = capfd.readouterr()
    assert result == {"double": 42, "cwd": "/root", "file": f"/root/{job.__name__}.py"}
    assert "stdout-marker-123" in out + err and "stderr-marker-456" in out + err
    assert "[modal-fake] image" in out + err  # the fake build log line streamed through ImageJoinStreaming

    creates = {c.function.function_name: c.function for c in fake.function_creates()}
    train = creates["train"]
    assert train.resources.gpu_config.gpu_type == "A100-80GB"
    assert train.resources.gpu_config.count == 4
    assert train.resources.milli_cpu == 4000
    assert train.resources.memory_mb == 16384
    assert train.timeout_secs == 120
    assert train.definition_type == modal_definition_type("FILE")

    layers = fake.image_layers()
    refs = [layer.base_image_ref for layer in layers if layer.base_image_ref]
    assert "python:3.11-slim" in refs
    registry_layer = next(layer for layer in layers if layer.base_image_ref == "python:3.11-slim")
    assert registry_layer.add_python.startswith("3.11")
    commands = [c for layer in layers for c in layer.dockerfile_commands]
    assert "RUN apt-get install -y git" in commands
    assert any("pip install numpy" in c and "--index-url https://pypi.example.invalid/simple" in c for c in commands)
    assert "RUN echo built" in commands
    assert fake.unimplemented() == [] and fake.errors() == []


def modal_definition_type(name: str) -> int:
    from modal_proto import api_pb2

    return getattr(api_pb2.Function, f"DEFINITION_TYPE_{name}")


@pytest.mark.real
def test_builtin_exception_death_and_timeout(fake, tmp_path):
    job = _load(tmp_path, FILE_JOB)
    with job.app.run():
        with pytest.raises(ValueError, match="boom-789"):
            job.fails.remote()
        started = time.monotonic()
        with pytest.raises(modal.exception.RemoteError, match="exited with code 3"):
            job.dies.remote()
        assert time.monotonic() - started < 10
        started = time.monotonic()
        with pytest.raises(modal.exception.FunctionTimeoutError, match="timeout"):
            job.sleeps.remote()
        assert time.monotonic() - started < 10
    timed_out = [run for run in fake.containers() if run.timed_out]
    assert len(timed_out) == 1 and timed_out[0].returncode == -9


@pytest.mark.real
def test_serialized_function(fake, tmp_path):
    app = modal.App("fake-serialized")
    factor = 7

    def multiply(x):
        import os

        return x * factor, os.getcwd()

    remote_multiply = app.function(serialized=True, timeout=30)(multiply)
    with app.run():
        assert remote_multiply.remote(6) == (42, "/root")
    (create,) = fake.function_creates()
    assert create.function.definition_type == modal_definition_type("SERIALIZED")


SHIM = """
    import os, sys

    def run(name):
        os.makedirs("/out", exist_ok=True)
        with open("/out/result.txt", "w") as f:
            f.write("written in the container")
        try:
            import runplz  # noqa: F401
            runplz_visible = True
        except ImportError:
            runplz_visible = False
        return {
            "repo": open("/runplz/repo/a.txt").read(),
            "copied": open("/runplz/copied/sub/b.txt").read(),
            "single": open("/etc-extra/single.txt").read(),
            "big_sha": __import__("hashlib").sha256(open("/runplz/repo/big.bin", "rb").read()).hexdigest(),
            "secret": os.environ.get("FAKE_SECRET_VALUE"),
            "runplz_visible": runplz_visible,
            "host_work_visible": os.path.exists("/work"),
            "name": name,
        }
"""


@pytest.mark.real
def test_shim_files_secrets_outputs_and_isolation(fake, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("repo-file")
    (data / "sub" / "b.txt").write_text("copied-file")
    (tmp_path / "single.txt").write_text("single-file")
    big = os.urandom(5 * 1024 * 1024)  # mount files of 4 MiB and up travel as blobs
    (data / "big.bin").write_bytes(big)
    shim = _load(tmp_path, SHIM, stem="runplz_shim_probe", module_name=f"_runplz_script_{uuid.uuid4().hex[:6]}")
    host_out_before = os.path.exists("/out/result.txt")

    app = modal.App("fake-shim")
    image = (
        modal.Image.from_registry("python:3.11-slim")
        .add_local_dir(str(data), "/runplz/copied", copy=True)
        .add_local_dir(str(data), "/runplz/repo", copy=False)
        .add_local_file(str(tmp_path / "single.txt"), "/etc-extra/single.txt")
    )
    secret = modal.Secret.from_dict({"FAKE_SECRET_VALUE": "s3cret"})
    run = app.function(image=image, secrets=[secret], timeout=60, name="run")(shim.run)
    with app.run():
        got = run.remote("x")

    assert got == {
        "repo": "repo-file", "copied": "copied-file", "single": "single-file", "secret": "s3cret",
        "big_sha": hashlib.sha256(big).hexdigest(),
        "runplz_visible": False, "host_work_visible": False, "name": "x",
    }
    assert os.path.exists("/out/result.txt") == host_out_before
    (container,) = fake.containers()
    assert (container.root and open(os.path.join(container.root, "out/result.txt")).read()) == "written in the container"
    assert fake.secrets() == [{"FAKE_SECRET_VALUE": "s3cret"}]
    assert "BlobCreate" in fake.rpc_names()  # the 5 MiB mount file went up as a blob
    copy_layer = next(layer for layer in fake.image_layers() if layer.context_mount_id)
    assert copy_layer.dockerfile_commands == ["FROM base", "COPY . /"]


@pytest.mark.real
def test_blobs_both_ways(fake, tmp_path):
    app = modal.App("fake-blobs")

    def digest_and_grow(payload: bytes):
        import hashlib

        return hashlib.sha256(payload).hexdigest(), b"\x01" * (30 * 1024 * 1024)

    remote = app.function(serialized=True, timeout=60)(digest_and_grow)
    payload = os.urandom(3 * 1024 * 1024)
    with app.run():
        digest, big = remote.remote(payload)
    assert digest == hashlib.sha256(payload).hexdigest()
    assert len(big) == 30 * 1024 * 1024 and big[:1] == b"\x01"
    rpcs = fake.rpc_names()
    assert rpcs.count("BlobCreate") >= 2 and rpcs.count("BlobGet") >= 2  # argument up and back, result the same


DOCKERFILE_JOB = """
    import os, modal

    app = modal.App("fake-dockerfile")
    image = modal.Image.from_dockerfile(
        os.path.join(os.path.dirname(__file__), "ctx", "Dockerfile"),
        context_dir=os.path.join(os.path.dirname(__file__), "ctx"),
        ignore=["junk"],
    ).pip_install("rich")

    @app.function(image=image, gpu=["A100", "H100:2"], timeout=30)
    def run():
        return open("/app/src/x.txt").read(), open("/single/x.txt").read(), os.getcwd()

    if __name__ == "__main__":
        with modal.enable_output():
            with app.run():
                print("RESULT", run.remote())
"""


@pytest.mark.real
def test_dockerfile_image_in_a_client_subprocess(fake, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "junk").mkdir()
    (ctx / "src" / "x.txt").write_text("ctx-file")
    (ctx / "junk" / "y.txt").write_text("ignored")
    (ctx / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN pip install attrs\nWORKDIR /app\nCOPY src ./src\nCOPY src/x.txt /single/x.txt\n"
    )
    script = tmp_path / "dockerfile_job.py"
    script.write_text(textwrap.dedent(DOCKERFILE_JOB))
    proc = subprocess.run([sys.executable, str(script)], env={**os.environ, **fake.env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "RESULT ('ctx-file', 'ctx-file', '/app')" in proc.stdout
    (create,) = fake.function_creates()
    ranked = [(r.function.resources.gpu_config.gpu_type, r.function.resources.gpu_config.count)
              for r in create.function_data.ranked_functions]
    assert ranked == [("A100", 1), ("H100", 2)]
    first = fake.image_layers()[0]
    assert first.base_image_ref == "python:3.11-slim"
    assert first.dockerfile_commands[:3] == ["FROM python:3.11-slim", "RUN pip install attrs", "WORKDIR /app"]
    (container,) = fake.containers()
    assert not os.path.exists(os.path.join(container.root, "app", "junk"))


@pytest.mark.real
def test_nothing_left_running(tmp_path, monkeypatch):
    reason = _container_prerequisite()
    if reason:
        unavailable(reason)
    app = modal.App("fake-leftovers")

    def hang():
        import time

        time.sleep(120)

    remote = app.function(serialized=True, timeout=300)(hang)
    with ModalFake.start(tmp_path) as fake:
        for key, value in fake.env.items():
            monkeypatch.setenv(key, value)
        with app.run():
            remote.spawn()
            deadline = time.monotonic() + 10
            while not (fake.containers() and fake.containers()[0].stdout + "x") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert fake.containers(), "the spawned call never got a container"
            pid = fake.containers()[0].process.pid
    assert not os.path.exists(f"/proc/{pid}")
    assert _processes_under(str(tmp_path)) == []
    with open("/proc/mounts") as f:
        assert str(tmp_path) not in f.read()


def _processes_under(folder: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if folder in cmdline or root.startswith(folder):
            found.append(f"{pid}: {cmdline}")
    return found


@pytest.mark.parametrize("attempt", [1, 2])
def test_unreachable_server_fails_fast(tmp_path, monkeypatch, attempt):
    app = modal.App("fake-unreachable")
    remote = app.function(serialized=True)(lambda: 1)
    with ModalFake.unreachable(tmp_path) as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        started = time.monotonic()
        with pytest.raises(modal.exception.ConnectionError, match="Connect call failed"):
            with app.run():
                remote.remote()
    assert time.monotonic() - started < 5


def test_no_token_is_an_auth_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty.toml"
    empty.touch()
    for key in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(empty))
    monkeypatch.setenv("MODAL_SERVER_URL", "unix:///nonexistent/modal-fake.sock")
    from modal.client import _Client

    monkeypatch.setattr(_Client, "_client_from_env", None)
    app = modal.App("fake-no-token")
    remote = app.function(serialized=True)(lambda: 1)
    started = time.monotonic()
    with pytest.raises(modal.exception.AuthError, match="Token missing"):
        with app.run():
            remote.remote()
    assert time.monotonic() - started < 5
