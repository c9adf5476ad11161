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
itself.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any, Iterator

import attrs

from ..ports.console import Console

POLL = 0.1  # seconds between looks while waiting for a map's threads


@attrs.define(eq=False)
class LiveMap:
    """One map's handles, filled in when it starts running."""

    backend: Any
    function: str
    console: Console
    cancel: threading.Event | None = None
    driver: threading.Thread | None = None
    waiters: set[int] = attrs.field(factory=set)  # threads that may wait for its cleanup

    def running(self) -> bool:
        return self.driver is not None and self.driver.is_alive()

    def may_wait(self) -> bool:
        return threading.get_ident() in self.waiters


_lock = threading.Lock()
_live: "weakref.WeakKeyDictionary[Iterator[Any], LiveMap]" = weakref.WeakKeyDictionary()


def track(generator: Iterator[Any], live: LiveMap) -> None:
    """Note a map's generator (weakly: dropping it still finalizes it)."""
    with _lock:
        _live[generator] = live
    atexit.unregister(_at_exit)
    atexit.register(_at_exit)  # the last registered runs first: before any backend's close


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
        found = [(gen, live) for gen, live in list(_live.items()) if backend is None or live.backend is backend]
    stopped = 0
    for generator, live in found:
        if not live.running():
            continue
        stopped += 1
        if why:
            live.console.warn(f"{why}: stopping {live.function}.map's running inputs")
        live.waiters.add(threading.get_ident())
        try:
            generator.close()  # its own cleanup: cancel, wait, the summary line
        except ValueError:  # being iterated on another thread right now: cancel it from here
            if live.cancel is not None:
                live.cancel.set()
        if live.driver is not None:
            settle(live.driver, live.console)
    return stopped


def _at_exit() -> None:
    stop_maps(why="the program is ending with a map unfinished")
