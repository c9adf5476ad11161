"""How a remote run's job is made ready, per mode: a Docker image (``docker``),
a venv from the pip steps (``native``), or the image's steps applied on the box
itself and then the venv (``inline``).

Each setup plans before the connection (``checks``: user mistakes fail before
anything is sent; it names the probe checks it needs) and makes the
`RemoteJob` once the run's code is on the box (``job``). ``docker`` says
whether the probe looks at Docker. One setup serves one run.
"""

from __future__ import annotations

from typing import Union

from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.transport import Transport
from .docker_setup import DockerSetup, EngineFor, ImagesFor
from .inline_steps import InlineSteps
from .tree import TreeScanner
from .venv_setup import EnvsFor, InlineSetup, NativeSetup

JobSetup = Union[DockerSetup, NativeSetup, InlineSetup]


def job_setup(
    mode: str,
    transport: Transport,
    engine_for: EngineFor,
    envs_for: EnvsFor,
    images_for: ImagesFor,
    trees: TreeScanner,
    console: Console,
    clock: Clock,
) -> JobSetup:
    """The setup of one run in ``mode`` ("docker", "native" or "inline") over ``transport``."""
    if mode == "docker":
        return DockerSetup(transport, engine_for, images_for, console)
    native = NativeSetup(transport, envs_for, trees, console, clock)
    if mode == "native":
        return native
    if mode == "inline":
        return InlineSetup(native, InlineSteps(transport, console, clock))
    raise ValueError(f"unknown remote run mode {mode!r}")
