"""The fake control plane's process-local server: a thread running its own asyncio loop with
the grpclib server (127.0.0.1, ephemeral port), the blob HTTP server and the container runner.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading

import grpclib.events
from grpclib.server import Server

from .blobs import BlobStore
from .container import ContainerManager
from .logs import LogBus
from .servicer import make_servicer
from .state import State


class FakeServer:
    """Start with `start()`, stop with `stop()`; `url` is what MODAL_SERVER_URL must hold."""

    def __init__(self, folder: str):
        self.folder = folder
        self.state = State(root=folder)
        self.logs = LogBus()
        self.blobs = BlobStore(os.path.join(folder, "blobs"))
        self.url = ""
        self.containers: ContainerManager | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="modal-fake", daemon=True)
        self._server: Server | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout)

    async def _start(self) -> None:
        self.state.loop = self._loop
        await self.blobs.start()
        self.containers = ContainerManager(self.state, self.logs, "", os.path.join(self.folder, "containers"))
        servicer = make_servicer(self.state, self.logs, self.containers, self.blobs)
        self._server = Server([servicer])

        async def on_request(event: grpclib.events.RecvRequest) -> None:
            self.state.rpc_log.append(event.method_name.rsplit("/", 1)[-1])

        grpclib.events.listen(self._server, grpclib.events.RecvRequest, on_request)
        await self._server.start("127.0.0.1", 0)
        port = self._server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.containers.server_url = self.url

    def call(self, coro, timeout: float = 30.0):
        """Run a coroutine on the server loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.call(self._stop(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    async def _stop(self) -> None:
        if self.containers is not None:
            await self.containers.close()
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
            except asyncio.TimeoutError:
                pass
        await self.blobs.stop()
        await asyncio.to_thread(shutil.rmtree, self.blobs.folder, True)  # payloads can be hundreds of MB
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
