"""Console contract: the stderr console and the recording fake."""

import io

import pytest

from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.stderr_console import StderrConsole

from .suites.console import AbstractConsoleTests, ConsoleFixtures


class TestStderrConsole(AbstractConsoleTests, ConsoleFixtures):
    @pytest.fixture
    def stream(self):
        return io.StringIO()

    @pytest.fixture
    def console(self, stream):
        return StderrConsole(stream)

    @pytest.fixture
    def transcript(self, stream):
        return stream.getvalue


class TestRecordingConsole(AbstractConsoleTests, ConsoleFixtures):
    @pytest.fixture
    def console(self):
        return RecordingConsole()

    @pytest.fixture
    def transcript(self, console):
        return lambda: "\n".join(message for _, message in console.events)
