"""The ssh backend: run a function on a box the user owns.

runplz never provisions or stops the box: the backend hands its transport to
the shared remote run path, in Docker or native mode as `SshConfig` says.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import attrs

from ..domain.call import FunctionCall
from ..domain.config import SshConfig
from ..domain.host import SshTarget
from ..ports.transport import Transport
from .remote_path import RemoteRunPath, RemoteRunSettings


@attrs.frozen
class SshSettings:
    outputs_dir: str  # absolute, on this machine
    config: SshConfig
    target: SshTarget

    def run_settings(self) -> RemoteRunSettings:
        config = self.config
        return RemoteRunSettings(
            outputs_dir=self.outputs_dir,
            mode="docker" if config.use_docker else "native",
            max_runtime_seconds=config.max_runtime_seconds,
            ready_wait_seconds=config.ssh_ready_wait_seconds,
        )


class SshBackend:
    """Runs calls on the box. A run closes the transport it used when it ends,
    so runs that overlap (a map's inputs) each need a transport of their own:
    with ``transports`` (called with ``target=``) each map input gets one and
    up to `MAP_CONCURRENCY` run at once; without it calls take turns."""

    MAP_CONCURRENCY = 4

    def __init__(
        self,
        transport: Transport,
        paths: Callable[..., RemoteRunPath],  # called with (transport=, settings=)
        settings: SshSettings,
        transports: Callable[..., Transport] | None = None,
    ) -> None:
        self._transport = transport
        self._paths = paths
        self._settings = settings
        self._transports = transports
        self._turns = threading.Lock()

    @property
    def map_concurrency(self) -> int:
        """`.map()`'s default K on this box."""
        return self.MAP_CONCURRENCY if self._transports is not None else 1

    def call(self, call: FunctionCall) -> Any:
        settings = self._settings.run_settings()
        outputs = getattr(call, "outputs", None)
        if outputs:  # a map input's own folder
            settings = attrs.evolve(settings, outputs_dir=outputs)
        if getattr(call, "index", None) is not None and self._transports is not None:
            transport = self._transports(target=self._settings.target)
            return self._paths(transport=transport, settings=settings).call(call)
        with self._turns:
            return self._paths(transport=self._transport, settings=settings).call(call)
