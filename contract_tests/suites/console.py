"""The `Console` contract."""

from __future__ import annotations

import pytest

from runplz.ports.console import Console


class ConsoleFixtures:
    """Provide ``console`` and ``transcript`` (a callable: all shown text so far,
    lasting messages only: a status line that was taken away is not part of it)."""

    @pytest.fixture
    def console(self) -> Console:
        raise NotImplementedError

    @pytest.fixture
    def transcript(self, console):
        raise NotImplementedError


class AbstractConsoleTests:
    def test_is_a_console(self, console):
        assert isinstance(console, Console)

    def test_shows_whole_messages_in_order(self, console, transcript):
        console.info("first")
        console.warn("second: ünïcode 中 and\ntwo lines")
        console.output("third")
        text = transcript()
        assert text.index("first") < text.index("second: ünïcode 中 and\ntwo lines") < text.index("third")

    @pytest.mark.parametrize("message", ["", "\n", "x" * 100_000, "\x1b[31mred\x1b[0m"])
    def test_never_raises(self, console, message):
        console.info(message)
        console.warn(message)
        console.output(message)
        console.progress(message)

    def test_a_status_line_never_garbles_the_messages_that_replace_it(self, console, transcript):
        console.progress("upload\u2026")
        console.info("upload: done in 0.4s, 1.2 MB")
        console.progress("build\u2026")
        console.warn("careful")
        console.progress("run\u2026")
        console.output("a tool's line")
        console.progress("")
        text = transcript()
        assert text.index("upload: done in 0.4s, 1.2 MB") < text.index("careful") < text.index("a tool's line")
        for message in ("upload: done in 0.4s, 1.2 MB", "careful", "a tool's line"):
            line = next(line for line in text.splitlines() if message in line)
            assert "\u2026" not in line, line  # no status line fragment inside a message
