"""Image and mount RPCs: record image definitions (never build them) and store uploaded files.

Images: `ImageGetOrCreate` records the layer and answers "not built yet", so the client joins the
build through `ImageJoinStreaming`, which streams one fake build-log line and a success (or the
failure a test asked for via `state.image_build_failure`).
Mounts: file contents are stored once per sha256 under `<root>/files/`; a mount is the mapping
container path -> sha256 that `layout.py` later materialises in a container root.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from google.protobuf import timestamp_pb2
from modal_proto import api_pb2

from .rpc_app import IMAGE_BUILDER_VERSION
from .state import ImageRecord, MountRecord


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class ImageRpcs:
    """Handlers for images and mounts."""

    def _file_path(self, sha256_hex: str) -> str:
        return os.path.join(self.state.root, "files", sha256_hex)

    async def ImageGetOrCreate(self, stream) -> None:
        request: api_pb2.ImageGetOrCreateRequest = await stream.recv_message()
        image = request.image
        image_id = self.state.new_id("im")
        context_files = {}
        for context_file in image.context_files:
            path = os.path.join(self.state.root, "context", image_id, context_file.filename.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(context_file.data)
            context_files[context_file.filename] = path
        add_python = ""
        if any(line.startswith("COPY /python/. ") for line in image.dockerfile_commands):
            mount = self.state.mounts.get(image.context_mount_id)
            name = mount.deployment_name if mount is not None else ""
            # python-build-standalone.<release>.<full version>-<libc>
            add_python = name.split(".", 2)[-1].split("-")[0] if name.count(".") >= 2 else "?"
        record = ImageRecord(
            image_id=image_id,
            dockerfile_commands=list(image.dockerfile_commands),
            base_images=[base.image_id for base in image.base_images],
            context_mount_id=image.context_mount_id,
            context_files=context_files,
            add_python=add_python,
            request=request,
        )
        with self.state.lock:
            self.state.images[image_id] = record
            self.state.image_order.append(image_id)
        await stream.send_message(api_pb2.ImageGetOrCreateResponse(image_id=image_id))

    async def ImageJoinStreaming(self, stream) -> None:
        request: api_pb2.ImageJoinStreamingRequest = await stream.recv_message()
        record = self.state.images.get(request.image_id)
        steps = len(record.dockerfile_commands) if record else 0
        line = f"[modal-fake] image {request.image_id}: recorded {steps} Dockerfile command(s), not built\n"
        log = api_pb2.TaskLogs(data=line, file_descriptor=api_pb2.FILE_DESCRIPTOR_INFO, timestamp=time.time())
        await stream.send_message(api_pb2.ImageJoinStreamingResponse(task_logs=[log], entry_id="1"))
        failure = self.state.image_build_failure
        if failure:
            result = api_pb2.GenericResult(status=api_pb2.GenericResult.GENERIC_STATUS_FAILURE, exception=failure)
        else:
            result = api_pb2.GenericResult(status=api_pb2.GenericResult.GENERIC_STATUS_SUCCESS)
        version = "%d.%d.%d" % sys.version_info[:3]
        metadata = api_pb2.ImageMetadata(
            python_version_info=f"{version} (modal-fake)", workdir="/root", image_builder_version=IMAGE_BUILDER_VERSION,
        )
        await stream.send_message(api_pb2.ImageJoinStreamingResponse(result=result, metadata=metadata, entry_id="2", eof=True))

    async def MountBatchedCheckExistence(self, stream) -> None:
        request: api_pb2.MountBatchedCheckExistenceRequest = await stream.recv_message()
        missing = [h for h in request.sha256_hex_hashes if not os.path.exists(self._file_path(h))]
        await stream.send_message(api_pb2.MountBatchedCheckExistenceResponse(
            missing_sha256_hex_hashes=missing, checked_at=_now()))

    async def MountPutFile(self, stream) -> None:
        request: api_pb2.MountPutFileRequest = await stream.recv_message()
        target = self._file_path(request.sha256_hex)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        which = request.WhichOneof("data_oneof")
        if which == "data_blob_id":
            shutil.copyfile(self.blobs.path(request.data_blob_id), target + ".part")
            os.replace(target + ".part", target)
        elif which == "data":
            with open(target + ".part", "wb") as f:
                f.write(request.data)
            os.replace(target + ".part", target)
        exists = os.path.exists(target)
        await stream.send_message(api_pb2.MountPutFileResponse(exists=exists, checked_at=_now()))

    async def MountGetOrCreate(self, stream) -> None:
        request: api_pb2.MountGetOrCreateRequest = await stream.recv_message()
        mount_id = self.state.new_id("mo")
        files = {f.filename: f.sha256_hex for f in request.files}
        modes = {f.filename: f.mode for f in request.files}
        record = MountRecord(mount_id=mount_id, files=files, request=request, modes=modes,
                            deployment_name=request.deployment_name)
        with self.state.lock:
            self.state.mounts[mount_id] = record
        await stream.send_message(api_pb2.MountGetOrCreateResponse(
            mount_id=mount_id, handle_metadata=api_pb2.MountHandleMetadata(content_checksum_sha256_hex=mount_id)))
