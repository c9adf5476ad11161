"""What a run's events add up to, and which finished runs may be pruned. Pure.

The status tells the truth about how far a run got:

- ``state`` "running": no Ended event and the driver still lives;
  ``status`` "running (phase upload)" (or "running" between phases);
- ``state`` "ended": an Ended event; ``status`` "ok (exit 0)", "failed (exit 3)",
  "timed out" or "interrupted";
- ``state`` "died": no Ended event and the driver is gone; ``status``
  "driver died during upload", "driver died after build" or
  "driver died before its first phase";
- ``state`` "detached": no Ended event, the driver let go on purpose (a
  Detached event) and is gone; ``status`` "detached (phase run)". Only the
  backend can tell how such a run is doing; it is never pruned;
- ``state`` "unknown": the record has no readable Started event.

Cost so far is the last Box event's price per hour times the hours from that
event to the end of the run (or ``now`` while it runs, or the last event the
dead driver wrote: for a dead driver it is a lower bound).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import attrs

from .run_record import PHASES, Box, Detached, Ended, Event, ImageBuilt, Note, Phase, PhaseDone, Started, Teardown

DAY = 86400.0


@attrs.frozen
class RunSummary:
    run: str
    state: str  # "running" | "ended" | "died" | "detached" | "unknown"
    status: str
    phase: str | None  # the open phase (for "ended"/"died": the one open at the end)
    backend: str = ""
    target: str = ""
    app: str = ""
    function: str = ""
    args: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    outputs: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    last_event: str = ""
    last_event_at: float | None = None
    exit_code: int | None = None
    outcome: str | None = None
    runtime: float | None = None  # seconds
    phase_seconds: tuple[tuple[str, float], ...] = ()  # finished phases, in phase order
    phase_sizes: tuple[tuple[str, int], ...] = ()  # bytes moved per phase, where recorded
    open_phase_seconds: float | None = None  # how long the open phase has run (while running)
    image_hash: str | None = None
    instance_type: str | None = None
    box_name: str | None = None
    price_per_hour: float | None = None
    cost: float | None = None  # dollars so far
    cost_is_lower_bound: bool = False
    notes: tuple[str, ...] = ()
    driver_pid: int = 0
    driver_host: str = ""
    driver_alive: bool = False

    @property
    def finished(self) -> bool:
        """Over for good: ended or died, and its driver is gone."""
        return self.state in ("ended", "died") and not self.driver_alive


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def describe(event: Event) -> str:
    """One short line for an event."""
    if isinstance(event, Started):
        return f"started on {event.backend}"
    if isinstance(event, Phase):
        return f"{event.name} started"
    if isinstance(event, PhaseDone):
        extra = [_size(event.size)] if event.size is not None else []
        extra += [event.detail] if event.detail else []
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"{event.name} done in {event.seconds:.1f}s{tail}"
    if isinstance(event, Note):
        return event.text
    if isinstance(event, Box):
        named = f" {event.name}" if event.name else ""
        return f"box{named} {event.instance_type} at ${event.price_per_hour:.2f}/h"
    if isinstance(event, ImageBuilt):
        return f"image {event.hash[:16]}"
    if isinstance(event, Ended):
        return f"ended: {_ended_status(event)}"
    if isinstance(event, Detached):
        return "driver detached"
    if isinstance(event, Teardown):
        return f"due at the end: {event.action} box {event.box}"
    return type(event).__name__  # pragma: no cover


def _ended_status(event: Ended) -> str:
    if event.outcome == "timeout":
        return "timed out"
    if event.outcome == "interrupted":
        return "interrupted"
    code = "" if event.exit_code is None else f" (exit {event.exit_code})"
    return f"{event.outcome}{code}"


def _order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [name for name in PHASES if name in names]
    return known + [name for name in names if name not in PHASES]


def summarize(events: Sequence[Event], driver_alive: bool, now: float, run: str = "") -> RunSummary:
    """Fold a run's events into its summary. ``driver_alive``: whether the
    process that wrote them still runs; ``now``: epoch seconds."""
    start: Started | None = None
    ended: Ended | None = None
    box: Box | None = None
    image: str | None = None
    opened: dict[str, float] = {}  # open phases, in the order they began
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}
    notes: list[str] = []
    last: Event | None = None
    detached = False
    for event in events:
        last = event
        if isinstance(event, Started):
            start = start or event
        elif isinstance(event, Phase):
            opened.pop(event.name, None)
            opened[event.name] = event.at
        elif isinstance(event, PhaseDone):
            opened.pop(event.name, None)
            seconds[event.name] = seconds.get(event.name, 0.0) + event.seconds
            if event.size is not None:
                sizes[event.name] = sizes.get(event.name, 0) + event.size
        elif isinstance(event, Box):
            box = event
        elif isinstance(event, ImageBuilt):
            image = event.hash
        elif isinstance(event, Note):
            notes.append(event.text)
        elif isinstance(event, Ended):
            ended = ended or event
        elif isinstance(event, Detached):
            detached = True
    phase = next(reversed(opened), None) if opened else None
    done = _order(seconds)
    if start is None:
        state, status = "unknown", "no record of its start"
    elif ended is not None:
        state, status = "ended", _ended_status(ended)
    elif detached and not driver_alive:
        state = "detached"
        status = f"detached (phase {phase})" if phase else "detached"
    elif driver_alive:
        state = "running"
        status = f"running (phase {phase})" if phase else "running"
    else:
        state = "died"
        if phase:
            status = f"driver died during {phase}"
        elif done:
            status = f"driver died after {done[-1]}"
        else:
            status = "driver died before its first phase"
    if ended is not None:
        stop = ended.at
    elif state in ("running", "detached"):
        stop = now
    else:
        stop = last.at if last is not None else now
    runtime = max(0.0, stop - start.at) if start is not None else None
    cost = box.price_per_hour * max(0.0, stop - box.at) / 3600.0 if box is not None else None
    return RunSummary(
        run=start.run if start is not None else run,
        state=state,
        status=status,
        phase=phase,
        backend=start.backend if start else "",
        target=start.target if start else "",
        app=start.app if start else "",
        function=(start.function if start.index < 0 else f"{start.function}[{start.index}]") if start else "",
        args=start.args if start else (),
        env_names=start.env_names if start else (),
        outputs=start.outputs if start else "",
        started_at=start.at if start else None,
        ended_at=ended.at if ended else None,
        last_event=describe(last) if last is not None else "",
        last_event_at=last.at if last is not None else None,
        exit_code=ended.exit_code if ended else None,
        outcome=ended.outcome if ended else None,
        runtime=runtime,
        phase_seconds=tuple((name, seconds[name]) for name in done),
        phase_sizes=tuple((name, sizes[name]) for name in _order(sizes)),
        open_phase_seconds=max(0.0, now - opened[phase]) if phase and state in ("running", "detached") else None,
        image_hash=image,
        instance_type=box.instance_type if box else None,
        box_name=(box.name or None) if box else None,
        price_per_hour=box.price_per_hour if box else None,
        cost=cost,
        cost_is_lower_bound=cost is not None and state == "died",
        notes=tuple(notes),
        driver_pid=start.driver_pid if start else 0,
        driver_host=start.driver_host if start else "",
        driver_alive=driver_alive,
    )


def prune_candidates(
    summaries: Sequence[RunSummary], now: float, keep_days: float = 14, keep_last: int = 50
) -> tuple[str, ...]:
    """The runs whose records may be deleted, oldest first.

    The rule: keep the ``keep_last`` newest runs whatever they are; of the
    others, prune a run only when it is finished (an Ended event or a dead
    driver, and its driver no longer runs) and it finished (or last wrote)
    more than ``keep_days`` days before ``now``. A running run, a run whose
    driver lives, and a run with no readable start are never selected.
    """
    dated = sorted(
        (s for s in summaries if s.started_at is not None),
        key=lambda s: (s.started_at, s.run),
        reverse=True,
    )
    older = dated[max(0, keep_last):]
    cutoff = now - keep_days * DAY
    chosen = []
    for summary in older:
        if not summary.finished or summary.state not in ("ended", "died"):
            continue
        finished_at = summary.ended_at if summary.ended_at is not None else summary.last_event_at
        if finished_at is not None and finished_at < cutoff:
            chosen.append(summary.run)
    return tuple(reversed(chosen))


def prune_remote(
    remote_runs: Iterable[str], summaries: Sequence[RunSummary], now: float,
    keep_days: float = 14, keep_last: int = 50,
) -> tuple[str, ...]:
    """Which of a box's run folders (``~/.runplz/runs/<id>``) may be deleted:
    those of runs this user's local records show finished by the same rule.
    A folder with no local record (another machine's run, another user's) is
    never selected."""
    allowed = set(prune_candidates(summaries, now, keep_days, keep_last))
    return tuple(run for run in sorted(set(remote_runs)) if run in allowed)
