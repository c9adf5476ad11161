"""PythonEnvBuilder contract: real venvs (uv, and venv + pip) and the fake."""


import pytest

from runplz.adapters.fake_env import FakePythonEnvBuilder
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.venv_builder import VenvBuilder
from runplz.container import find_uv
from testsupport.real import unavailable

from .suites.python_env import AbstractPythonEnvTests, PythonEnvFixtures


@pytest.mark.real
class TestUvVenvBuilder(AbstractPythonEnvTests, PythonEnvFixtures):
    @pytest.fixture
    def envs(self, tmp_path):
        uv = find_uv()
        if uv is None:
            unavailable("uv is not installed (pip install uv)")
        return VenvBuilder(SubprocessRunner(), str(tmp_path / "venvs"), uv=uv)


@pytest.mark.real
class TestPipVenvBuilder(AbstractPythonEnvTests, PythonEnvFixtures):
    @pytest.fixture
    def envs(self, tmp_path):
        return VenvBuilder(SubprocessRunner(), str(tmp_path / "venvs"), uv=None)


class TestFakePythonEnvBuilder(AbstractPythonEnvTests, PythonEnvFixtures):
    @pytest.fixture
    def envs(self, tmp_path):
        return FakePythonEnvBuilder(str(tmp_path / "envs"))
