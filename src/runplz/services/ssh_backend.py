"""The ssh backend: run a function on a box the user owns.

runplz never provisions or stops the box: the backend hands its transport to
the shared remote run path, in Docker or native mode as `SshConfig` says.
"""

from __future__ import annotations

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
    def __init__(
        self,
        transport: Transport,
        paths: Callable[..., RemoteRunPath],  # called with (transport=, settings=)
        settings: SshSettings,
    ) -> None:
        self._transport = transport
        self._paths = paths
        self._settings = settings

    def call(self, call: FunctionCall) -> Any:
        path = self._paths(transport=self._transport, settings=self._settings.run_settings())
        return path.call(call)
