"""How long a run may last: the function's ``timeout`` and a backend's kill-switch.

In the seed, ``timeout`` was Modal's knob. Left unset it caps nothing on the
user's own machines (local, ssh, brev), and Modal keeps its own default.
"""

from __future__ import annotations

import attrs

MODAL_DEFAULT_TIMEOUT = 3600


@attrs.frozen
class RunLimit:
    """A wall-clock cap on one run, with the words that say where it came from."""

    seconds: float
    reason: str


def run_limit(timeout: int | None, max_runtime_seconds: float | None = None) -> RunLimit | None:
    """The cap of a run outside Modal: the smaller of an explicit ``timeout`` and
    the backend's ``max_runtime_seconds``; None when neither is set."""
    limits = []
    if timeout is not None:
        limits.append(RunLimit(float(timeout), f"its timeout of {timeout}s"))
    if max_runtime_seconds is not None:
        limits.append(RunLimit(float(max_runtime_seconds), f"max_runtime_seconds={max_runtime_seconds:g}"))
    return min(limits, key=lambda limit: limit.seconds) if limits else None


def modal_timeout(timeout: int | None) -> int:
    """Modal always needs one: an explicit ``timeout``, else Modal's 3600 s."""
    return MODAL_DEFAULT_TIMEOUT if timeout is None else timeout


def modal_deadline(timeout: int) -> float:
    """When the container side stops a Modal job itself: before Modal's own
    ``timeout`` kills the container, leaving a margin (10% of it, 1 to 60 s,
    never more than half) to stop the job and return the outputs written so far."""
    return max(timeout * 0.5, float(timeout) - min(60.0, max(1.0, timeout * 0.1)))


def modal_grace(timeout: int) -> float:
    """Between SIGTERM and SIGKILL when `modal_deadline` passes: half the
    margin, at most 10 s, so a job that ignores SIGTERM still leaves time to
    pack its outputs."""
    return min(10.0, (timeout - modal_deadline(timeout)) / 2)


def modal_timeout_message(function: str, timeout: int) -> str:
    return f"{function} ran past its timeout of {timeout}s on Modal and was stopped"
