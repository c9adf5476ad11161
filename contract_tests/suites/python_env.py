"""The `PythonEnvBuilder` contract."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import uuid
import zipfile

import pytest

from runplz.domain.errors import BuildError
from runplz.ports.python_env import EnvRequest, PipStep, PythonEnvBuilder


def make_wheel(folder, name: str, body: str) -> str:
    """A minimal pure-Python wheel, built by hand (no network, no build backend)."""
    version = "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: runplz-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_, data in files.items():
            wheel.writestr(name_, data)
    return str(path)


def _runs(python: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)


class PythonEnvFixtures:
    @pytest.fixture
    def envs(self, tmp_path) -> PythonEnvBuilder:
        raise NotImplementedError


def _key() -> str:
    return uuid.uuid4().hex * 2


class AbstractPythonEnvTests:
    def test_is_a_builder(self, envs):
        assert isinstance(envs, PythonEnvBuilder)

    def test_empty_env_runs_and_is_isolated(self, envs):
        env = envs.ensure(EnvRequest(_key(), sys.executable))
        assert env.created
        assert _runs(env.python, "print(6 * 7)").stdout.strip() == "42"
        # attrs is installed where runplz runs; the environment must not see it.
        assert _runs(env.python, "import attrs").returncode != 0

    def test_same_key_reuses(self, envs):
        request = EnvRequest(_key(), sys.executable)
        first = envs.ensure(request)
        second = envs.ensure(request)
        assert (second.python, second.created) == (first.python, False)

    def test_wheel_step_is_importable(self, envs, tmp_path):
        wheel = make_wheel(tmp_path, "runplz_contract_pkg", "ANSWER = 42\n")
        env = envs.ensure(EnvRequest(_key(), sys.executable, (PipStep((wheel,)),)))
        result = _runs(env.python, "import runplz_contract_pkg as p; print(p.ANSWER)")
        assert result.stdout.strip() == "42", result.stderr

    def test_failed_step_raises_and_is_not_reused(self, envs, tmp_path):
        missing = str(tmp_path / "absent-1.0-py3-none-any.whl")
        request = EnvRequest(_key(), sys.executable, (PipStep((missing,)),))
        with pytest.raises(BuildError):
            envs.ensure(request)
        with pytest.raises(BuildError):
            envs.ensure(request)
