"""CommandRunner contract: the subprocess adapter and the fake."""

import os
import sys

import pytest

from runplz.adapters.fake_runner import FakeCommandRunner
from runplz.adapters.subprocess_runner import SubprocessRunner

from .suites import helper_program
from .suites.command_runner import AbstractCommandRunnerTests, CommandRunnerFixtures

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


class TestSubprocessRunner(AbstractCommandRunnerTests, SubprocessFixtures):
    pass


class TestFakeCommandRunner(AbstractCommandRunnerTests, FakeFixtures):
    pass
