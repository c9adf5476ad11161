"""CommandRunner contract: the subprocess adapter and the fake."""

import os
import sys

import pytest

from runplz.adapters.fake_runner import FakeCommandRunner
from runplz.adapters.subprocess_runner import SubprocessRunner

from .suites import helper_program
from .suites.command_runner import AbstractCommandRunnerTests, AbstractRawOutputTests, CommandRunnerFixtures

HELPER = os.path.abspath(helper_program.__file__)


class SubprocessFixtures(CommandRunnerFixtures):
    @pytest.fixture
    def runner(self):
        return SubprocessRunner()

    @pytest.fixture
    def helper(self):
        return [sys.executable, HELPER]


class FakeFixtures(CommandRunnerFixtures):
    @pytest.fixture
    def runner(self):
        return FakeCommandRunner({"helper": helper_program.fake_program})

    @pytest.fixture
    def helper(self):
        return ["helper"]


class TestSubprocessRunner(AbstractCommandRunnerTests, AbstractRawOutputTests, SubprocessFixtures):
    pass


class TestFakeCommandRunner(AbstractCommandRunnerTests, AbstractRawOutputTests, FakeFixtures):
    pass


class LocalTransportRunnerFixtures(CommandRunnerFixtures):
    @pytest.fixture
    def runner(self, tmp_path):
        from runplz.adapters.local_transport import LocalTransport
        from runplz.adapters.transport_runner import TransportCommandRunner

        transport = LocalTransport(SubprocessRunner(), str(tmp_path / "home"))
        transport.connect()
        return TransportCommandRunner(transport)

    @pytest.fixture
    def helper(self):
        return [sys.executable, HELPER]


class SshTransportRunnerFixtures(CommandRunnerFixtures):
    @pytest.fixture
    def runner(self, ssh_boxes):
        from runplz.adapters.ssh_transport import SshTransport
        from runplz.adapters.system_clock import SystemClock
        from runplz.adapters.transport_runner import TransportCommandRunner
        from runplz.domain.host import parse_target

        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target("root@runplz-near"))
        transport.connect(wait=30)
        yield TransportCommandRunner(transport)
        transport.close()

    @pytest.fixture
    def helper(self):
        return [sys.executable, HELPER]


class TestTransportRunnerOverLocal(AbstractCommandRunnerTests, AbstractRawOutputTests, LocalTransportRunnerFixtures):
    pass


@pytest.mark.real
class TestTransportRunnerOverSsh(AbstractCommandRunnerTests, AbstractRawOutputTests, SshTransportRunnerFixtures):
    pass
