"""A throwaway Docker engine for the tests, per shared/spec/real-parts.md.

As root with dockerd installed, start our own daemon (own socket, exec root
and pid file; a data root kept between runs so the base image is built once)
with a no-op ``nvidia-container-runtime-hook`` on its PATH, so ``--gpus all``
works for real. The base image ``python:3.11-slim`` is built from Debian
packages with mmdebstrap, since Docker Hub is out of reach.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import attrs

BASE_IMAGE = "python:3.11-slim"
DATA_ROOT = os.environ.get("RUNPLZ_TEST_DOCKER_ROOT", "/var/lib/runplz-test/docker")
_CA_DIR = "/usr/local/share/ca-certificates"


@attrs.define
class Engine:
    host: str  # DOCKER_HOST value
    hook_dir: str  # folder holding the no-op NVIDIA hook (put it on PATH)
    pid: int | None = None  # set when we started the daemon
    workdir: str | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", *args], env=self.env(), check=check, capture_output=True, text=True, **kwargs
        )

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _answers(host: str) -> bool:
    try:
        return subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            timeout=20,
        ).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _hook_dir() -> str:
    folder = tempfile.mkdtemp(prefix="runplz-nvidia-hook-")
    os.chmod(folder, 0o755)
    hook = os.path.join(folder, "nvidia-container-runtime-hook")
    with open(hook, "w") as handle:
        handle.write("#!/bin/sh\n# no-op stand-in: lets `docker run --gpus all` start\nexit 0\n")
    os.chmod(hook, 0o755)
    return folder


def start() -> tuple[Engine | None, str]:
    """Start (or find) an engine; returns (engine, reason-if-none)."""
    if shutil.which("docker") is None:
        return None, "the docker client is not installed"
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        if _answers("unix:///var/run/docker.sock"):
            return Engine("unix:///var/run/docker.sock", _hook_dir()), ""
        return None, "no Docker engine: run as root with dockerd installed (scripts/test.sh does)"
    workdir = tempfile.mkdtemp(prefix="runplz-dockerd-")
    os.chmod(workdir, 0o755)  # the ssh boxes' user reaches the socket through the docker group
    subprocess.run(["groupadd", "-f", "docker"], capture_output=True)
    hook_dir = _hook_dir()
    host = f"unix://{workdir}/docker.sock"
    os.makedirs(DATA_ROOT, exist_ok=True)
    log = open(os.path.join(workdir, "dockerd.log"), "wb")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root", DATA_ROOT,
            "--exec-root", os.path.join(workdir, "exec"),
            "--pidfile", os.path.join(workdir, "docker.pid"),
            "-H", host,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PATH": hook_dir + os.pathsep + os.environ.get("PATH", "")},
    )
    engine = Engine(host, hook_dir, proc.pid, workdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _answers(host):
            return engine, ""
        time.sleep(0.2)
    engine.stop()
    with open(os.path.join(workdir, "dockerd.log"), errors="replace") as handle:
        tail = handle.read()[-400:]
    return None, f"dockerd did not start: {tail}"


def ensure_base_image(engine: Engine) -> str:
    """Build python:3.11-slim from Debian packages unless the engine has it; '' on success."""
    if engine.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return ""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (needed to build the base image offline)"
    hooks = [
        'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        f'cp {_CA_DIR}/*.crt "$1"{_CA_DIR}/ 2>/dev/null || true',
        'chroot "$1" update-ca-certificates >/dev/null 2>&1 || true',
    ]
    argv = [
        "mmdebstrap", "--quiet", "--variant=apt",
        "--include=ca-certificates,python3,python3-venv,python3-pip,python-is-python3",
    ]
    argv += [f"--customize-hook={hook}" for hook in hooks]
    argv += ["bookworm", "-", "http://deb.debian.org/debian"]
    debootstrap = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = subprocess.run(
        ["docker", "import", "-", BASE_IMAGE], stdin=debootstrap.stdout, env=engine.env(), capture_output=True
    )
    debootstrap.stdout.close()
    err = debootstrap.stderr.read().decode(errors="replace")
    debootstrap.wait()
    if debootstrap.returncode != 0 or imported.returncode != 0:
        return f"building {BASE_IMAGE} failed: {err[-300:]} {imported.stderr[-300:]!r}"
    return ""
