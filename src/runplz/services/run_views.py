"""What `runplz ps`, `runplz status RUN` and `runplz logs RUN [-f]` show, from a `RunStore`.

Times are shown in UTC ("2024-05-01 12:00:05Z"), so output is the same on every machine.
"""

from __future__ import annotations

import codecs
from datetime import datetime, timezone
from typing import Mapping, Protocol, Sequence

from ..domain.run_liveness import BackendView
from ..domain.run_record import Ended, RunNotFound
from ..domain.run_summary import RunSummary, prune_candidates, summarize
from ..ports.clock import Clock
from ..ports.run_store import RunStore

POLL_SECONDS = 0.25


class TextOut(Protocol):
    def write(self, text: str) -> object: ...


def summary_of(store: RunStore, run_id: str, now: float) -> RunSummary:
    """The run's summary (`RunNotFound` for an unknown run)."""
    return summarize(store.events(run_id), store.driver_alive(run_id), now, run=run_id)


def summaries(store: RunStore, now: float, limit: int | None = None) -> tuple[RunSummary, ...]:
    """Every recorded run (or the ``limit`` newest), newest first; a record
    removed while being read is skipped."""
    found = []
    for run in store.runs()[:limit]:
        try:
            found.append(summary_of(store, run, now))
        except RunNotFound:
            continue
    return tuple(found)


def prune_records(store: RunStore, now: float, keep_days: float = 14, keep_last: int = 50) -> tuple[str, ...]:
    """Delete the records `prune_candidates` selects; returns their ids."""
    if len(store.runs()) <= keep_last:  # the rule keeps the newest keep_last whatever they are
        return ()
    chosen = prune_candidates(summaries(store, now), now, keep_days, keep_last)
    for run in chosen:
        store.remove(run)
    return chosen


def when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def money(summary: RunSummary) -> str:
    if summary.cost is None:
        return "-"
    return f"${summary.cost:.2f}" + ("+" if summary.cost_is_lower_bound else "")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


_COLUMNS = ("RUN", "BACKEND", "TARGET", "FUNCTION", "STATUS", "STARTED", "RUNTIME", "EXIT", "COST")
BACKEND_COLUMN = "ON BACKEND"


def ps_table(rows: Sequence[RunSummary], views: Mapping[str, BackendView] | None = None) -> str:
    """One line per run under a header, columns aligned; "no runs recorded" when empty.
    With ``views`` (what the backends said, by run) a last column ON BACKEND shows
    them ("-" for a run not asked about); none is added when ``views`` is empty."""
    if not rows:
        return "no runs recorded\n"
    columns = _COLUMNS + ((BACKEND_COLUMN,) if views else ())
    table = [columns] + [
        (
            s.run, s.backend or "-", s.target or "-", s.function or "-", s.status,
            when(s.started_at), duration(s.runtime), "-" if s.exit_code is None else str(s.exit_code), money(s),
        ) + ((views[s.run].line() if s.run in views else "-",) if views else ())
        for s in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines) + "\n"


def _phases(summary: RunSummary) -> str:
    sizes = dict(summary.phase_sizes)
    parts = [
        f"{name} {duration(seconds)}" + (f" ({_size(sizes[name])})" if name in sizes else "")
        for name, seconds in summary.phase_seconds
    ]
    if summary.phase and summary.state == "running":
        parts.append(f"{summary.phase} (running, {duration(summary.open_phase_seconds)})")
    elif summary.phase:
        parts.append(f"{summary.phase} (unfinished)")
    return ", ".join(parts) or "-"


def status_text(summary: RunSummary, log_path: str = "", view: BackendView | None = None) -> str:
    """The run's status as labelled lines: phase, last event, exit code, runtime, cost
    (and, given ``view``, what its backend says, after the status)."""
    call = summary.function + (f"({', '.join(summary.args)})" if summary.args else "()")
    rows = [
        ("run", summary.run),
        ("status", summary.status),
        *((("on backend", view.line()),) if view is not None else ()),
        ("backend", f"{summary.backend} (target {summary.target})" if summary.target else summary.backend),
        ("function", f"{summary.app}: {call}" if summary.app else call),
        ("env", ", ".join(summary.env_names) or "-"),
        ("started", when(summary.started_at)),
        ("ended", when(summary.ended_at)),
        ("runtime", duration(summary.runtime)),
        ("exit code", "-" if summary.exit_code is None else str(summary.exit_code)),
        ("last event", f"{summary.last_event} ({when(summary.last_event_at)})" if summary.last_event else "-"),
        ("phases", _phases(summary)),
    ]
    if summary.image_hash:
        rows.append(("image", summary.image_hash))
    if summary.instance_type:
        box = f"{summary.box_name} " if summary.box_name else ""
        rows.append(("box", f"{box}{summary.instance_type} at ${summary.price_per_hour:.2f}/h"))
        rows.append(("cost", money(summary) + (" (at least; the driver died)" if summary.cost_is_lower_bound else "")))
    rows.append(("outputs", summary.outputs or "-"))
    if summary.driver_pid:
        alive = "running" if summary.driver_alive else "gone"
        rows.append(("driver", f"pid {summary.driver_pid} on {summary.driver_host or '?'} ({alive})"))
    for note in summary.notes[-3:]:
        rows.append(("note", note))
    if log_path:
        rows.append(("log", log_path))
    width = max(len(label) for label, _ in rows)
    return "".join(f"{label.ljust(width)}  {value}\n" for label, value in rows)


def _over(store: RunStore, run_id: str) -> bool:
    return any(isinstance(event, Ended) for event in store.events(run_id)) or not store.driver_alive(run_id)


def follow_log(
    store: RunStore, run_id: str, clock: Clock, out: TextOut, follow: bool = False,
    poll: float = POLL_SECONDS,
) -> int:
    """Write the run's driver log to ``out``; returns the bytes shown.

    With ``follow``, keep writing what is appended, checking every ``poll``
    seconds, until the run has an Ended event or its driver is gone; then write
    what remains and return. It only reads, so any number of followers, in any
    terminal, may follow one run, before or after its driver died."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0
    while True:
        over = not follow or _over(store, run_id)  # judged before the last read: nothing written before the end is lost
        while True:
            chunk = store.read_log(run_id, offset)
            if not chunk:
                break
            offset += len(chunk)
            text = decoder.decode(chunk)
            if text:
                out.write(text)
                _flush(out)
        if over:
            tail = decoder.decode(b"", final=True)
            if tail:
                out.write(tail)
                _flush(out)
            return offset
        clock.sleep(poll)


def _flush(out: TextOut) -> None:
    flush = getattr(out, "flush", None)
    if callable(flush):
        flush()
