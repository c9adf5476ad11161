"""`ModalFake`: the test-facing handle on the fake Modal control plane.

    with ModalFake.start(tmp_path) as fake:
        monkeypatch.setenv(...) for each item of fake.env   # or env={**os.environ, **fake.env}
        ... run the real modal client ...
        fake.function_creates(); fake.image_layers(); fake.secrets(); fake.containers()
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from modal_proto import api_pb2

from .server import FakeServer
from .state import ImageRecord
from .unreachable import OneShotListener

TOKEN_ID = "ak-modal-fake"
TOKEN_SECRET = "as-modal-fake"


def _base_env(folder: Path) -> dict[str, str]:
    config = folder / "modal.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()
    return {"MODAL_CONFIG_PATH": str(config), "MODAL_TOKEN_ID": TOKEN_ID, "MODAL_TOKEN_SECRET": TOKEN_SECRET}


class ModalFake:
    """A running fake control plane; build it with `ModalFake.start(folder)`."""

    def __init__(self, server: FakeServer, folder: Path):
        self._server = server
        self.folder = folder
        self.env: dict[str, str] = {**_base_env(folder), "MODAL_SERVER_URL": server.url}

    @classmethod
    @contextlib.contextmanager
    def start(cls, folder: str | os.PathLike) -> Iterator["ModalFake"]:
        """Serve until the block ends; then kill every container and stop the servers."""
        folder = Path(folder) / "modal-fake"
        folder.mkdir(parents=True, exist_ok=True)
        server = FakeServer(str(folder))
        server.start()
        _forget_env_client()
        try:
            yield cls(server, folder)
        finally:
            _forget_env_client()
            server.stop()

    @staticmethod
    @contextlib.contextmanager
    def unreachable(folder: str | os.PathLike) -> Iterator[dict[str, str]]:
        """Env for a client that fails within ~1 s with `modal.exception.ConnectionError`.

        Serves a 127.0.0.1 port that accepts the first connection and then goes away (see
        unreachable.py for why: a dead socket or a refused port makes the client retry for ~56 s).
        One client process per block: a second one would find the port refused from the start.
        """
        folder = Path(folder) / "modal-fake-unreachable"
        folder.mkdir(parents=True, exist_ok=True)
        listener = OneShotListener().start()
        _forget_env_client()
        try:
            yield {**_base_env(folder), "MODAL_SERVER_URL": listener.url}
        finally:
            _forget_env_client()
            listener.stop()

    @staticmethod
    def unreachable_env(folder: str | os.PathLike) -> dict[str, str]:
        """Env naming a unix socket nobody listens on. The client does fail with
        `modal.exception.ConnectionError`, but only after ~60 s of retries: use `unreachable()`
        when the test needs it fast."""
        folder = Path(folder) / "modal-fake-unreachable"
        folder.mkdir(parents=True, exist_ok=True)
        return {**_base_env(folder), "MODAL_SERVER_URL": f"unix://{folder / 'nothing-listens-here.sock'}"}

    # -- what the fake recorded ------------------------------------------------------------

    @property
    def state(self):
        return self._server.state

    @property
    def url(self) -> str:
        return self._server.url

    def function_creates(self) -> list[api_pb2.FunctionCreateRequest]:
        """Every FunctionCreateRequest, in order."""
        with self.state.lock:
            return list(self.state.function_creates)

    def functions(self) -> list[api_pb2.Function]:
        """The function definitions as the containers got them (FunctionData already flattened)."""
        with self.state.lock:
            return list(self.state.functions.values())

    def image_layers(self) -> list[ImageRecord]:
        """Every ImageGetOrCreate, in order (base layers come before the layers built on them)."""
        with self.state.lock:
            return [self.state.images[i] for i in self.state.image_order]

    def secrets(self) -> list[dict[str, str]]:
        """The env dicts of every Secret.from_dict, in order."""
        with self.state.lock:
            return [dict(self.state.secrets[i]) for i in self.state.secret_order]

    def containers(self) -> list:
        """ContainerRun records: .root (the container's / on the host), .stdout, .stderr, .returncode,
        .timed_out, .task_id, .call."""
        with self.state.lock:
            return list(self.state.containers)

    @property
    def container_roots(self) -> list[Path]:
        return [Path(run.root) for run in self.containers()]

    def rpc_names(self) -> list[str]:
        """Names of every RPC received, in order."""
        return list(self.state.rpc_log)

    def errors(self) -> list[str]:
        """Exceptions the fake's own handlers raised (a fake bug, or a request it cannot take)."""
        return list(self.state.errors)

    def unimplemented(self) -> list[str]:
        """RPCs the client made that the fake answered UNIMPLEMENTED."""
        return list(self.state.unimplemented)

    def kill_container(self, run) -> None:
        """Kill one container from outside, as Modal does one that ran out of memory:
        its input fails without a result."""
        async def kill() -> None:
            self._server.containers._kill(run)

        self._server.call(kill())

    def fail_image_builds(self, message: str | None) -> None:
        """Make every later image build fail with `message` (None: succeed again)."""
        self.state.image_build_failure = message


def _forget_env_client() -> None:
    """Close and drop the `modal.Client.from_env()` singleton of this process, if any.

    The client caches one connection per process; without this a second fake (new port) in the
    same test process would be talked to through the first one's dead connection.
    """
    module = sys.modules.get("modal.client")
    if module is None:
        return
    client = module._Client._client_from_env
    if client is None:
        return
    try:
        from modal._utils.async_utils import synchronizer

        synchronizer._translate_out(client).close()
    except Exception:
        pass
    module._Client._client_from_env = None


def free_tcp_port() -> int:
    """A 127.0.0.1 port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
