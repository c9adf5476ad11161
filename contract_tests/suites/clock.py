"""The `Clock` contract."""

from __future__ import annotations

import time

import pytest

from runplz.ports.clock import Clock


class ClockFixtures:
    @pytest.fixture
    def clock(self) -> Clock:
        raise NotImplementedError


class AbstractClockTests:
    def test_is_a_clock(self, clock):
        assert isinstance(clock, Clock)

    def test_now_is_epoch_seconds(self, clock):
        assert 1_600_000_000 < clock.now() < 4_000_000_000

    def test_monotonic_never_goes_back(self, clock):
        readings = [clock.monotonic() for _ in range(100)]
        assert readings == sorted(readings)

    def test_sleep_advances_both(self, clock):
        mono, wall = clock.monotonic(), clock.now()
        clock.sleep(0.05)
        assert clock.monotonic() - mono >= 0.05
        assert clock.now() - wall >= 0.04

    @pytest.mark.parametrize("seconds", [0, -1])
    def test_sleep_zero_or_negative_returns_at_once(self, clock, seconds):
        started = time.monotonic()
        before = clock.monotonic()
        clock.sleep(seconds)
        assert time.monotonic() - started < 0.5
        assert clock.monotonic() - before < 0.5
