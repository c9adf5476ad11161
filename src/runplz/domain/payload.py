"""The remote protocol's records: what the driver sends, what the target answers.

Serialization lives in `runplz.protocol.wire`; these are plain frozen classes.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Mapping, Sequence, Union

import attrs

from .carry import NotJson, plain_arguments
from .errors import ArgumentError, StandInWarning

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
    """The function returned; ``value`` is JSON (NaN and ±Infinity allowed).

    ``stand_ins`` holds one note per part of the value JSON could not carry and
    that came back as a stand-in (see `runplz.domain.carry`); the driver turns
    each into a `StandInWarning`.
    """

    value: Any
    stand_ins: tuple[str, ...] = attrs.field(default=(), converter=tuple)


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


def check_call_args(
    function: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The call's arguments as JSON will carry them: send these, not the originals.

    Normalised the ``json.dumps`` way (tuples become lists, int/float/bool/None
    dict keys become strings); NaN and ±Infinity pass. Anything else (a set,
    bytes, an object, a cycle) raises `ArgumentError` naming where it sits,
    before anything is sent.
    """
    try:
        return plain_arguments(args, kwargs)
    except NotJson as exc:
        raise ArgumentError(f"{function}.remote(): {exc}; arguments must be JSON") from None


def settle(result: Result | None, exit_code: int, run_id: str) -> Any:
    """The call's value, or a `RemoteError` describing how it failed.

    Each stand-in note of a returned value becomes a `StandInWarning`, pointed
    at the caller's ``.remote()`` line.
    """
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
    if outcome.stand_ins:
        level = _stacklevel()
        for note in outcome.stand_ins:
            warnings.warn(note, StandInWarning, stacklevel=level)
    return outcome.value


def _stacklevel() -> int:
    """The ``stacklevel`` that points `settle`'s warnings at the first caller
    outside runplz (the line calling ``.remote()``), whichever backend called."""
    level, frame = 2, sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name != "runplz" and not name.startswith("runplz."):
            return level
        level, frame = level + 1, frame.f_back
    return 2
