"""Signal dispositions for driver subprocesses that tests interrupt.

A shell that starts a command in the background without job control (``cmd &``
in a script, or ``nohup``) makes it ignore SIGINT (and SIGHUP), and ignored
signals pass on through exec: a driver started there could not be interrupted
at all, and runplz rightly keeps an ignored signal ignored. Tests that send
those signals start their driver with ``preexec_fn=default_signals`` so they
test runplz, not how the test run was launched."""

from __future__ import annotations

import signal


def default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
