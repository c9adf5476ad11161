"""Transport contract: ssh+rsync against real sshd boxes, the local folder transport, the fake."""

import os
import re
import signal
import subprocess

import pytest

from runplz.adapters.fake_transport import FakeTransport
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.ssh_transport import SshTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.system_clock import SystemClock
from runplz.domain.host import parse_target

from .suites.transport import AbstractTransportTests, TransportFixtures, fake_helper, fake_hostile


def kill_master(transport: SshTransport) -> None:
    check = subprocess.run(
        ["ssh", "-o", f"ControlPath={transport.control_path}", "-O", "check", "x"], capture_output=True, text=True
    )
    pid = int(re.search(r"pid=(\d+)", check.stderr).group(1))
    os.kill(pid, signal.SIGKILL)


class SshFixtures(TransportFixtures):
    alias = "runplz-near"

    @pytest.fixture
    def transport(self, ssh_boxes):
        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target(self.alias))
        transport.connect(wait=30)
        yield transport
        transport.close()

    @pytest.fixture
    def home(self, ssh_boxes):
        return ssh_boxes.user_home

    @pytest.fixture
    def break_connection(self, transport):
        return lambda: kill_master(transport)


@pytest.mark.real
class TestSshTransport(AbstractTransportTests, SshFixtures):
    pass


@pytest.mark.real
class TestSshTransportToTheNetnsBox(AbstractTransportTests, SshFixtures):
    alias = "runplz-far"

    @pytest.fixture
    def transport(self, ssh_boxes, far_box):
        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target(self.alias))
        transport.connect(wait=30)
        yield transport
        transport.close()


@pytest.mark.real
class TestSshTransportAsRoot(AbstractTransportTests, SshFixtures):
    """A root login on the box: hostile outputs can carry device nodes and set-id root files."""

    @pytest.fixture
    def transport(self, ssh_boxes):
        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target("root@" + self.alias))
        transport.connect(wait=30)
        yield transport
        transport.close()

    @pytest.fixture
    def home(self, ssh_boxes):
        return "/root"

    @pytest.fixture
    def devices(self):
        return True


class TestLocalTransport(AbstractTransportTests, TransportFixtures):
    @pytest.fixture
    def transport(self, tmp_path):
        transport = LocalTransport(SubprocessRunner(), str(tmp_path / "home"))
        transport.connect()
        return transport

    @pytest.fixture
    def home(self, tmp_path):
        return str(tmp_path / "home")

    @pytest.fixture
    def break_connection(self, transport):
        return transport.close

    @pytest.fixture
    def devices(self):
        return os.geteuid() == 0


class TestFakeTransport(AbstractTransportTests, TransportFixtures):
    @pytest.fixture
    def transport(self):
        transport = FakeTransport({"python3": fake_helper})
        transport.connect()
        return transport

    @pytest.fixture
    def break_connection(self, transport):
        return transport.drop

    @pytest.fixture
    def devices(self):
        return True

    @pytest.fixture
    def make_hostile(self, transport):
        return lambda folder, devices: fake_hostile(transport, folder, devices)

    @pytest.fixture
    def make_link(self, transport):
        return lambda path, target: transport.links.__setitem__(path.strip("/"), target)
