"""The ssh adapter's connection handling against real sshd boxes."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from runplz.adapters.ssh_transport import SshTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.system_clock import SystemClock
from runplz.domain.errors import TransportError, Unreachable
from runplz.domain.host import parse_target

pytestmark = pytest.mark.real


def transport(text: str) -> SshTransport:
    return SshTransport(SubprocessRunner(), SystemClock(), parse_target(text))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_box_fails_after_the_wait(ssh_boxes):
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"127\.0\.0\.1.*within 2s"):
        transport(f"runplz@127.0.0.1:{closed_port()}").connect(wait=2)
    assert 2 <= time.monotonic() - started < 20


def test_a_refused_login_fails_at_once(ssh_boxes):
    started = time.monotonic()
    with pytest.raises(TransportError, match="Permission denied"):
        transport("nobody-here@runplz-near").connect(wait=60)
    assert time.monotonic() - started < 20


def test_waits_for_a_box_that_is_still_booting(ssh_boxes, far_box):
    far_box.link(up=False)
    opener = threading.Timer(3, far_box.link, kwargs={"up": True})
    opener.start()
    try:
        box = transport("runplz-far")
        started = time.monotonic()
        box.connect(wait=60)
        assert time.monotonic() - started >= 2.5
        assert box.run(["true"]).exit_code == 0
        box.close()
    finally:
        opener.join()
        far_box.link(up=True)


def test_private_control_path_is_removed_on_close(ssh_boxes):
    box = transport("runplz-near")
    box.connect(wait=30)
    folder = os.path.dirname(box.control_path)
    assert os.path.basename(folder).startswith("runplz-ssh-") and os.path.exists(box.control_path)
    assert oct(os.stat(folder).st_mode)[-3:] == "700"
    box.close()
    assert not os.path.exists(folder)


def test_the_connect_timeout_bounds_a_connect_to_a_black_holed_box(ssh_boxes, far_box):
    """`runplz ps` makes its transports with a short connect timeout (its
    checks have a 10s budget); a run's keep ssh's 15s."""
    far_box.link(up=False)
    try:
        box = SshTransport(SubprocessRunner(), SystemClock(), parse_target("runplz-far"), connect_timeout=2)
        started = time.monotonic()
        with pytest.raises(Unreachable):
            box.connect(wait=0)
        assert time.monotonic() - started < 8
        box.close()
    finally:
        far_box.link(up=True)
