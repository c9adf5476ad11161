"""Inline mode (Brev's container mode): the box is the base image, so the
image's apt and shell steps are applied on the box itself, once per box, and
its pip steps make a cached venv there, as in native mode."""

from __future__ import annotations

import json

import attrs

from .errors import ConfigError
from .hashing import digest
from .image import AptInstall, Image, RunCommands
from .local_plan import NativePlan, native_plan
from .remote_layout import ROOT

APPLIED = f"{ROOT}/inline"  # one marker file per set of steps applied on the box


@attrs.frozen
class BoxStep:
    """One ``apt_install`` or one ``run_commands`` line, applied on the box."""

    label: str  # the step as the user wrote it, for progress and errors
    packages: tuple[str, ...] = ()  # apt packages; empty for a shell step
    command: str | None = None  # the shell line of a run_commands step


@attrs.frozen
class InlinePlan:
    steps: tuple[BoxStep, ...]
    native: NativePlan  # the pip steps, for the venv

    @property
    def key(self) -> str:
        """A digest of the box steps, in order: what the box's marker records."""
        return digest("inline", *(json.dumps([list(s.packages), s.command]) for s in self.steps))

    @property
    def marker(self) -> str:
        return f"{APPLIED}/{self.key[:24]}"


def inline_plan(image: Image, function: str) -> InlinePlan:
    """The steps applied on the box and the pip steps of the venv; a Dockerfile
    image is a `ConfigError` (there is no Dockerfile step to run)."""
    if image.is_dockerfile:
        raise ConfigError(
            f"{function} uses Image.from_dockerfile(...), which BrevConfig(mode='container') cannot use "
            "(container mode has no Dockerfile step: the box is the base image); use "
            "Image.from_registry(...) with DSL steps, or BrevConfig(mode='vm')"
        )
    steps: list[BoxStep] = []
    for op in image.ops:
        if isinstance(op, AptInstall):
            steps.append(BoxStep("apt_install(" + ", ".join(op.packages) + ")", packages=op.packages))
        elif isinstance(op, RunCommands):
            steps += [BoxStep(f"run_commands({command!r})", command=command) for command in op.commands]
    return InlinePlan(tuple(steps), attrs.evolve(native_plan(image, function), warnings=()))


def apt_argvs(packages: tuple[str, ...], root: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``apt-get update`` and ``apt-get install`` for ``packages``, non-interactive,
    waiting out another apt's lock; through ``sudo -n`` unless ``root``."""
    apt = (
        *(() if root else ("sudo", "-n")),
        "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o", "DPkg::Lock::Timeout=600",
    )
    return apt + ("update",), apt + ("install", "-y", "--no-install-recommends", *packages)
