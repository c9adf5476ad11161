"""``.map()``: one function over many inputs, up to K at a time, results in order.

`fan_out` is the driver side every backend shares: it hands the inputs to
the backend's own fan-out (a `MapBackend`: a Slurm job array, Modal's map) or,
for any other backend, to `ThreadedMap` (up to K ``call``s on threads), and
turns what they report into the generator ``Function.map`` returns, with
the progress line and the failure rules of `runplz.domain.fan_out`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import threading
from typing import Any, Iterator, Sequence

import attrs

from ..domain.call import FunctionCall
from ..domain.errors import ItemCancelled
from .map_live import LiveMap, ended, settle, started, track
from .map_shield import forget, interrupt_unless_shielded
from ..domain.fan_out import Arrivals, MapOptions, Outcome, Tally, indexed, item_folder
from ..ports.backend import Backend, Cancel, ItemSink, MapBackend, StoppableBackend
from ..ports.clock import Clock
from ..ports.console import Console
from .runs import new_run_id

POLL = 0.1  # seconds between looks at the cancel signal while waiting
RESTOP = 1.0  # seconds between stop requests for an input still running once cancelled

DEFAULT_CONCURRENCY = 4


def default_concurrency(backend: Any) -> int:
    """K when the caller gives none: the backend's ``map_concurrency``, else 4."""
    value = getattr(backend, "map_concurrency", None)
    return value if isinstance(value, int) and value >= 1 else DEFAULT_CONCURRENCY


def item_calls(calls: Sequence[FunctionCall], outputs: str, clock: Clock) -> tuple[str, list[FunctionCall]]:
    """The map's id, and each call with its own outputs folder (``<outputs>/<index>``;
    the backend makes it when the input starts), run id, map id and index."""
    map_id = new_run_id(clock)
    items = []
    taken = {map_id}
    for index, call in enumerate(calls):
        folder = os.path.join(outputs, item_folder(index))
        run = new_run_id(clock)
        while run in taken:  # ids of one second share all but 3 random bytes: a clash would share a box or folder
            run = new_run_id(clock)
        taken.add(run)
        items.append(attrs.evolve(call, outputs=folder, run_id=run, map_id=map_id, index=index))
    return map_id, items


def _interrupt(thread: threading.Thread) -> bool:
    """Raise `ItemCancelled` in ``thread`` (at its next Python instruction)."""
    ident = thread.ident
    if ident is None or not thread.is_alive():
        return False

    def now() -> bool:
        done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(ItemCancelled))
        return done == 1

    return interrupt_unless_shielded(ident, now)  # outputs being fetched or a box being deleted: at the end


class Stops:
    """A backend's side of `StoppableBackend.stop`, for jobs it waits on through
    a port that an interrupt stops cleanly (`CommandRunner.run`, `ContainerEngine.run`).

    ``ask(run)`` marks the run stopped and, if its thread is waiting on its
    job right now, raises `ItemCancelled` there, which those ports answer by
    stopping the job (its whole process group; its container) before passing
    it on. A run asked to stop before its job starts never starts it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped: set[str] = set()
        self._waiting: dict[str, threading.Thread] = {}

    def ask(self, run: str | None) -> bool:
        """Stop ``run``; True if its job was running."""
        if not run:
            return False
        with self._lock:
            self._stopped.add(run)
            thread = self._waiting.pop(run, None)
            return thread is not None and _interrupt(thread)

    def check(self, run: str | None) -> None:
        """Raise `ItemCancelled` if ``run`` was asked to stop."""
        with self._lock:
            if run in self._stopped:
                raise ItemCancelled(f"run {run} was cancelled")

    @contextlib.contextmanager
    def waiting(self, run: str | None) -> Iterator[None]:
        """Around the wait on ``run``'s job: where `ask` may interrupt it."""
        if not run:
            yield
            return
        with self._lock:
            if run in self._stopped:
                raise ItemCancelled(f"run {run} was cancelled")
            self._waiting[run] = threading.current_thread()
        try:
            yield
        finally:
            while True:  # an interrupt sent just as the wait ended lands here, once
                try:
                    with self._lock:
                        self._waiting.pop(run, None)
                        stopped = run in self._stopped
                    break
                except ItemCancelled:
                    continue
        if stopped:
            raise ItemCancelled(f"run {run} was cancelled")


class ThreadedMap:
    """`MapBackend` over any `Backend`: up to ``concurrency`` ``call``s at once, on threads.

    A running input is stopped through the backend's ``stop`` (`StoppableBackend`:
    the local backends stop the job's processes or remove its container). A
    backend without one gets `ItemCancelled`, an interrupt, raised in the thread
    running its call, so its own Ctrl-C handling cleans up (a job on an ssh box
    stopped, an ephemeral Brev box deleted).
    """

    def __init__(self, backend: Backend, poll: float = POLL, restop: float = RESTOP) -> None:
        self._backend = backend
        self._poll = poll
        self._restop = restop

    def map(self, calls: Sequence[FunctionCall], concurrency: int, sink: ItemSink, cancel: Cancel) -> None:
        lock = threading.Lock()
        pending = iter(range(len(calls)))
        running: dict[int, threading.Thread] = {}
        abort = threading.Event()

        def stopping() -> bool:
            return abort.is_set() or cancel.is_set()

        def work() -> None:
            while True:
                with lock:
                    index = None if stopping() else next(pending, None)
                    if index is None:
                        return
                    running[index] = threading.current_thread()
                self._one(index, calls[index], sink, lock, running)

        workers = [
            threading.Thread(target=work, name=f"runplz-map-{n}", daemon=True)
            for n in range(min(concurrency, len(calls)))
        ]
        for worker in workers:
            worker.start()
        try:
            self._await(workers, calls, running, lock, stopping)
        except KeyboardInterrupt:
            abort.set()
            self._await(workers, calls, running, lock, stopping)
            raise

    def _one(
        self, index: int, call: FunctionCall, sink: ItemSink, lock: threading.Lock, running: dict
    ) -> None:
        try:
            sink.started(index)
            report: tuple[Any, Any] = (sink.finished, self._backend.call(call))
        except BaseException as exc:  # ItemCancelled included: the input is reported, never lost
            report = (sink.failed, exc)
        while True:  # an interrupt sent just as the call ended lands here, once: report anyway
            try:
                forget()  # a job-start hold its call left behind (it failed before its follower) ends with it
                with lock:
                    running.pop(index, None)
                break
            except ItemCancelled:
                continue
        report[0](index, report[1])

    def _await(self, workers, calls, running, lock, stopping) -> None:
        stoppers: dict[int, threading.Thread] = {}
        interrupted: set[int] = set()
        last: dict[int, float] = {}
        ticks = 0.0
        while any(worker.is_alive() for worker in workers):
            for worker in workers:
                worker.join(self._poll / max(len(workers), 1))
            ticks += self._poll
            if not stopping():
                continue
            with lock:
                live = dict(running)
                for index, thread in live.items():
                    if isinstance(self._backend, StoppableBackend):
                        continue
                    if index not in interrupted and _interrupt(thread):  # under the lock: see `_one`
                        interrupted.add(index)
            if not isinstance(self._backend, StoppableBackend):
                continue
            for index in live:
                helper = stoppers.get(index)
                if (helper is None or not helper.is_alive()) and ticks - last.get(index, -self._restop) >= self._restop:
                    last[index] = ticks
                    helper = threading.Thread(
                        target=self._stop, args=(calls[index],), name=f"runplz-stop-{index}", daemon=True
                    )
                    stoppers[index] = helper
                    helper.start()

    def _stop(self, call: FunctionCall) -> None:
        try:
            self._backend.stop(call)  # type: ignore[attr-defined]
        except Exception:
            pass  # asked again in a moment, while the input still runs


class _QueueSink:
    """`ItemSink` that queues what it is told, for the driver's thread. With
    ``stop_on_failure`` (the map raises at its first failure) a failure sets
    it before it is queued: the fan-out starts nothing more from that moment."""

    def __init__(self, events: "queue.Queue[tuple[str, int, Any]]", stop_on_failure: Any = None) -> None:
        self._events = events
        self._stop_on_failure = stop_on_failure

    def started(self, index: int) -> None:
        self._events.put(("started", index, None))

    def finished(self, index: int, value: Any) -> None:
        self._events.put(("finished", index, value))

    def failed(self, index: int, error: BaseException) -> None:
        if self._stop_on_failure is not None and not isinstance(error, ItemCancelled):
            self._stop_on_failure.set()
        self._events.put(("failed", index, error))


def fan_out(
    backend: Any, calls: Sequence[FunctionCall], options: MapOptions, console: Console, clock: Clock,
    function: str,
) -> Iterator[Any]:
    """Run ``calls`` (already given their folders and ids: `item_calls`) and give
    their results as the rules of `runplz.domain.fan_out` say.

    The backend's fan-out runs on a thread of its own; this generator waits on
    what it reports, so Ctrl-C reaches it. Leaving early (a failure raised, an
    interrupt, the caller closing or dropping the generator, the program
    ending: see `map_live`) cancels the rest and waits until nothing of the
    map runs any more.
    """
    live = LiveMap(backend, function, console, total=len(calls))
    return track(_fan_out(backend, calls, options, console, clock, function, live), live)


def _fan_out(
    backend: Any, calls: Sequence[FunctionCall], options: MapOptions, console: Console, clock: Clock,
    function: str, live: LiveMap,
) -> Iterator[Any]:
    mapper: MapBackend = backend if isinstance(backend, MapBackend) else ThreadedMap(backend)
    events: "queue.Queue[tuple[str, int, Any]]" = queue.Queue()
    cancel = threading.Event()

    def drive() -> None:
        try:
            sink = _QueueSink(events, None if options.return_exceptions else cancel)
            mapper.map(calls, options.concurrency, sink, cancel)
        except BaseException as exc:
            events.put(("crashed", -1, exc))
        finally:
            events.put(("over", -1, None))
            ended(live)

    tally = Tally(len(calls))
    arrivals = Arrivals(len(calls), options.order_outputs)
    began = clock.monotonic()
    driver = threading.Thread(target=drive, name="runplz-map", daemon=True)
    live.cancel, live.driver = cancel, driver
    live.waiters.add(threading.get_ident())
    started(live)  # held until the driver ends, even if this generator is collected first
    driver.start()
    try:
        while True:
            try:
                kind, index, payload = events.get(timeout=POLL)
            except queue.Empty:
                continue
            if kind == "over":
                break
            if kind == "crashed":
                raise payload
            if kind == "started":
                tally.started()
            elif isinstance(payload, KeyboardInterrupt):  # `ItemCancelled`: stopped, not failed
                tally.stopped(was_running=True)
            else:
                outcome = Outcome(index, value=payload) if kind == "finished" else Outcome(index, error=indexed(payload, index))
                tally.ended(outcome.failed)
                if outcome.failed and not options.return_exceptions:
                    raise outcome.error  # type: ignore[misc]
                for ready in arrivals.add(outcome):
                    console.progress(tally.line())
                    yield ready.error if ready.failed else ready.value
                    live.waiters.add(threading.get_ident())  # whoever iterates it waits for its end
            console.progress(tally.line())
    finally:
        cancel.set()

        def finish() -> None:
            _wind_down(events, tally)
            console.progress("")
            console.info(tally.summary(function, clock.monotonic() - began))

        if live.may_wait():  # not a finalizer on a foreign thread (a map's own, say): see `map_live`
            settle(driver, console)
            finish()
        else:  # `stop_maps` (at exit, say) waits for the driver and ends it so
            live.unfinished = finish


def _wind_down(events: "queue.Queue[tuple[str, int, Any]]", tally: Tally) -> None:
    """Count the late reports: inputs that ended (or were stopped) while the map wound down."""
    while True:
        try:
            kind, _, payload = events.get_nowait()
        except queue.Empty:
            return
        if kind == "started":
            tally.started()
        elif kind == "finished":
            tally.ended(failed=False)
        elif kind == "failed":
            tally.stopped(was_running=True)
