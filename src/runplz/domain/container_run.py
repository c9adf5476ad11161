"""A container run as a value, and the ``docker run`` command line for it."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import attrs

SUDO_DOCKER = ("sudo", "-n", "docker")
# What says which engine the client talks to: kept across sudo, which resets the environment.
_CLIENT_ENV = ("DOCKER_HOST",)


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


def docker_prefix(command: Sequence[str], env: Iterable[str] = ()) -> tuple[str, ...]:
    """The argv prefix that runs docker as ``command`` (``("docker",)`` or
    `SUDO_DOCKER`), passing the environment variables ``env`` through to the
    client: sudo resets the environment, so ``sudo -n docker`` becomes
    ``sudo -n --preserve-env=DOCKER_HOST,NAME,... docker``. Idempotent."""
    command = tuple(command)
    if not command or command[0] != "sudo":
        return command
    flag = "--preserve-env="
    kept = [name for part in command if part.startswith(flag) for name in part[len(flag):].split(",") if name]
    rest = [part for part in command[1:] if not part.startswith(flag)]
    options = 0
    while options < len(rest) and rest[options].startswith("-"):
        options += 1
    names = ",".join(dict.fromkeys([*_CLIENT_ENV, *kept, *sorted(env)]))
    return ("sudo", *rest[:options], flag + names, *rest[options:])


def docker_run_argv(run: ContainerRun, docker: str | Sequence[str] = "docker") -> list[str]:
    """``docker run`` for ``run`` (``docker``: the executable, or an argv prefix).
    Env values are not in argv: ``-e NAME`` takes each from the docker client's
    own environment, which the caller sets (through sudo: see `docker_prefix`)."""
    prefix = [docker] if isinstance(docker, str) else list(docker)
    argv = [*prefix, "run", "--rm", "--pull", "never", "--name", run.name]
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
