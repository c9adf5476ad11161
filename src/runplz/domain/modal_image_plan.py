"""Pure decisions behind the Modal image (the adapter `adapters/modal_image.py` makes the calls).

- `needs_python`: whether a registry base is a bare OS image with no Python, so
  Modal must be told ``add_python``. The Modal backend passes ``add_python`` only
  where this says True (or the user forces it): on an image that has its own
  Python, Modal's standalone Python would shadow it and its packages.
- `local_dir_install`: the shell line that pip-installs a repo folder, with the
  same pip flags as the Docker backend (`dockerfile.pip_argv`).
- `keeps`: the keep-only rule applied to every folder that travels to Modal.
"""

from __future__ import annotations

import shlex

from .dockerfile import pip_argv
from .layout import REPO_DIR

# Well-known bases that ship an OS but no Python, as repository paths after the
# registry host and Docker Hub's "library/" are dropped. "x/x" is the form some
# registries use for an official image (public.ecr.aws/ubuntu/ubuntu, quay.io/centos/centos).
_OS_ONLY = ("ubuntu", "debian", "centos", "rockylinux", "almalinux", "fedora", "amazonlinux", "alpine", "busybox")
_OS_ONLY_PATHS = frozenset(_OS_ONLY) | frozenset(f"{name}/{name}" for name in _OS_ONLY) | {"nvidia/cuda"}


def repository_path(ref: str) -> str:
    """The repository part of an image reference: no registry host, no ``library/``,
    no tag, no digest, lower case ("docker.io/library/ubuntu:22.04" -> "ubuntu")."""
    name = ref.strip().split("@", 1)[0]
    parts = name.split("/")
    last = parts[-1]
    if ":" in last:
        parts[-1] = last.split(":", 1)[0]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower()


def needs_python(ref: str) -> bool:
    """True for well-known OS-only bases (ubuntu, debian, nvidia/cuda, centos,
    rockylinux, almalinux, fedora, amazonlinux, alpine, busybox; any registry
    host or "library/" prefix); False for everything else (python:*,
    pytorch/pytorch, nvcr.io/nvidia/pytorch, ...), which is assumed to bring Python."""
    return repository_path(ref) in _OS_ONLY_PATHS


def repo_target(path: str) -> str:
    """Where a repo-relative folder ('.' for the root) lands in the container."""
    return REPO_DIR if path == "." else f"{REPO_DIR}/{path}"


def local_dir_install(path: str, editable: bool) -> str:
    """The shell line that pip-installs repo folder ``path`` once it is at `repo_target`.

    The pip flags are the Docker backend's (`pip_argv`), with ``python`` for
    ``python3``: Modal requires ``python`` on PATH and runs functions with it,
    so this is the interpreter the package must land in (with ``add_python`` it
    is Modal's standalone Python, not the image's ``python3``)."""
    argv = pip_argv((repo_target(path),), None, editable=editable)
    return shlex.join("python" if arg == "python3" else arg for arg in argv)


def under(prefix: str, relative: str) -> str:
    """A path relative to repo folder ``prefix`` as a repo-relative path."""
    relative = relative.strip("/")
    if prefix in ("", "."):
        return relative
    return f"{prefix}/{relative}" if relative and relative != "." else prefix


def keeps(keep: frozenset[str], prefix: str, relative: str) -> bool:
    """Whether the file or folder at ``relative`` (to repo folder ``prefix``) may travel:
    only paths listed in ``keep`` do; everything else stays home."""
    return under(prefix, relative) in keep
