"""The maps under way in this process, so that none outlives what started it.

A map runs while its generator is iterated. Its running inputs are stopped
(cancelled as a failure cancels them: boxes deleted, containers removed, jobs
killed) and waited for when:

- the generator is closed, or dropped and garbage collected (`fan_out`'s own
  ``finally``: a generator's finalizer closes it);
- the interpreter exits with it unfinished, say after ``it = f.map(xs);
  next(it)``: `stop_maps` runs at exit, before the backends' own close;
- its App lets its backend go (the entrypoint ended, a rebind): `stop_maps(backend)`.

The waiting is done by the thread that iterated the map (or by `stop_maps`);
a finalizer running on some other thread (the garbage collector can run
anywhere, a map's own threads included) only cancels, so it never waits on
itself. Every map is held here (strongly) from the start of its fan-out
thread until that thread ends, whether or not its generator still exists, so
`stop_maps` at exit still waits for a map whose generator was collected on
such a thread.

A map stopped from outside (`stop_maps`) while its caller still iterates it
raises `MapStopped` at the caller's next ``next()`` instead of ending quietly
with results missing; the caller closing or dropping it stays silent.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any, Callable, Iterator

import attrs

from ..domain.errors import MapStopped
from ..ports.console import Console

POLL = 0.1  # seconds between looks while waiting for a map's threads


@attrs.define(eq=False)
class LiveMap:
    """One map's handles, filled in when it starts running."""

    backend: Any
    function: str
    console: Console
    total: int = 0
    cancel: threading.Event | None = None
    driver: threading.Thread | None = None
    waiters: set[int] = attrs.field(factory=set)  # threads that may wait for its cleanup
    generator: "weakref.ref[Iterator[Any]] | None" = None  # weakly: dropping it still finalizes it
    stopped: str | None = None  # why `stop_maps` stopped it ("" if it said nothing); None if it did not
    unfinished: Callable[[], None] | None = None  # the end a foreign-thread finalizer left undone

    def running(self) -> bool:
        return self.driver is not None and self.driver.is_alive()

    def may_wait(self) -> bool:
        return threading.get_ident() in self.waiters


_lock = threading.Lock()
_running: set[LiveMap] = set()  # from its driver's start to its driver's end


def track(generator: Iterator[Any], live: LiveMap) -> Iterator[Any]:
    """Note a map's generator; return the one to give the caller (`_guarded`)."""
    live.generator = weakref.ref(generator)
    atexit.unregister(_at_exit)
    atexit.register(_at_exit)  # the last registered runs first: before any backend's close
    return _guarded(generator, live)


def started(live: LiveMap) -> None:
    """The map's driver is about to start: hold it until `ended`."""
    with _lock:
        _running.add(live)


def ended(live: LiveMap) -> None:
    """The map's driver is over (the last thing it does)."""
    with _lock:
        _running.discard(live)


def _guarded(inner: Iterator[Any], live: LiveMap) -> Iterator[Any]:
    """``inner``'s results; `MapStopped` if `stop_maps` ended it with some missing."""
    given = 0
    try:
        while True:
            try:
                value = next(inner)
            except StopIteration:
                break
            yield value
            given += 1
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()  # the caller closing or dropping this one closes the map, silently
    if live.stopped is not None and given < live.total:
        why = f": {live.stopped}" if live.stopped else ""
        raise MapStopped(f"{live.function}.map was stopped{why}; {given} of {live.total} results were given")


def settle(driver: threading.Thread, console: Console) -> None:
    """Wait until ``driver`` (the map's fan-out) is over: its inputs' cleanup
    (a box deleted, say) must finish. Ctrl-C three more times leaves anyway."""
    interrupts = 0
    while driver.is_alive():
        try:
            driver.join(POLL)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts > 3:
                raise
            if interrupts == 1:
                console.warn("interrupted again: still stopping the map's inputs (Ctrl-C 3 more times to leave now)")


def stop_maps(backend: Any = None, why: str = "") -> int:
    """Stop the maps still under way (those on ``backend``, or all) and wait
    until nothing of them runs; how many were running. ``why`` is said first."""
    with _lock:
        found = [live for live in _running if backend is None or live.backend is backend]
    stopped = 0
    for live in found:
        if not live.running() or live.driver is threading.current_thread():
            continue
        stopped += 1
        if why:
            live.console.warn(f"{why}: stopping {live.function}.map's running inputs")
        live.stopped = why
        live.waiters.add(threading.get_ident())
        generator = live.generator() if live.generator is not None else None
        try:
            if generator is not None:
                generator.close()  # its own cleanup: cancel, wait, the summary line
        except ValueError:  # being iterated on another thread right now: cancelled below
            pass
        if live.cancel is not None:
            live.cancel.set()  # and if the generator is gone (collected elsewhere), this is all that is left
        if live.driver is not None:
            settle(live.driver, live.console)
        finish, live.unfinished = live.unfinished, None
        if finish is not None:
            finish()
    return stopped


def _at_exit() -> None:
    stop_maps(why="the program is ending with a map unfinished")
