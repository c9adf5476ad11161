"""A Modal server URL the real client fails on fast, with its genuine connection error.

Facts (modal 1.6.4, measured here):
- a unix socket path with nothing listening, or a refused TCP port: the client retries the first
  connect (`create_channel_with_fallbacks`: 18 attempts, 63 s budget) and raises
  `modal.exception.ConnectionError: Could not connect to the Modal server.` after ~56 s;
- a listener that accepts and closes every connection: raw `grpclib.exceptions.StreamTerminatedError`
  ("Connection lost") after ~0.7 s; one that resets them (SO_LINGER 0): racy, either type, 0.7-30 s;
- a server that goes away after the first connection (accept once, stop listening, close): the
  channel opens, the first RPC's reconnects are refused, and the RPC retry loop (3 retries) raises
  `modal.exception.ConnectionError: [Errno 111] Connect call failed (...)` in ~0.7 s, every time.
`OneShotListener` is that last server.
"""

from __future__ import annotations

import socket
import threading


class OneShotListener:
    """Listens on 127.0.0.1, accepts one connection, then closes it and stops listening."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="modal-fake-oneshot", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._sock.close()  # refuse every later connect: the "server" is gone
            conn.close()
            return

    def start(self) -> "OneShotListener":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
