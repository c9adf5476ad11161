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


class LoggedSubprocessFixtures(SubprocessFixtures):
    """The runner as the CLI builds it: every command and inherited output also
    goes to the driver log (output passes through runplz instead of straight
    to the terminal)."""

    @pytest.fixture
    def runner(self):
        from runplz.adapters.fake_log import MemoryLog

        return SubprocessRunner(log=MemoryLog())


class FakeFixtures(CommandRunnerFixtures):
    @pytest.fixture
    def runner(self):
        return FakeCommandRunner({"helper": helper_program.fake_program})

    @pytest.fixture
    def helper(self):
        return ["helper"]


class TestSubprocessRunner(AbstractCommandRunnerTests, AbstractRawOutputTests, SubprocessFixtures):
    pass


class TestLoggedSubprocessRunner(AbstractCommandRunnerTests, AbstractRawOutputTests, LoggedSubprocessFixtures):
    def test_inherited_output_reaches_the_terminal_and_the_log(self, runner, helper, capfd):
        runner.run([*helper, "both"], inherit=True)
        shown = capfd.readouterr()
        logged = runner._log.text()
        assert shown.out and shown.err
        for line in (shown.out + shown.err).splitlines():
            assert line in logged
        assert logged.splitlines()[0].startswith("$ ")


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
