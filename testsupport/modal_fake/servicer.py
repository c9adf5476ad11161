"""The gRPC servicer: the real `modal_proto` ModalClient service, answered by the RPC mixins.

Every RPC the mixins do not implement answers UNIMPLEMENTED and is noted in
`state.unimplemented`, so a test (or a person reading a failure) sees which call the client made
that the fake does not know yet.
"""

from __future__ import annotations

from grpclib import GRPCError
from grpclib.const import Status
from modal_proto.api_grpc import ModalClientBase

from .rpc_app import AppRpcs
from .rpc_container import ContainerRpcs
from .rpc_function import FunctionRpcs
from .rpc_image import ImageRpcs

MIXINS = (AppRpcs, ImageRpcs, FunctionRpcs, ContainerRpcs)


def _unimplemented(name: str):
    async def handler(self, stream) -> None:
        self.state.unimplemented.append(name)
        raise GRPCError(Status.UNIMPLEMENTED, f"modal-fake does not implement {name}")

    handler.__name__ = name
    return handler


def _build_class() -> type:
    missing = {
        name: _unimplemented(name)
        for name in ModalClientBase.__abstractmethods__
        if not any(hasattr(mixin, name) for mixin in MIXINS)
    }
    return type("FakeModalServicer", MIXINS + (ModalClientBase,), missing)


FakeModalServicer = _build_class()


def _recording(name: str, handler, errors: list):
    async def wrapped(stream) -> None:
        try:
            await handler(stream)
        except GRPCError:
            raise
        except Exception as exc:
            errors.append(f"{name}: {exc!r}")
            raise

    return wrapped


def _mapping_with_errors(self):
    """The generated mapping, each handler wrapped so a crash in the fake lands in state.errors."""
    mapping = ModalClientBase.__mapping__(self)
    for path, handler in mapping.items():
        name = path.rsplit("/", 1)[-1]
        mapping[path] = handler._replace(func=_recording(name, handler.func, self.state.errors))
    return mapping


FakeModalServicer.__mapping__ = _mapping_with_errors


def make_servicer(state, logs, containers, blobs):
    """A servicer instance wired to the fake's state, log bus, container runner and blob store."""
    servicer = FakeModalServicer()
    servicer.state = state
    servicer.logs = logs
    servicer.containers = containers
    servicer.blobs = blobs
    return servicer
