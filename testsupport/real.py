"""Real-part tests skip with a reason, unless RUNPLZ_REQUIRE_REAL=1 turns skips into failures."""

from __future__ import annotations

import os

import pytest


def required() -> bool:
    return os.environ.get("RUNPLZ_REQUIRE_REAL") == "1"


def unavailable(reason: str) -> None:
    """Skip (or, when real parts are required, fail) the current test."""
    if required():
        pytest.fail(f"RUNPLZ_REQUIRE_REAL=1 but a real part is missing: {reason}", pytrace=False)
    pytest.skip(reason)
