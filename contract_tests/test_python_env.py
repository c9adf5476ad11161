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


def _remote_builder(transport, tmp_path):
    from runplz.adapters.remote_venv import RemoteVenvBuilder
    from runplz.domain.remote_layout import bundle_dir
    from runplz.services.bundle import RuntimeBundle

    bundle = RuntimeBundle(str(tmp_path / "cache"))
    remote = bundle_dir(bundle.digest()) + "-" + tmp_path.name
    transport.push(bundle.materialize(), remote)
    return RemoteVenvBuilder(transport, f"{remote}/runplz_boot.py", root=f".runplz/venvs-{tmp_path.name}")


class TestRemoteVenvBuilderOverLocal(AbstractPythonEnvTests, PythonEnvFixtures):
    @pytest.fixture
    def envs(self, tmp_path):
        from runplz.adapters.local_transport import LocalTransport

        transport = LocalTransport(SubprocessRunner(), str(tmp_path / "home"))
        transport.connect()
        return _remote_builder(transport, tmp_path)


@pytest.mark.real
class TestRemoteVenvBuilderOverSsh(AbstractPythonEnvTests, PythonEnvFixtures):
    @pytest.fixture
    def envs(self, tmp_path, ssh_boxes):
        from runplz.adapters.ssh_transport import SshTransport
        from runplz.adapters.system_clock import SystemClock
        from runplz.domain.host import parse_target

        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target("root@runplz-near"))
        transport.connect(wait=30)
        yield _remote_builder(transport, tmp_path)
        transport.close()
