"""Blob store: an HTTP server on 127.0.0.1 that stands in for Modal's S3 upload/download URLs.

`BlobCreate` hands out `PUT <base>/blob/<id>`; the client streams the body there and checks the
returned ETag (the body's MD5, as S3 does). `BlobGet` hands out `GET <base>/blob/<id>`. Bodies go
straight to files under the fake's folder, so 300 MB payloads never sit in memory here.
"""

from __future__ import annotations

import hashlib
import os

from aiohttp import web


class BlobStore:
    """Blob ids -> files on disk, plus the aiohttp app that serves them."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.base_url = ""  # set once the HTTP server has a port
        self._runner: web.AppRunner | None = None

    def path(self, blob_id: str) -> str:
        if "/" in blob_id or blob_id.startswith("."):
            raise ValueError(f"bad blob id {blob_id!r}")
        return os.path.join(self.folder, blob_id)

    def upload_url(self, blob_id: str) -> str:
        return f"{self.base_url}/blob/{blob_id}"

    def download_url(self, blob_id: str) -> str:
        return f"{self.base_url}/blob/{blob_id}"

    def exists(self, blob_id: str) -> bool:
        return os.path.exists(self.path(blob_id))

    def read(self, blob_id: str) -> bytes:
        with open(self.path(blob_id), "rb") as f:
            return f.read()

    async def _put(self, request: web.Request) -> web.Response:
        blob_id = request.match_info["blob_id"]
        md5 = hashlib.md5()
        tmp = self.path(blob_id) + ".part"
        with open(tmp, "wb") as f:
            async for chunk in request.content.iter_chunked(1 << 20):
                md5.update(chunk)
                f.write(chunk)
        os.replace(tmp, self.path(blob_id))
        return web.Response(status=200, headers={"ETag": f'"{md5.hexdigest()}"'})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        blob_id = request.match_info["blob_id"]
        if not self.exists(blob_id):
            return web.Response(status=404, text=f"no blob {blob_id}")
        return web.FileResponse(self.path(blob_id))

    async def start(self) -> None:
        """Serve on an ephemeral 127.0.0.1 port (call on the server's event loop)."""
        app = web.Application(client_max_size=1 << 40)
        app.router.add_put("/blob/{blob_id}", self._put)
        app.router.add_get("/blob/{blob_id}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
