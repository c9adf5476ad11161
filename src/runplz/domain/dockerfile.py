"""Render Dockerfiles from the Image DSL.

Two images per function: the *base* (the DSL's steps, or the user's own
Dockerfile) and the thin *run* layer on top that carries the repo and the
runplz runtime bundle. Code changes rebuild only the run layer.
"""

from __future__ import annotations

import json
import shlex

from .image import AptInstall, Image, LocalDir, PipInstall, RegistryBase, RunCommands
from .layout import BUNDLE_DIR, CONTEXT_BUNDLE, CONTEXT_REPO, REPO_DIR

_PIP_ENV = (
    "env",
    "PIP_BREAK_SYSTEM_PACKAGES=1",
    "PIP_ROOT_USER_ACTION=ignore",
    "PIP_DISABLE_PIP_VERSION_CHECK=1",
)


def _exec(argv: list[str] | tuple[str, ...]) -> str:
    return json.dumps(list(argv), ensure_ascii=False)


def _in_repo(path: str) -> str:
    return REPO_DIR if path == "." else f"{REPO_DIR}/{path}"


def _in_context(path: str) -> str:
    return f"{CONTEXT_REPO}/" if path == "." else f"{CONTEXT_REPO}/{path}"


def pip_argv(packages: tuple[str, ...], index_url: str | None, editable: bool = False) -> list[str]:
    argv = [*_PIP_ENV, "python3", "-m", "pip", "install", "--no-cache-dir"]
    if index_url:
        argv += ["--index-url", index_url]
    if editable:
        argv.append("-e")
    return argv + list(packages)


def _render_op(op: object) -> list[str]:
    if isinstance(op, AptInstall):
        names = " ".join(shlex.quote(p) for p in op.packages)
        return [
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            f"--no-install-recommends {names} && rm -rf /var/lib/apt/lists/*"
        ]
    if isinstance(op, PipInstall):
        return ["RUN " + _exec(pip_argv(op.packages, op.index_url))]
    if isinstance(op, LocalDir):
        target = _in_repo(op.path)
        return [
            "COPY " + _exec([_in_context(op.path), target + "/"]),
            "RUN " + _exec(pip_argv((target,), None, editable=op.editable)),
        ]
    if isinstance(op, RunCommands):
        return ["RUN " + _exec(["/bin/sh", "-c", command]) for command in op.commands]
    raise TypeError(f"unknown image op {op!r}")


def render_base(image: Image) -> str:
    """The Dockerfile for a DSL image (not for ``from_dockerfile`` images)."""
    if not isinstance(image.base, RegistryBase):
        raise ValueError("render_base takes a registry-based Image")
    lines = [f"FROM {image.base.ref}", "USER root"]
    for op in image.ops:
        lines += _render_op(op)
    return "\n".join(lines) + "\n"


def local_dirs(image: Image) -> tuple[str, ...]:
    """Repo paths the base image copies in (they belong to its build context)."""
    return tuple(op.path for op in image.ops if isinstance(op, LocalDir))


def render_run_layer(base_tag: str, uid: int, gid: int) -> str:
    """The thin layer over the base: repo and runtime bundle, owned by the caller."""
    chown = f"--chown={uid}:{gid} " if uid else ""
    return (
        f"FROM {base_tag}\n"
        f"COPY {chown}" + _exec([f"{CONTEXT_REPO}/", REPO_DIR + "/"]) + "\n"
        "COPY " + _exec([f"{CONTEXT_BUNDLE}/", BUNDLE_DIR + "/"]) + "\n"
        f"WORKDIR {REPO_DIR}\n"
    )
