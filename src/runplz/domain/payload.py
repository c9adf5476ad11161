"""The remote protocol's records: what the driver sends, what the target answers.

Serialization lives in `runplz.protocol.wire`; these are plain frozen classes.
"""

from __future__ import annotations

import math
from typing import Any, Union

import attrs

from .errors import UsageError

PROTOCOL = 1


@attrs.frozen
class Dispatch:
    """One call of one function, as the target's runtime receives it."""

    protocol: int
    runplz_version: str
    run_id: str
    app: str
    script: str  # path of the job script relative to the repo root, '/'-separated
    function: str
    args: list[Any]
    kwargs: dict[str, Any]


@attrs.frozen
class Returned:
    """The function returned; ``value`` is JSON."""

    value: Any


@attrs.frozen
class Raised:
    """The function raised (or exited non-zero)."""

    type: str
    message: str
    traceback: str
    exit_code: int


Outcome = Union[Returned, Raised]


@attrs.frozen
class Result:
    """What the runtime writes into the run's output area when the call ends."""

    protocol: int
    run_id: str
    outcome: Outcome


def json_problem(value: Any, where: str = "") -> str | None:
    """Say why ``value`` does not survive a JSON round trip, or None if it does."""
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'value'} is {value!r} (not JSON)"
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where or 'value'} has a non-string key {key!r}"
            problem = json_problem(item, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{where or 'value'} is a {type(value).__name__}, which JSON cannot carry"


def check_call_args(function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse arguments that JSON would not carry faithfully, before anything is sent."""
    for index, arg in enumerate(args):
        problem = json_problem(arg, f"argument {index}")
        if problem:
            raise UsageError(f"{function}.remote(): {problem}; arguments must be JSON")
    for key, arg in kwargs.items():
        problem = json_problem(arg, f"argument {key!r}")
        if problem:
            raise UsageError(f"{function}.remote(): {problem}; arguments must be JSON")


def settle(result: Result | None, exit_code: int, run_id: str) -> Any:
    """The call's value, or a `RemoteError` describing how it failed."""
    from .errors import RemoteError

    if result is None or result.run_id != run_id:
        raise RemoteError(
            "RunplzNoResult",
            f"the job exited with code {exit_code} before writing a result",
            "",
            exit_code or 1,
        )
    outcome = result.outcome
    if isinstance(outcome, Raised):
        raise RemoteError(outcome.type, outcome.message, outcome.traceback, exit_code or outcome.exit_code or 1)
    return outcome.value
