"""A text stream that also copies what is written to the driver log (for
libraries that print to ``sys.stdout``/``sys.stderr`` themselves, as the modal
client does)."""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Any, Iterator

from ..ports.log_sink import LogSink
from .terminal import shared_terminal

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class TeeText:
    """Writes go to ``inner`` unchanged and, without terminal control codes, to ``log``."""

    def __init__(self, inner: Any, log: LogSink, source: str) -> None:
        self._inner = inner
        self._log = log
        self._source = source

    def write(self, text: str) -> int:
        if text:
            shared_terminal().release()  # the client writes where runplz's status line is
        written = self._inner.write(text)
        plain = _CONTROL.sub("", text)
        if plain:
            self._log.record(self._source, plain.encode("utf-8", "replace"))
        return written

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding...
        return getattr(self._inner, name)


@contextlib.contextmanager
def teed(log: LogSink | None, source: str) -> Iterator[None]:
    """While inside: ``sys.stdout`` and ``sys.stderr`` also write to ``log``."""
    if log is None:
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TeeText(saved[0], log, source), TeeText(saved[1], log, source)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
