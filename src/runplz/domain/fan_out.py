"""The pure rules of ``.map()``: reading the inputs, the order results are
given in, what a failure does, and the progress counts.

Semantics (the services act on these):

- Inputs are read in full and each is checked as JSON before anything runs; a
  bad input raises `ArgumentError` naming its index.
- With ``order_outputs`` results are given in input order (a finished result
  waits for all before it); without it, as they finish.
- With ``return_exceptions=False`` the first failure observed (in completion
  order, whatever ``order_outputs`` says) ends the map: it raises, naming its
  input's index, the inputs not yet started never start and the running ones
  are stopped. Results given before it stay given; finished results still
  waiting for their turn are dropped.
- With ``return_exceptions=True`` nothing is cancelled by a failure: each
  failure is given in its place, as the exception object.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs

from .errors import ArgumentError, ConfigError, RemoteError
from .carry import NotJson, plain_arguments
from .validate import show


@attrs.frozen
class MapOptions:
    order_outputs: bool = True
    return_exceptions: bool = False
    concurrency: int = 1


def map_options(order_outputs: Any, return_exceptions: Any, concurrency: Any) -> MapOptions:
    """Checked options; ``concurrency`` must already be resolved to a number."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number of at least 1; got {show(concurrency)}")
    return MapOptions(bool(order_outputs), bool(return_exceptions), concurrency)


def map_inputs(function: str, iterables: Sequence[Any], star: bool) -> list[tuple[Any, ...]]:
    """The positional arguments of each input: ``map`` zips its iterables
    (stopping at the shortest, like `zip`), ``starmap`` spreads each item of
    its one iterable (a tuple or list) as the arguments."""
    verb = "starmap" if star else "map"
    if not iterables:
        raise ArgumentError(f"{function}.{verb}() needs an iterable of inputs")
    for position, iterable in enumerate(iterables):
        if isinstance(iterable, (str, bytes, dict)) or not hasattr(iterable, "__iter__"):
            raise ArgumentError(
                f"{function}.{verb}() argument {position + 1} must be an iterable of inputs "
                f"(a list, a tuple, a range, a generator); got {show(iterable)}"
            )
    if not star:
        return [tuple(item) for item in zip(*iterables)]
    items = []
    for index, item in enumerate(iterables[0]):
        if not isinstance(item, (tuple, list)):
            raise ArgumentError(
                f"{function}.starmap() input {index} must be a tuple (or list) of arguments; got {show(item)}"
            )
        items.append(tuple(item))
    return items


def plain_inputs(
    function: str, inputs: Sequence[tuple[Any, ...]], kwargs: Any
) -> list[tuple[list[Any], dict[str, Any]]]:
    """Each input's arguments as JSON carries them, with ``kwargs`` given to every
    input; the first one JSON cannot carry raises `ArgumentError` naming its index."""
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise ArgumentError(f"{function}.map() kwargs= must be a dict of keyword arguments; got {show(kwargs)}")
    plain = []
    for index, args in enumerate(inputs):
        try:
            plain.append(plain_arguments(args, kwargs))
        except NotJson as exc:
            raise ArgumentError(f"{function}.map() input {index}: {exc}; arguments must be JSON") from None
    return plain


@attrs.frozen
class Outcome:
    """How one input ended: its value, or the exception it failed with."""

    index: int
    value: Any = None
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def indexed(error: BaseException, index: int) -> BaseException:
    """The failure as the caller gets it: a `RemoteError` names the input's index
    in its message and ``index``; any other exception (a timeout, a failed
    build) keeps its type and message and gets an ``index`` attribute."""
    if isinstance(error, RemoteError):
        if error.index == index:
            return error
        return error.at_index(index)
    try:
        error.index = index  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return error


class Arrivals:
    """Puts outcomes in the order they are to be given: ``add`` returns those
    that can be given now (input order: all before them have been given)."""

    def __init__(self, total: int, ordered: bool) -> None:
        self._total = total
        self._ordered = ordered
        self._next = 0
        self._waiting: dict[int, Outcome] = {}

    def add(self, outcome: Outcome) -> list[Outcome]:
        if not 0 <= outcome.index < self._total or outcome.index in self._waiting:
            raise ValueError(f"input {outcome.index} arrived twice or out of range")
        if not self._ordered:
            self._next += 1
            return [outcome]
        if outcome.index < self._next:
            raise ValueError(f"input {outcome.index} arrived twice")
        self._waiting[outcome.index] = outcome
        ready = []
        while self._next in self._waiting:
            ready.append(self._waiting.pop(self._next))
            self._next += 1
        return ready

    @property
    def given(self) -> int:
        return self._next if self._ordered else self._next


@attrs.define
class Tally:
    """The counts the progress line shows."""

    total: int
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.running - self.done - self.failed - self.cancelled

    def started(self) -> None:
        self.running += 1

    def ended(self, failed: bool) -> None:
        self.running -= 1
        if failed:
            self.failed += 1
        else:
            self.done += 1

    def stopped(self, was_running: bool) -> None:
        """An input cancelled (stopped while running, or never started)."""
        if was_running:
            self.running -= 1
        self.cancelled += 1

    def line(self) -> str:
        return f"done {self.done}, running {self.running}, pending {self.pending}, failed {self.failed}"

    def summary(self, function: str, seconds: float) -> str:
        parts = [f"{self.done} done", f"{self.failed} failed"]
        if self.cancelled or self.pending:
            parts.append(f"{self.cancelled + self.pending} cancelled")
        return f"{function}.map: {', '.join(parts)} of {self.total} in {seconds:.1f}s"


def item_folder(index: int) -> str:
    """The name of input ``index``'s own folder under the outputs folder."""
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"an input index is a whole number >= 0, not {index!r}")
    return str(index)

