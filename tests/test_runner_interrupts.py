"""An interrupt reaches `SubprocessRunner.run` whichever thread the kernel hands it to.

With no timeout, a blocking ``waitpid`` in the main thread never sees a signal
that landed on another thread (Python runs handlers in the main thread only, at
its next bytecode), so Ctrl-C, SIGTERM and SIGHUP hung a run with no time limit."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from runplz.adapters.subprocess_runner import SubprocessRunner


def _interrupt_from_another_thread(after: float) -> threading.Thread:
    def fire() -> None:
        time.sleep(after)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # this thread, not the main one

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def interruptible():
    """Ctrl-C raises KeyboardInterrupt here, even in a test run started in the
    background (which ignores SIGINT; see testsupport/signals.py)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("timeout", [None, 600.0])
def test_an_interrupt_on_another_thread_stops_a_run(timeout, interruptible):
    started = time.monotonic()
    thread = _interrupt_from_another_thread(0.3)
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner().run(["sleep", "60"], timeout=timeout, inherit=True)
    thread.join()
    assert time.monotonic() - started < 15
