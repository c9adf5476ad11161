"""Shared, thread-safe record of what the fake control plane has seen and holds.

Everything the RPC handlers create (apps, functions, images, mounts, secrets, blobs,
function calls) lives here, so tests can inspect it after the run. Handlers run on the
server's event loop; tests read from their own thread, hence the lock around lists.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from modal_proto import api_pb2


@dataclass
class ImageRecord:
    """One ImageGetOrCreate request, flattened for tests."""

    image_id: str
    dockerfile_commands: list[str]
    base_images: list[str]  # image ids of the layers below, from base_images[*].image_id
    context_mount_id: str
    context_files: dict[str, str]  # container-relative path -> host file inside the fake's store
    add_python: str  # the Python version `add_python=` asked for ("3.11.x"), or ""
    request: api_pb2.ImageGetOrCreateRequest

    @property
    def base_image_ref(self) -> str:
        """The registry ref of a `FROM <ref>` layer, or '' when this layer builds on another one."""
        for line in self.dockerfile_commands:
            if line.upper().startswith("FROM "):
                ref = line.split(None, 1)[1].strip()
                return "" if ref == "base" else ref
        return ""


@dataclass
class MountRecord:
    """A mount: its files as container path -> sha256 of the content (content in the file store)."""

    mount_id: str
    files: dict[str, str]  # absolute container path (or relative for context mounts) -> sha256
    request: Any
    modes: dict[str, int] = field(default_factory=dict)
    deployment_name: str = ""  # set for Mount.from_name lookups (e.g. the add_python runtime)


@dataclass
class Call:
    """One function call: one input, its (future) output and the container that ran it."""

    call_id: str
    function_id: str
    input_id: str
    item: api_pb2.FunctionPutInputsItem
    done: asyncio.Event
    output: api_pb2.FunctionGetOutputsItem | None = None
    delivered: bool = False  # the container fetched the input
    entry: int = 0  # the output's place in its function call's output stream (1, 2, ...), once done


@dataclass
class State:
    """Everything the fake knows; ids come from counters so runs are deterministic."""

    root: str
    loop: asyncio.AbstractEventLoop | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    function_creates: list[api_pb2.FunctionCreateRequest] = field(default_factory=list)
    functions: dict[str, api_pb2.Function] = field(default_factory=dict)
    function_app: dict[str, str] = field(default_factory=dict)  # function id -> app id
    handle_metadata: dict[str, api_pb2.FunctionHandleMetadata] = field(default_factory=dict)
    images: dict[str, ImageRecord] = field(default_factory=dict)
    image_order: list[str] = field(default_factory=list)
    mounts: dict[str, MountRecord] = field(default_factory=dict)
    file_store: dict[str, str] = field(default_factory=dict)  # sha256 -> host path of the content
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    secret_order: list[str] = field(default_factory=list)
    calls: dict[str, Call] = field(default_factory=dict)  # input id -> its call (one per input)
    call_inputs: dict[str, list[str]] = field(default_factory=dict)  # function call id -> its input ids, in order
    output_counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    stopped_apps: set[str] = field(default_factory=set)  # AppStop'd: inputs put later never start
    apps: dict[str, dict] = field(default_factory=dict)
    containers: list[Any] = field(default_factory=list)  # container.ContainerRun records
    image_build_failure: str | None = None  # set by a test to make every image build fail
    unimplemented: list[str] = field(default_factory=list)
    rpc_log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # exceptions raised inside the fake's handlers

    def add_call(self, call: Call) -> None:
        self.calls[call.input_id] = call
        self.call_inputs.setdefault(call.call_id, []).append(call.input_id)

    def inputs_of(self, call_id: str) -> list[Call]:
        return [self.calls[input_id] for input_id in self.call_inputs.get(call_id, [])]

    def finish(self, call: Call, output: api_pb2.FunctionGetOutputsItem) -> bool:
        """Record ``call``'s output (its ``idx`` set to the input's) once; False if it already had one."""
        if call.done.is_set():
            return False
        output.idx = call.item.idx
        call.output = output
        call.entry = next(self.output_counter)
        call.done.set()
        return True

    def new_id(self, prefix: str) -> str:
        """A fresh Modal-looking object id, e.g. 'fu-000003'."""
        return f"{prefix}-{next(self.counter):06d}"
