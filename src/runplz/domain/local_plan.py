"""Decisions of the local backend that need no I/O."""

from __future__ import annotations

from typing import Callable

import attrs

from .errors import GpuUnavailable, UsageError
from .image import AptInstall, Image, LocalDir, PipInstall, RunCommands


@attrs.frozen
class GpuChoice:
    flag: str | None  # value for `docker run --gpus`, or None
    warning: str | None = None


def choose_gpus(
    setting: str, wants_gpu: bool, engine_has_gpus: Callable[[], bool], function: str
) -> GpuChoice:
    """Map LocalConfig.gpus and the function's request onto ``--gpus``.

    ``engine_has_gpus`` is asked only when the answer matters.
    """
    if setting == "none":
        return GpuChoice(None)
    if setting == "auto":
        if not wants_gpu:
            return GpuChoice(None)
        if engine_has_gpus():
            return GpuChoice("all")
        return GpuChoice(
            None,
            f"{function} asks for a GPU but this Docker engine has no NVIDIA runtime; "
            "running without GPUs (install the NVIDIA Container Toolkit to use them)",
        )
    if not engine_has_gpus():
        raise GpuUnavailable(
            f"LocalConfig(gpus={setting!r}) but this Docker engine has no NVIDIA runtime"
        )
    return GpuChoice("all" if setting == "all" else f"device={setting}")


@attrs.frozen
class NativeStep:
    packages: tuple[str, ...]
    index_url: str | None = None
    local: bool = False
    editable: bool = False


@attrs.frozen
class NativePlan:
    steps: tuple[NativeStep, ...]
    warnings: tuple[str, ...]


def native_plan(image: Image, function: str) -> NativePlan:
    """The pip steps a native venv applies, and what it cannot apply."""
    if image.is_dockerfile:
        raise UsageError(
            f"{function} uses Image.from_dockerfile(...), which native mode cannot build; "
            "run it with Docker (drop --native / LocalConfig(use_docker=False))"
        )
    steps: list[NativeStep] = []
    skipped: list[str] = []
    for op in image.ops:
        if isinstance(op, PipInstall):
            steps.append(NativeStep(op.packages, op.index_url))
        elif isinstance(op, LocalDir):
            steps.append(NativeStep((op.path,), None, local=True, editable=op.editable))
        elif isinstance(op, AptInstall):
            skipped.append("apt_install(" + ", ".join(op.packages) + ")")
        elif isinstance(op, RunCommands):
            skipped.append("run_commands(" + ", ".join(repr(c) for c in op.commands) + ")")
    warnings = ()
    if skipped:
        warnings = (
            "native mode does not apply " + "; ".join(skipped)
            + ": make sure this machine already has what they would install",
        )
    return NativePlan(tuple(steps), warnings)
