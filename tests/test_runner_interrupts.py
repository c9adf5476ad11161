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


def test_a_run_works_with_descriptor_numbers_past_1023():
    """The wait on the child's pidfd must not use select(), which refuses them."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files ({hard}) is under 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = []
    try:
        while not held or held[-1] < 1100:
            held.append(os.open(os.devnull, os.O_RDONLY))
        result = SubprocessRunner().run(["sh", "-c", "sleep 0.1; echo ok"])
        assert result.exit_code == 0 and result.stdout.strip() == "ok"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
