"""How a remote run's job is made ready, per mode: a Docker image (``docker``),
a venv from the pip steps (``native``), or the image's steps applied on the box
itself and then the venv (``inline``).

Each setup plans before the connection (``checks``: user mistakes fail before
anything is sent; it names the probe checks it needs) and makes the
`RemoteJob` once the run's code is on the box (``job``). ``docker`` says
whether the probe looks at Docker. One setup serves one run; ``made_from``
names what its job was made from once ``job`` returned, for the run's record:
the image's tag (docker, content-hashed) or ``venv:<key>`` (native, inline:
the content key of the venv).
"""

from __future__ import annotations

from typing import Any, Callable, Union

from ..domain.call import FunctionCall
from ..domain.machine import Machine
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.container_engine import BuildRequest
from ..ports.python_env import EnvRequest, PythonEnv, PythonEnvBuilder
from ..ports.transport import Transport
from .docker_setup import DockerSetup, EngineFor, ImagesFor
from .inline_steps import InlineSteps
from .remote_run import RemoteJob, RunPlace
from .tree import TreeScanner
from .venv_setup import EnvsFor, InlineSetup, NativeSetup


class _Made:
    """What one setup's job is made from, as its builders learn it."""

    def __init__(self) -> None:
        self.image: str | None = None  # the tag the job runs (docker)
        self.env: str | None = None  # the venv's content key (native, inline)


class _NotedImages:
    """An `ImageBuilder` that notes the tag of the image it plans."""

    def __init__(self, images: Any, made: _Made) -> None:
        self._images = images
        self._made = made

    def base_request(self, *args: Any, **kwargs: Any) -> BuildRequest:
        request = self._images.base_request(*args, **kwargs)
        self._made.image = request.tag
        return request

    def __getattr__(self, name: str) -> Any:  # build, ...
        return getattr(self._images, name)


class _NotedEnvs:
    """A `PythonEnvBuilder` that notes the key of the environment it made (or found)."""

    def __init__(self, envs: PythonEnvBuilder, made: _Made) -> None:
        self._envs = envs
        self._made = made

    def ensure(self, request: EnvRequest, on_line: Callable[[str], None] | None = None) -> PythonEnv:
        env = self._envs.ensure(request, on_line=on_line)
        self._made.env = request.key
        return env


class Setup:
    """One run's setup in its mode, and what its job was made from."""

    def __init__(self, inner: Union[DockerSetup, NativeSetup, InlineSetup], made: _Made) -> None:
        self.inner = inner
        self.docker = inner.docker
        self._made = made

    def checks(self, call: FunctionCall, repo_root: str, anchored: frozenset[str]) -> dict[str, str]:
        return self.inner.checks(call, repo_root, anchored)

    def job(self, call: FunctionCall, place: RunPlace, machine: Machine) -> RemoteJob:
        return self.inner.job(call, place, machine)

    @property
    def made_from(self) -> str | None:
        """The image's tag (docker) or "venv:<key>" (native, inline); None before ``job``."""
        if self.docker:
            return self._made.image
        return f"venv:{self._made.env}" if self._made.env else None


JobSetup = Union[DockerSetup, NativeSetup, InlineSetup, Setup]


def job_setup(
    mode: str,
    transport: Transport,
    engine_for: EngineFor,
    envs_for: EnvsFor,
    images_for: ImagesFor,
    trees: TreeScanner,
    console: Console,
    clock: Clock,
) -> Setup:
    """The setup of one run in ``mode`` ("docker", "native" or "inline") over ``transport``."""
    made = _Made()
    if mode == "docker":
        noted_images: ImagesFor = lambda engine: _NotedImages(images_for(engine), made)  # noqa: E731
        return Setup(DockerSetup(transport, engine_for, noted_images, console), made)
    noted_envs: EnvsFor = lambda where, boot: _NotedEnvs(envs_for(where, boot), made)  # noqa: E731
    native = NativeSetup(transport, noted_envs, trees, console, clock)
    if mode == "native":
        return Setup(native, made)
    if mode == "inline":
        return Setup(InlineSetup(native, InlineSteps(transport, console, clock)), made)
    raise ValueError(f"unknown remote run mode {mode!r}")
