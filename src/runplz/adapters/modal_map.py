"""One map on Modal: Modal's own ``starmap`` over the payloads, in one ephemeral app.

Why ``starmap(..., order_outputs=False, return_exceptions=True)``: results
arrive as they finish, so a failure is seen (and the rest cancelled) as soon
as it happens, not after every input before it; and one input's failure never
ends Modal's iteration, so every started input is reported. Which input a
result is for: the container entry echoes the ``index`` it was given. The
order and the failure rules are runplz's (`runplz.domain.fan_out`), applied
by the caller on what this reports.

Concurrency: inputs are fed to Modal from an async generator that hands one
over only while fewer than ``concurrency`` are unfinished (Modal's autoscaler
decides the rest); ``started(i)`` is reported as input ``i`` is handed over.

Cancel: the generator stops handing inputs over and the app is stopped
(``App.stop``), which stops every running container; their inputs are
reported `ItemCancelled`.

A Modal-level failure (the container died, Modal's own timeout) comes back as
an exception that does not say which input it was for. It is pinned on an
input only when that is certain: the feed pauses until the inputs still
unfinished are exactly as many as such failures; they are then given to
those inputs in index order (with a note when more than one, as Modal did not
say which was which).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Sequence

from ..domain.errors import ItemCancelled, ServiceError
from ..ports.backend import Cancel, ItemSink
from ..ports.serverless import ServerlessJob, ServerlessOutcome

POLL = 0.05  # seconds between looks at the cancel signal and for a free slot
STOP_GRACE = 30.0  # seconds Modal gets to report the inputs of a stopped app


class ModalMap:
    def __init__(
        self, modal: Any, job: ServerlessJob, payloads: Sequence[str], concurrency: int,
        sink: ItemSink, cancel: Cancel, translate: Callable[[BaseException, Any, ServerlessJob], Any],
    ) -> None:
        self._modal = modal
        self._job = job
        self._payloads = list(payloads)
        self._concurrency = max(1, concurrency)
        self._sink = sink
        self._cancel = cancel
        self._translate = translate
        self._lock = threading.Lock()
        self._running: set[int] = set()  # handed over, not reported
        self._unplaced: list[BaseException] = []  # Modal-level failures not yet pinned on an input
        self._crash: BaseException | None = None

    def run(self, app: Any, function: Any) -> None:
        """Run the map on the defined ``app``; return once every started input is reported."""
        if not self._payloads:
            return
        consumer = threading.Thread(target=self._consume, args=(app, function), name="runplz-modal-map", daemon=True)
        consumer.start()
        stopped_at: float | None = None
        tried = -1.0
        while consumer.is_alive():
            consumer.join(POLL)
            if stopped_at is None and self._cancel.is_set() and time.monotonic() - tried >= 1.0:
                tried = time.monotonic()
                if _stop(app):
                    stopped_at = tried
            if stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE:
                break  # Modal did not report the stopped inputs: they are cancelled all the same
        if self._crash is not None:
            raise self._crash
        if self._cancel.is_set():
            self.give_up(ItemCancelled("the map was cancelled"))
        else:
            self.give_up(ServiceError(f"Modal returned no result for an input of {self._job.function}"))

    def give_up(self, error: BaseException) -> None:
        """Report every input still unfinished as failed with ``error``."""
        with self._lock:
            left = sorted(self._running)
            self._running.clear()
            self._unplaced.clear()
        for index in left:
            self._sink.failed(index, error)

    # -- on the consumer thread ---------------------------------------------------------------

    def _consume(self, app: Any, function: Any) -> None:
        try:
            with self._modal.enable_output(), app.run():
                replies = function.starmap(self._inputs(), order_outputs=False, return_exceptions=True)
                for reply in replies:
                    self._arrived(reply)
        except BaseException as exc:  # handed to the map's thread, which raises it
            self._crash = exc

    async def _inputs(self):
        job = self._job
        for index, payload in enumerate(self._payloads):
            while True:
                if self._cancel.is_set():
                    return
                with self._lock:
                    if len(self._running) < self._concurrency and not self._unplaced:
                        self._running.add(index)
                        break
                await asyncio.sleep(POLL)
            self._sink.started(index)
            yield (payload, job.deadline, job.grace, index)

    def _arrived(self, reply: Any) -> None:
        if isinstance(reply, dict) and isinstance(reply.get("index"), int):
            index = reply["index"]
            with self._lock:
                mine = index in self._running
                self._running.discard(index)
            if mine:
                self._sink.finished(index, ServerlessOutcome(
                    exit_code=int(reply["exit_code"]), result=reply["result"], outputs=reply["outputs"],
                    timed_out=bool(reply.get("timed_out")), notes=tuple(reply.get("notes") or ()),
                ))
        else:
            error = reply if isinstance(reply, BaseException) else ServiceError(
                f"Modal returned {type(reply).__name__} for an input of {self._job.function}, not runplz's reply"
            )
            with self._lock:
                self._unplaced.append(error)
        self._place()

    def _place(self) -> None:
        """Pin the unplaced failures on inputs, once the unfinished inputs are exactly those."""
        with self._lock:
            if not self._unplaced or len(self._unplaced) < len(self._running):
                return
            indexes = sorted(self._running)
            errors = self._unplaced[: len(indexes)]
            self._running.clear()
            self._unplaced.clear()
        note = "" if len(indexes) < 2 else f" (Modal did not say which of inputs {', '.join(map(str, indexes))} this was)"
        for index, error in zip(indexes, errors):
            self._sink.failed(index, self._item_error(error, note))

    def _item_error(self, error: BaseException, note: str) -> BaseException:
        if self._cancel.is_set():
            return ItemCancelled("the map was cancelled")
        mapped = self._translate(error, self._modal, self._job)
        if mapped is None:
            mapped = ServiceError(f"Modal failed an input of {self._job.function}: {type(error).__name__}: {error}")
        if note:
            mapped.args = (f"{mapped.args[0] if mapped.args else mapped}{note}",) + tuple(mapped.args[1:])
        return mapped


def _stop(app: Any) -> bool:
    """Stop the app's containers now (the client's ``App.stop``); the map then
    ends on its own as Modal reports the stopped inputs. False when the app
    is not running yet (its image is building: no input was handed over)."""
    stop = getattr(app, "stop", None)
    if stop is None or not getattr(app, "app_id", None):
        return False
    try:
        stop()
    except Exception:
        return False
    return True
