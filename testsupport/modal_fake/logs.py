"""Log bus: container output (and fake image-build lines) fanned out to `AppGetLogs` streams.

Each app keeps an append-only list of `TaskLogsBatch` entries, numbered from 1 (the entry id the
client sends back as `last_entry_id` to resume). An app's stream ends with an `app_done` batch once
the client has disconnected and every container of the app has exited and its pipes are drained.
"""

from __future__ import annotations

import asyncio
import time

from modal_proto import api_pb2


class AppLogs:
    """The entries of one app plus the bookkeeping that decides when its logs are complete."""

    def __init__(self) -> None:
        self.entries: list[api_pb2.TaskLogsBatch] = []
        self.changed = asyncio.Condition()
        self.disconnected = False
        self.live_containers = 0

    @property
    def done(self) -> bool:
        return self.disconnected and self.live_containers == 0


class LogBus:
    """All apps' logs; every method runs on the server's event loop."""

    def __init__(self) -> None:
        self.apps: dict[str, AppLogs] = {}

    def app(self, app_id: str) -> AppLogs:
        return self.apps.setdefault(app_id, AppLogs())

    async def _notify(self, app_id: str) -> None:
        logs = self.app(app_id)
        async with logs.changed:
            logs.changed.notify_all()

    async def write(self, app_id: str, data: str, *, fd: int, task_id: str = "", function_id: str = "",
                    input_id: str = "", function_call_id: str = "") -> None:
        """Append one chunk of output (fd: api_pb2.FILE_DESCRIPTOR_STDOUT / _STDERR / _INFO)."""
        logs = self.app(app_id)
        entry_id = str(len(logs.entries) + 1)
        item = api_pb2.TaskLogs(
            data=data, file_descriptor=fd, timestamp=time.time(), function_call_id=function_call_id,
            input_id=input_id, container_id=task_id,
        )
        logs.entries.append(api_pb2.TaskLogsBatch(
            task_id=task_id, function_id=function_id, input_id=input_id, entry_id=entry_id, items=[item],
        ))
        await self._notify(app_id)

    async def container_started(self, app_id: str) -> None:
        self.app(app_id).live_containers += 1

    async def container_exited(self, app_id: str) -> None:
        self.app(app_id).live_containers -= 1
        await self._notify(app_id)

    async def disconnect(self, app_id: str) -> None:
        self.app(app_id).disconnected = True
        await self._notify(app_id)

    async def stream(self, request: api_pb2.AppGetLogsRequest):
        """Yield the batches after `request.last_entry_id`, waiting up to `request.timeout` for more."""
        logs = self.app(request.app_id)
        start = int(request.last_entry_id) if request.last_entry_id.isdigit() else 0
        deadline = time.monotonic() + (request.timeout or 0)
        while True:
            while start < len(logs.entries):
                batch = logs.entries[start]
                start += 1
                if _matches(batch, request):
                    yield batch
            if logs.done:
                yield api_pb2.TaskLogsBatch(app_done=True, entry_id=str(start))
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            async with logs.changed:
                if start < len(logs.entries) or logs.done:
                    continue
                try:
                    await asyncio.wait_for(logs.changed.wait(), timeout=min(left, 1.0))
                except asyncio.TimeoutError:
                    pass


def _matches(batch: api_pb2.TaskLogsBatch, request: api_pb2.AppGetLogsRequest) -> bool:
    if request.function_id and batch.function_id != request.function_id:
        return False
    if request.task_id and batch.task_id != request.task_id:
        return False
    if request.function_call_id and all(i.function_call_id != request.function_call_id for i in batch.items):
        return False
    if request.file_descriptor and all(i.file_descriptor != request.file_descriptor for i in batch.items):
        return False
    return True
