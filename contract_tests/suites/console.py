"""The `Console` contract."""

from __future__ import annotations

import pytest

from runplz.ports.console import Console


class ConsoleFixtures:
    """Provide ``console`` and ``transcript`` (a callable: all shown text so far)."""

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
