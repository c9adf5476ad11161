"""Work a map's stop must not cut short: bringing outputs home, deleting a box,
a job being started and handed to the code that would stop it.

A map stops a running input by raising `ItemCancelled` in its thread (see
`fan_out`); an exception raised there lands wherever that thread is. Inside
`shielded()` it is held back and raised when the block ends, so outputs that
were being fetched arrive whole and a box being deleted is deleted.

`hold()` / `release()` shield a stretch that does not fit one block: from just
before a remote job is started until the code that stops it on an interrupt
has taken it over (`RemoteJobs.start` holds, `RunFollower.finish` releases,
inside its ``try``), so a stop landing in between is not lost with the job
left running.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

from ..domain.errors import ItemCancelled

_lock = threading.Lock()
_held: dict[int, bool] = {}  # thread ident -> a stop came while it was shielded
_holding: set[int] = set()  # threads shielded by `hold` (not by a `shielded` block)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """While inside, a map's stop of this thread waits for the block to end."""
    ident = threading.get_ident()
    outer = False
    finished = False
    try:
        with _lock:
            outer = ident not in _held
            if outer:
                _held[ident] = False
        yield
        finished = True
    finally:
        if outer:
            with _lock:
                stopped = _held.pop(ident, False)
            if stopped and finished:
                raise ItemCancelled()


def hold() -> None:
    """Shield this thread until `release` (or `forget`); nothing if it already is shielded."""
    ident = threading.get_ident()
    with _lock:
        if ident not in _held:
            _held[ident] = False
            _holding.add(ident)


def release() -> None:
    """End this thread's `hold`: raise the map's stop that came meanwhile, if one did."""
    if forget():
        raise ItemCancelled()


def forget() -> bool:
    """End this thread's `hold` without raising; True if a stop came meanwhile."""
    ident = threading.get_ident()
    with _lock:
        if ident not in _holding:
            return False
        _holding.discard(ident)
        return _held.pop(ident, False)


def stop_held() -> bool:
    """True if a map's stop of this thread is being held back right now."""
    with _lock:
        return _held.get(threading.get_ident(), False)


def interrupt_unless_shielded(ident: int, interrupt: Callable[[], bool]) -> bool:
    """Call ``interrupt`` (which raises in thread ``ident``) now, or note the stop
    for the end of that thread's shielded block; True when either happened."""
    with _lock:
        if ident in _held:
            _held[ident] = True
            return True
        return interrupt()
