"""Port: somewhere a function call can run (and, optionally, many at once)."""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from ..domain.call import FunctionCall


@runtime_checkable
class Backend(Protocol):
    """Runs one function call and returns its value.

    Contract:
    - Returns the function's return value (JSON: dict, list, str, int, float,
      bool or None) exactly as the function returned it, tuples as lists.
    - A function that raises, exits non-zero or dies raises `RemoteError`
      with the remote type, message, traceback text and exit code.
    - Files the function writes under ``$RUNPLZ_OUT`` are in the bound outputs
      folder afterwards, on success and on failure; in ``call.outputs``
      instead when that is set (one input of a map).
    - ``call.run_id``, when set, is the id the run is recorded under.
    - Past the function's timeout the run is stopped and `RunTimeout` raised.
    - Calls may come from several threads at once (a map's inputs); each is
      a run of its own and they share no state a run can see.
    """

    def call(self, call: FunctionCall) -> Any: ...


@runtime_checkable
class StoppableBackend(Protocol):
    """A `Backend` that can stop one of its calls from another thread.

    Contract:
    - ``stop(call)`` may come from any thread, at any time, and more than once:
      before the call started, while it runs, after it ended. A call stopped
      before its job started never starts it; a running one has its job (all
      it started) stopped. Either way that ``call()`` then ends promptly,
      raising `ItemCancelled`, and leaves nothing running; a call that had
      already ended is not affected. ``call.run_id`` names the call (it is set).
    """

    def call(self, call: FunctionCall) -> Any: ...

    def stop(self, call: FunctionCall) -> None: ...


@runtime_checkable
class Cancel(Protocol):
    """The signal that a map is to end early (a `threading.Event` is one).

    Contract:
    - ``is_set()`` turns True once and stays True; ``wait(seconds)`` returns
      as soon as it is True (returning True) or after ``seconds`` (returning
      whether it is).
    """

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@runtime_checkable
class ItemSink(Protocol):
    """Where a `MapBackend` reports its inputs, by index.

    Contract:
    - ``started(index)`` when an input's run begins; then exactly one of
      ``finished(index, value)`` or ``failed(index, error)`` (any exception:
      a `RemoteError`, a `RunTimeout`, `ItemCancelled` for one stopped).
    - Callable from any thread; never raises.
    """

    def started(self, index: int) -> None: ...

    def finished(self, index: int, value: Any) -> None: ...

    def failed(self, index: int, error: BaseException) -> None: ...


@runtime_checkable
class MapBackend(Protocol):
    """A backend with its own fan-out (a Slurm job array, Modal's map); others
    get runplz's generic one, over ``call``.

    Contract:
    - ``map`` runs each of ``calls`` at most once, at most ``concurrency`` at a
      time, and reports each through ``sink`` (see `ItemSink`); it returns
      once every input it started has been reported.
    - Each call carries its own ``outputs`` folder and ``run_id``; the files
      an input writes under ``$RUNPLZ_OUT`` end up in its ``outputs``.
    - Once ``cancel`` is set it starts no more inputs (they are not reported)
      and stops the running ones promptly, leaving nothing running or billed.
    - An interrupt (KeyboardInterrupt) while it waits stops everything it
      started, as ``cancel`` does, then propagates.
    """

    def map(self, calls: Sequence[FunctionCall], concurrency: int, sink: ItemSink, cancel: Cancel) -> None: ...
