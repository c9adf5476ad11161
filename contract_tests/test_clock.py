"""Clock contract: the system clock and the fake."""

import pytest

from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.system_clock import SystemClock

from .suites.clock import AbstractClockTests, ClockFixtures


class TestSystemClock(AbstractClockTests, ClockFixtures):
    @pytest.fixture
    def clock(self):
        return SystemClock()


class TestFakeClock(AbstractClockTests, ClockFixtures):
    @pytest.fixture
    def clock(self):
        return FakeClock()
