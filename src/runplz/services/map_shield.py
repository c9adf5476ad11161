"""Work a map's stop must not cut short: bringing outputs home, deleting a box.

A map stops a running input by raising `ItemCancelled` in its thread (see
`fan_out`); an exception raised there lands wherever that thread is. Inside
`shielded()` it is held back and raised when the block ends, so outputs that
were being fetched arrive whole and a box being deleted is deleted.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

from ..domain.errors import ItemCancelled

_lock = threading.Lock()
_held: dict[int, bool] = {}  # thread ident -> a stop came while it was shielded


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


def interrupt_unless_shielded(ident: int, interrupt: Callable[[], bool]) -> bool:
    """Call ``interrupt`` (which raises in thread ``ident``) now, or note the stop
    for the end of that thread's shielded block; True when either happened."""
    with _lock:
        if ident in _held:
            _held[ident] = True
            return True
        return interrupt()
