"""Console contract: the stderr console (on a pipe and on a real pseudo-terminal) and the recording fake."""

import io
import os
import re
import select
import threading
import time

import pytest

from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.stderr_console import StderrConsole
from runplz.adapters.terminal import Terminal

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


def screen_text(data: bytes) -> str:
    """What stays on the terminal: each erased status line removed, CR LF back to LF."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"[^\n\r]*\r\x1b\[K", "", text)


class PseudoTerminal:
    """A real pty; a thread reads all that reaches it (so no write ever blocks)."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.stream = os.fdopen(slave, "w", encoding="utf-8")
        self.data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    chunk = os.read(self.master, 1 << 16)
                except OSError:
                    return
                if not chunk:
                    return
                self.data += chunk

    def settled(self) -> bytes:
        """All written so far, once nothing more arrives for a moment."""
        size = -1
        while size != len(self.data):
            size = len(self.data)
            time.sleep(0.1)
        return bytes(self.data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.stream.close()
        os.close(self.master)


class TestStderrConsoleOnATerminal(AbstractConsoleTests, ConsoleFixtures):
    @pytest.fixture
    def pty(self):
        terminal = PseudoTerminal()
        yield terminal
        terminal.close()

    @pytest.fixture
    def console(self, pty):
        return StderrConsole(terminal=Terminal(pty.stream, term="xterm", clock=FakeClock(), ticker=False))

    @pytest.fixture
    def transcript(self, pty):
        return lambda: screen_text(pty.settled())


class TestRecordingConsole(AbstractConsoleTests, ConsoleFixtures):
    @pytest.fixture
    def console(self):
        return RecordingConsole()

    @pytest.fixture
    def transcript(self, console):
        return lambda: "\n".join(message for kind, message in console.events if kind != "progress")
