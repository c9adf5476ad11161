"""Each run's record, written as it goes: who ran what where, each phase, how it ended.

A backend asks `RunRecorder.begin` for its run (the id it uses everywhere:
the run folder on a box, a Brev box's name) and wraps its work in it::

    with self._runs.begin("ssh", host, call, outputs) as run:
        with run.phase("upload"):
            ...

The record goes to the `RunStore` (``runplz ps``, ``status``, ``logs``), and
the driver log is pointed at the run's own log file. Recording never fails a
run: a store that cannot be written costs one warning, then runs go unrecorded.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator

from ..domain.call import FunctionCall
from ..domain.errors import RemoteError, RunTimeout, UsageError
from ..domain.run_record import Box, Ended, ImageBuilt, Phase, PhaseDone, Started
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.log_sink import LogSink
from ..ports.run_store import RunStore
from .run_views import prune_records
from .runs import new_run_id


def _shown_args(call: FunctionCall) -> tuple[str, ...]:
    shown = [json.dumps(a, ensure_ascii=False, default=repr)[:200] for a in call.args]
    shown += [f"{k}={json.dumps(v, ensure_ascii=False, default=repr)[:200]}" for k, v in call.kwargs.items()]
    return tuple(shown)


def _outcome(exc: BaseException | None) -> tuple[int | None, str]:
    if exc is None:
        return 0, "ok"
    if isinstance(exc, RunTimeout):
        return 124, "timeout"
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(exc, RemoteError):
        return exc.exit_code, "failed"
    if isinstance(exc, UsageError):
        return 2, "failed"  # a mistake found once the run had begun: the CLI's exit code
    return 1, "failed"


class PhaseMark:
    """A phase under way; set ``size`` (bytes moved) before it ends.

    ``end()`` records its duration (and size) and shows the progress line
    "<phase>: done in 1.2s, 3.4 MB"; ``drop()`` leaves it unfinished (it
    failed: the record keeps it open, the console's status line goes). Only the
    first of them counts."""

    def __init__(self, recording: "Recording", name: str, size: int | None) -> None:
        self.size = size
        self.name = name
        self._recording = recording
        clock = recording._recorder.clock
        self._started = clock.monotonic()
        self._open = True
        recording._append(Phase(name, clock.now()))
        recording._progress(f"{name}\u2026")

    def end(self) -> None:
        if not self._open:
            return
        self._open = False
        clock = self._recording._recorder.clock
        seconds = clock.monotonic() - self._started
        self._recording._append(PhaseDone(self.name, seconds, clock.now(), size=self.size))
        console = self._recording._recorder.console
        if console is not None:
            console.info(f"{self.name}: done in {seconds:.1f}s{_size(self.size)}")

    def drop(self) -> None:
        if not self._open:
            return
        self._open = False
        self._recording._progress("")


def _size(size: int | None) -> str:
    if size is None:
        return ""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f", {size / scale:.1f} {unit}"
    return f", {size} B"


class Recording:
    """One run being recorded; ``id`` is the run id."""

    def __init__(self, recorder: "RunRecorder", run_id: str, live: bool, passing: bool = True) -> None:
        self.id = run_id
        self._recorder = recorder
        self._live = live
        self._passing = passing  # False for a map's input: the map's own line has the terminal

    def _append(self, event: Any) -> None:
        if self._live:
            self._live = self._recorder._append(self.id, event)

    def _progress(self, message: str) -> None:
        """The console's passing status line (a console without one shows nothing)."""
        if not self._passing:
            return
        show = getattr(self._recorder.console, "progress", None)
        if show is not None:
            show(message)

    def start(self, name: str, size: int | None = None) -> PhaseMark:
        """Record ``name`` starting now; the caller ends it (`PhaseMark.end`)
        or drops it, for a phase that does not fit one block."""
        return PhaseMark(self, name, size)

    @contextlib.contextmanager
    def phase(self, name: str, size: int | None = None) -> Iterator[PhaseMark]:
        """Record ``name`` starting now and, when the block completes, its
        duration (and size), which the console shows as one progress line;
        while it runs the console shows "<phase>…" as its status line."""
        mark = self.start(name, size)
        try:
            yield mark
        except BaseException:
            mark.drop()
            raise
        mark.end()

    def box(self, instance_type: str, price_per_hour: float, name: str = "") -> None:
        self._append(Box(instance_type, price_per_hour, self._recorder.clock.now(), name=name))

    def image(self, image_hash: str) -> None:
        """What the job ran in: an image's tag, or "venv:<key>" for a venv."""
        self._append(ImageBuilt(image_hash, self._recorder.clock.now()))

    def event(self, event: Any) -> None:
        """Append any other event of the record (a `Teardown`, say) as it is."""
        self._append(event)

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        code, outcome = _outcome(exc)
        self._append(Ended(code, outcome, self._recorder.clock.now()))
        if self._recorder.log is not None:
            self._recorder.log.flush()


class RunRecorder:
    """Records runs in ``store``; `RunRecorder.off` records nothing (a backend
    built without one, in tests or embedding)."""

    @classmethod
    def off(cls, clock: Clock) -> "RunRecorder":
        return cls(None, clock, None, None)

    def __init__(
        self, store: RunStore | None, clock: Clock, log: LogSink | None, console: Console | None,
        on_begin: Callable[[str], None] | None = None,
    ) -> None:
        self._on_begin = on_begin  # told each recorded run's id (a background driver reports it)
        self.store = store
        self.clock = clock
        self.log = log
        self.console = console
        self._broken = False
        self._pruned = False  # old records are pruned once per driver, at its first run
        self._map_logs: dict[str, str] = {}  # a map's log: its first input's, shared by all its inputs

    def begin(self, backend: str, target: str, call: FunctionCall, outputs: str, run_id: str | None = None) -> Recording:
        """Start the record of a run of ``call`` (a new id unless ``run_id`` is given)."""
        run = run_id or new_run_id(self.clock)
        log = ""
        shared = self._map_logs.get(call.map_id) if call.map_id else None
        if shared is not None:
            log = shared  # inputs run side by side: one log holds them all, each line says whose
        elif self.store is not None and self.log is not None:
            log = self.log.planned(self.store.log_path(run))
        started = Started(
            run=run, backend=backend, target=target, app=call.app, function=call.spec.name,
            args=_shown_args(call), env_names=tuple(sorted(call.spec.env)), outputs=outputs, at=self.clock.now(),
            log=log, map_id=call.map_id or "", index=-1 if call.index is None else call.index,
        )
        live = self.store is not None and self._guard(lambda: self.store.begin(started))
        if live and self.log is not None and shared is None:
            self.log.attach(self.store.log_path(run))
            if self.log.path:
                self.console.info(f"run {run}; log: {self.log.path}")
            if call.map_id:
                self._map_logs[call.map_id] = self.log.path or ""
        if self._on_begin is not None:
            self._on_begin(run)  # recorded or not: a background driver's launcher waits for it
        if live and not self._pruned:
            self._pruned = True
            self._guard(lambda: prune_records(self.store, self.clock.now()))
        return Recording(self, run, live, passing=call.index is None)

    def _append(self, run: str, event: Any) -> bool:
        return self._guard(lambda: self.store.append(run, event))

    def _guard(self, write: Any) -> bool:
        if self._broken:
            return False
        try:
            write()
            return True
        except (OSError, UsageError, ValueError) as exc:
            self._broken = True
            self.console.warn(f"runs are not being recorded ({exc}); `runplz ps` will not show them")
            return False
