"""Port: a container engine (Docker) that builds images and runs containers."""

from __future__ import annotations

from typing import Callable, Mapping, Protocol, Union, runtime_checkable

import attrs

from ..domain.container_run import ContainerRun, Mount

__all__ = [
    "BuildRequest",
    "ContainerEngine",
    "ContainerInfo",
    "ContainerRun",
    "ContextBytes",
    "ContextFile",
    "ContextFolder",
    "ContextItem",
    "ContextLink",
    "Mount",
]


@attrs.frozen
class ContextFile:
    """A file of the build context copied from disk."""

    arcname: str
    source: str
    executable: bool = False


@attrs.frozen
class ContextBytes:
    """A file of the build context given as bytes."""

    arcname: str
    data: bytes
    executable: bool = False


@attrs.frozen
class ContextLink:
    """A symbolic link of the build context; ``target`` is its text, never followed."""

    arcname: str
    target: str


@attrs.frozen
class ContextFolder:
    """A folder of the build context (so an empty one exists in the image too)."""

    arcname: str


ContextItem = Union[ContextFile, ContextBytes, ContextLink, ContextFolder]


@attrs.frozen
class BuildRequest:
    tag: str
    dockerfile: str
    context: tuple[ContextItem, ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ContainerInfo:
    """A container that exists: its name, its state as the engine words it
    ("running", "exited", "created", "paused", "restarting", "removing",
    "dead"), its exit code once it exited (else None), and its labels."""

    name: str
    state: str
    labels: Mapping[str, str] = attrs.field(factory=dict)
    exit_code: int | None = None


@runtime_checkable
class ContainerEngine(Protocol):
    """Builds tagged images and runs containers from them.

    Contract:
    - ``check()`` returns quietly when the engine answers, else raises
      `EngineUnavailable` saying what to do.
    - ``build`` makes ``tag`` from ``dockerfile`` and exactly the ``context``
      items (arcnames are '/'-separated, relative); files keep their
      executable bit, everything is readable by every user. A `ContextLink`
      arrives as a symbolic link with its target text (the target's content
      is never read), a `ContextFolder` as a folder, even an empty one. ``labels`` are
      set on the image. A failing step raises `BuildError` with the end of the
      log. Build output lines go to ``on_line``.
    - ``has_image(tag)`` is True once ``build`` succeeded for ``tag``.
    - ``latest_image(labels)`` is the tag of the most recently built image
      carrying all ``labels``, or None.
    - ``run`` starts ``argv`` in a container of ``image`` named ``name``, with
      exactly the given env added, bind mounts, working dir and user, waits,
      and returns the exit code of ``argv``. The program's output goes to the
      caller's stdout/stderr. The container is removed afterwards. A
      container that cannot start (no such image, say) raises
      `ContainerError`; ``gpus`` on an engine without GPU support raises its
      subclass `GpuUnavailable`, before anything runs. Past ``timeout`` the container is
      removed and `CommandTimeout` raised; an interrupt removes it too.
    - ``supports_gpus()`` says whether ``gpus`` can be passed to ``run``.
    - ``remove(name)`` removes a container by name; a missing one is no error.
    - ``containers(label)`` lists the containers that exist now (running or
      not, until removed; a ``run`` container while it runs) and carry the
      label ``label`` with any value, as `ContainerInfo`, sorted by name. It
      only reads. An engine that does not answer raises `EngineUnavailable`.
    """

    def check(self) -> None: ...

    def has_image(self, tag: str) -> bool: ...

    def build(self, request: BuildRequest, on_line: Callable[[str], None] | None = None) -> None: ...

    def latest_image(self, labels: Mapping[str, str]) -> str | None: ...

    def run(self, run: ContainerRun) -> int: ...

    def supports_gpus(self) -> bool: ...

    def remove(self, name: str) -> None: ...

    def containers(self, label: str) -> tuple[ContainerInfo, ...]: ...
