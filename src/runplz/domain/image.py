"""The Image DSL: an immutable chain of build steps, declared once, rendered per backend."""

from __future__ import annotations

import re
from typing import Union

import attrs

from .errors import ConfigError
from .validate import show, strings

_APT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.:=~_/-]*")


@attrs.frozen
class RegistryBase:
    ref: str


@attrs.frozen
class DockerfileBase:
    path: str
    context: str | None


class ImageOp:
    """Base of every build step. ``kind``, ``args`` and ``kwargs`` read a step the
    way the seed's ``ImageOp`` did (kinds "apt_install", "pip_install",
    "pip_install_local_dir", "run"; kwargs as (key, str) pairs)."""

    __slots__ = ()
    kind: str = ""

    @property
    def args(self) -> tuple[str, ...]:
        return ()

    @property
    def kwargs(self) -> tuple[tuple[str, str], ...]:
        return ()

    def kwargs_dict(self) -> dict[str, str]:
        return dict(self.kwargs)


@attrs.frozen
class AptInstall(ImageOp):
    packages: tuple[str, ...]
    kind = "apt_install"

    @property
    def args(self) -> tuple[str, ...]:
        return self.packages


@attrs.frozen
class PipInstall(ImageOp):
    packages: tuple[str, ...]
    index_url: str | None = None
    kind = "pip_install"

    @property
    def args(self) -> tuple[str, ...]:
        return self.packages

    @property
    def kwargs(self) -> tuple[tuple[str, str], ...]:
        return () if self.index_url is None else (("index_url", self.index_url),)


@attrs.frozen
class LocalDir(ImageOp):
    path: str
    editable: bool = True
    kind = "pip_install_local_dir"

    @property
    def kwargs(self) -> tuple[tuple[str, str], ...]:
        return (("path", self.path), ("editable", "1" if self.editable else "0"))


@attrs.frozen
class RunCommands(ImageOp):
    commands: tuple[str, ...]
    kind = "run"

    @property
    def args(self) -> tuple[str, ...]:
        return self.commands


Op = Union[AptInstall, PipInstall, LocalDir, RunCommands]
Base = Union[RegistryBase, DockerfileBase]


def repo_relative(path: object, what: str) -> str:
    """Normalise a repo-relative path ('.' for the root); refuse ones that leave it."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ConfigError(f"{what} must be a path inside the repo; got {show(path)}")
    if path.startswith("/"):
        raise ConfigError(f"{what} must be relative to the repo root; got {path!r}")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError(f"{what} must stay inside the repo; got {path!r}")
    return "/".join(parts) or "."


@attrs.frozen
class Image:
    """A container image: a base plus ordered steps. Every method returns a new Image."""

    base: Base
    ops: tuple[Op, ...] = ()

    @classmethod
    def from_registry(cls, ref: str) -> "Image":
        """Start from an image reference such as ``"python:3.11-slim"``."""
        if not isinstance(ref, str) or not ref.strip() or any(c.isspace() for c in ref):
            raise ConfigError(f"Image.from_registry needs an image reference; got {show(ref)}")
        return cls(RegistryBase(ref))

    @classmethod
    def from_dockerfile(cls, path: str, context: str | None = None) -> "Image":
        """Use a Dockerfile you maintain; ``context`` defaults to the repo root."""
        dockerfile = repo_relative(path, "Image.from_dockerfile path")
        if dockerfile == ".":
            raise ConfigError("Image.from_dockerfile path must name a file")
        ctx = None if context is None else repo_relative(context, "Image.from_dockerfile context")
        return cls(DockerfileBase(dockerfile, ctx))

    @property
    def is_dockerfile(self) -> bool:
        return isinstance(self.base, DockerfileBase)

    def _items(self, method: str, values: tuple[object, ...]) -> tuple[str, ...]:
        """A step's checked strings; none is allowed (generated lists are often
        empty), except on a Dockerfile image, which takes no steps at all."""
        if self.is_dockerfile:
            self._chain(method, RunCommands(()))  # raises the Dockerfile error
        return strings("Image", method, values, at_least_one=False)

    def _chain(self, method: str, op: Op) -> "Image":
        if self.is_dockerfile:
            raise ConfigError(
                f"Image.{method}() cannot extend an Image.from_dockerfile(...) image; "
                "add the step to your Dockerfile instead"
            )
        return attrs.evolve(self, ops=self.ops + (op,))

    def apt_install(self, *packages: str) -> "Image":
        """Install Debian/Ubuntu packages with apt-get (none: no step)."""
        names = self._items("apt_install", packages)
        if not names:
            return self
        for name in names:
            if not _APT_NAME.fullmatch(name):
                raise ConfigError(f"Image.apt_install: {name!r} is not an apt package name")
        return self._chain("apt_install", AptInstall(names))

    def pip_install(self, *packages: str, index_url: str | None = None) -> "Image":
        """Install Python packages with pip (requirement strings such as ``"pandas>=2.0"``;
        none: no step)."""
        names = self._items("pip_install", packages)
        if index_url is not None and (
            not isinstance(index_url, str) or not index_url.strip() or any(c.isspace() for c in index_url)
        ):
            raise ConfigError(f"Image.pip_install index_url must be a URL; got {show(index_url)}")
        return self._chain("pip_install", PipInstall(names, index_url)) if names else self

    def pip_install_local_dir(self, path: str = ".", editable: bool = True) -> "Image":
        """pip-install a directory of your repo (relative to the repo root)."""
        if not isinstance(editable, bool):
            raise ConfigError(f"Image.pip_install_local_dir editable must be True or False; got {show(editable)}")
        local = repo_relative(path, "Image.pip_install_local_dir path")
        return self._chain("pip_install_local_dir", LocalDir(local, editable))

    def run_commands(self, *commands: str) -> "Image":
        """Run shell commands, each in its own step (none: no step)."""
        lines = self._items("run_commands", commands)
        return self._chain("run_commands", RunCommands(lines)) if lines else self
