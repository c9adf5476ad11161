"""A container run as a value, and the ``docker run`` command line for it."""

from __future__ import annotations

from typing import Mapping

import attrs


@attrs.frozen
class Mount:
    source: str
    target: str
    read_only: bool = False


@attrs.frozen
class ContainerRun:
    image: str
    argv: tuple[str, ...]
    name: str
    env: Mapping[str, str] = attrs.field(factory=dict)
    mounts: tuple[Mount, ...] = ()
    workdir: str | None = None
    user: str | None = None
    gpus: str | None = None  # None, "all" or "device=0,1"
    labels: Mapping[str, str] = attrs.field(factory=dict)
    timeout: float | None = None


def _mount(mount: Mount) -> str:
    def field(key: str, value: str) -> str:
        text = f"{key}={value}"
        return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text

    spec = f"type=bind,{field('source', mount.source)},{field('target', mount.target)}"
    return spec + (",readonly" if mount.read_only else "")


def docker_run_argv(run: ContainerRun, docker: str = "docker") -> list[str]:
    """``docker run`` for ``run``. Env values are not in argv: ``-e NAME`` takes
    each from the docker client's own environment, which the caller sets."""
    argv = [docker, "run", "--rm", "--pull", "never", "--name", run.name]
    for key, value in sorted(run.labels.items()):
        argv += ["--label", f"{key}={value}"]
    for key in sorted(run.env):
        argv += ["-e", key]
    for mount in run.mounts:
        argv += ["--mount", _mount(mount)]
    if run.workdir:
        argv += ["-w", run.workdir]
    if run.user:
        argv += ["-u", run.user]
    if run.gpus:
        argv += ["--gpus", run.gpus]
    return argv + [run.image, *run.argv]
