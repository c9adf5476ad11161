"""App-level RPCs: hello, environments, apps (create/publish/heartbeat/disconnect), logs, secrets.

A mixin for the servicer (see servicer.py); `self.state`, `self.logs` and `self.containers` are set
by the servicer. Every handler answers with the real `modal_proto` messages.
"""

from __future__ import annotations

import time

from google.protobuf import empty_pb2
from modal_proto import api_pb2

IMAGE_BUILDER_VERSION = "2025.06"


class AppRpcs:
    """Handlers the client needs to open a session and run an ephemeral app."""

    async def ClientHello(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.ClientHelloResponse(image_builder_version=IMAGE_BUILDER_VERSION))

    async def AuthTokenGet(self, stream) -> None:
        await stream.recv_message()
        # Never used for the control plane here; an opaque token is enough.
        await stream.send_message(api_pb2.AuthTokenGetResponse(token="fake-auth-token"))

    async def EnvironmentGetOrCreate(self, stream) -> None:
        request: api_pb2.EnvironmentGetOrCreateRequest = await stream.recv_message()
        settings = api_pb2.EnvironmentSettings(image_builder_version=IMAGE_BUILDER_VERSION)
        metadata = api_pb2.EnvironmentMetadata(name=request.deployment_name or "main", settings=settings)
        await stream.send_message(api_pb2.EnvironmentGetOrCreateResponse(environment_id="en-fake", metadata=metadata))

    async def AppCreate(self, stream) -> None:
        request: api_pb2.AppCreateRequest = await stream.recv_message()
        app_id = self.state.new_id("ap")
        self.state.apps[app_id] = {"description": request.description, "created_at": time.time()}
        self.logs.app(app_id)
        await stream.send_message(api_pb2.AppCreateResponse(
            app_id=app_id,
            app_page_url=f"https://modal.invalid/apps/{app_id}",
            app_logs_url=f"https://modal.invalid/logs/{app_id}",
        ))

    async def AppHeartbeat(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(empty_pb2.Empty())

    async def AppPublish(self, stream) -> None:
        request: api_pb2.AppPublishRequest = await stream.recv_message()
        self.state.apps.setdefault(request.app_id, {})["published"] = request
        await stream.send_message(api_pb2.AppPublishResponse(
            url=f"https://modal.invalid/apps/{request.app_id}", deployed_at=time.time()))

    async def AppGetLayout(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.AppGetLayoutResponse())

    async def AppSetObjects(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(empty_pb2.Empty())

    async def AppClientDisconnect(self, stream) -> None:
        request: api_pb2.AppClientDisconnectRequest = await stream.recv_message()
        self.state.apps.setdefault(request.app_id, {})["disconnect"] = request
        await self.containers.stop_app(request.app_id)
        await self.logs.disconnect(request.app_id)
        await stream.send_message(empty_pb2.Empty())

    async def AppStop(self, stream) -> None:
        request: api_pb2.AppStopRequest = await stream.recv_message()
        self.state.stopped_apps.add(request.app_id)
        await self.containers.stop_app(request.app_id, grace_s=0.0)
        await self.logs.disconnect(request.app_id)
        await stream.send_message(empty_pb2.Empty())

    async def TaskList(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.TaskListResponse())

    async def AppGetLogs(self, stream) -> None:
        request: api_pb2.AppGetLogsRequest = await stream.recv_message()
        async for batch in self.logs.stream(request):
            await stream.send_message(batch)

    async def SecretGetOrCreate(self, stream) -> None:
        request: api_pb2.SecretGetOrCreateRequest = await stream.recv_message()
        secret_id = self.state.new_id("st")
        with self.state.lock:
            self.state.secrets[secret_id] = dict(request.env_dict)
            self.state.secret_order.append(secret_id)
        metadata = api_pb2.SecretMetadata(name=request.deployment_name, keys=list(request.env_dict))
        await stream.send_message(api_pb2.SecretGetOrCreateResponse(secret_id=secret_id, metadata=metadata))
