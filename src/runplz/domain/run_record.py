"""A run's record: the events a driver appends as it goes, and their JSON lines.

Each event is one JSON object on one line::

    {"v": 1, "kind": "phase", "name": "upload", "at": 1714564800.0}

``v`` is the format version. Readers are forward compatible: an unknown
``kind`` is skipped, unknown keys are ignored, and a newer ``v`` is read for
the fields this version knows (a breaking change gets a new kind, not a new
meaning for an old one). A line that is not a complete, valid event (a torn
last line after a crash, say) decodes to None and is skipped.

Environment variables are recorded by name only: no event has a field for a
value.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Union

import attrs

from .errors import UsageError

VERSION = 1
# Set in the environment of a local native run's job (to the run id): how
# `runplz down` tells the run's own processes from every other process.
JOB_MARK = "RUNPLZ_RUN_ID"
PHASES = ("provision", "connect", "upload", "build", "run", "collect")
OUTCOMES = ("ok", "failed", "timeout", "interrupted")


class RunNotFound(UsageError):
    """No recorded run answers to that id or prefix (or the prefix is ambiguous)."""


def _strs(value: Iterable[Any]) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)):
        raise TypeError("expected a list of strings, not a string")
    return tuple(str(item) for item in value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _opt_size(value: Any) -> int | None:
    return None if value is None else _int(value)


@attrs.frozen
class Started:
    """The first event of every run. ``driver_*`` name the driver process
    (pid, its start time as the OS tells it, host); the store fills them in."""

    run: str = attrs.field(converter=str)
    backend: str = attrs.field(converter=str)
    target: str = attrs.field(converter=str)
    app: str = attrs.field(converter=str)
    function: str = attrs.field(converter=str)
    args: tuple[str, ...] = attrs.field(converter=_strs)
    env_names: tuple[str, ...] = attrs.field(converter=_strs)
    outputs: str = attrs.field(converter=str)
    at: float = attrs.field(converter=_num)
    driver_pid: int = attrs.field(default=0, converter=_int)
    driver_started: str = attrs.field(default="", converter=str)
    driver_host: str = attrs.field(default="", converter=str)
    log: str = attrs.field(default="", converter=str)  # the driver log's file ("": none kept)
    map_id: str = attrs.field(default="", converter=str)  # one input of a `.map()` ("": a single call)
    index: int = attrs.field(default=-1, converter=_int)  # that input's position (-1: a single call)


@attrs.frozen
class Phase:
    """A phase began (one of `PHASES`; others are kept but sorted last)."""

    name: str = attrs.field(converter=str)
    at: float = attrs.field(converter=_num)


@attrs.frozen
class PhaseDone:
    """A phase ended after ``seconds``; ``size`` is bytes moved (upload, collect)."""

    name: str = attrs.field(converter=str)
    seconds: float = attrs.field(converter=_num)
    at: float = attrs.field(converter=_num)
    size: int | None = attrs.field(default=None, converter=_opt_size)
    detail: str = attrs.field(default="", converter=str)


@attrs.frozen
class Note:
    text: str = attrs.field(converter=str)
    at: float = attrs.field(converter=_num)


@attrs.frozen
class Box:
    """A billed machine the run uses from ``at`` on (brev): its type and price."""

    instance_type: str = attrs.field(converter=str)
    price_per_hour: float = attrs.field(converter=_num)
    at: float = attrs.field(converter=_num)
    name: str = attrs.field(default="", converter=str)


@attrs.frozen
class ImageBuilt:
    hash: str = attrs.field(converter=str)
    at: float = attrs.field(converter=_num)


def _outcome(value: Any) -> str:
    value = str(value)
    if value not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {value!r}")
    return value


@attrs.frozen
class Ended:
    """The run is over: ``outcome`` is "ok", "failed", "timeout" or "interrupted"."""

    exit_code: int | None = attrs.field(converter=_opt_int)
    outcome: str = attrs.field(converter=_outcome)
    at: float = attrs.field(converter=_num)


@attrs.frozen
class Detached:
    """The driver let go on purpose (``--detach``): the job carries on without it.
    Whoever later learns how it ended (a `runplz` command, the agent) appends `Ended`."""

    at: float = attrs.field(converter=_num)


@attrs.frozen
class Teardown:
    """What the driver is due to do to the run's box ``box`` when it is done
    (brev: "delete", "stop" or "leave"), so that `runplz down` can do it for a
    driver that died. Older records have none."""

    box: str = attrs.field(converter=str)
    action: str = attrs.field(converter=str)
    at: float = attrs.field(converter=_num)


Event = Union[Started, Phase, PhaseDone, Note, Box, ImageBuilt, Ended, Detached, Teardown]

KINDS: dict[str, type] = {
    "started": Started,
    "phase": Phase,
    "phase_done": PhaseDone,
    "note": Note,
    "box": Box,
    "image": ImageBuilt,
    "ended": Ended,
    "detached": Detached,
    "teardown": Teardown,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def encode_event(event: Event) -> str:
    """One line of JSON, without the newline."""
    kind = _KIND_OF.get(type(event))
    if kind is None:
        raise TypeError(f"not a run event: {event!r}")
    data: dict[str, Any] = {"v": VERSION, "kind": kind}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        data[field.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def decode_event(line: str | bytes) -> Event | None:
    """The event on ``line``, or None for an unknown kind or a broken line."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    version = data.get("v")
    cls = KINDS.get(data.get("kind"))  # type: ignore[arg-type]
    if cls is None or isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return None
    names = {field.name for field in attrs.fields(cls)}
    try:
        return cls(**{key: value for key, value in data.items() if key in names})
    except (TypeError, ValueError, OverflowError):
        return None


def encode_events(events: Iterable[Event]) -> str:
    """JSON lines, each ended by a newline."""
    return "".join(encode_event(event) + "\n" for event in events)


def decode_events(text: str | bytes) -> tuple[Event, ...]:
    """Every complete, readable event of a JSON-lines text, in order. The part
    after the last newline is a torn write (a crash mid-line) and is ignored."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape")
    complete = text[: text.rfind(b"\n") + 1]
    found = []
    for line in complete.split(b"\n"):
        if line.strip():
            event = decode_event(line)
            if event is not None:
                found.append(event)
    return tuple(found)


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def valid_run_id(run_id: str) -> bool:
    """Whether ``run_id`` can name a record (it becomes a folder name)."""
    return (
        isinstance(run_id, str) and 0 < len(run_id) <= 100 and set(run_id) <= _ID_CHARS
        and run_id[0] not in ".-"
    )


def resolve_run(run_ids: Iterable[str], text: str) -> str:
    """``text`` as a run id: "last" is the newest (the greatest id), else the
    one id that starts with ``text``. Raises `RunNotFound` with one line."""
    ids = sorted(set(run_ids), reverse=True)
    text = text.strip()
    if not ids:
        raise RunNotFound("no runs are recorded yet; start one with `runplz <backend> job.py`")
    if not text:
        raise RunNotFound('give a run id, a prefix of one, or "last"; `runplz ps` lists the recorded runs')
    if text == "last":
        return ids[0]
    if text in ids:
        return text
    matches = [run for run in ids if run.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFound(f"no run matches {text!r}; `runplz ps` lists the recorded runs")
    shown = ", ".join(matches[:3]) + (", ..." if len(matches) > 3 else "")
    raise RunNotFound(f"{text!r} matches {len(matches)} runs ({shown}); give more of the id")
