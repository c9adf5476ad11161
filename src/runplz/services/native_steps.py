"""The pip steps of a native environment, and the content key that caches it."""

from __future__ import annotations

import json
import os
from typing import Callable

from ..domain.errors import UsageError
from ..domain.hashing import digest, tree_digest
from ..domain.local_plan import NativePlan
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.python_env import EnvRequest, PipStep, PythonEnvBuilder
from .tree import TreeScanner

_PACKAGING = ("pyproject.toml", "setup.py", "setup.cfg")


def native_steps(
    plan: NativePlan, repo_root: str, trees: TreeScanner, place: Callable[[str], str]
) -> tuple[tuple[PipStep, ...], tuple[str, ...]]:
    """Pip steps, with local folders at ``place(repo_path)``, and one key part per step.

    A local folder's part hashes its packaging files when editable (code
    changes need no new environment), all its files otherwise.
    """
    steps, parts = [], []
    for step in plan.steps:
        if not step.local:
            steps.append(PipStep(step.packages, step.index_url))
            parts.append("pip:" + json.dumps([list(step.packages), step.index_url]))
            continue
        path = step.packages[0]
        folder = os.path.join(repo_root, *path.split("/"))
        if not os.path.isdir(folder):
            raise UsageError(f"pip_install_local_dir({path!r}): no such folder in the repo")
        try:
            selection = trees.select(folder, repo_root=repo_root)
        except ValueError:
            raise UsageError(f"pip_install_local_dir({path!r}) lies outside the repo") from None
        if step.editable:
            packaging = [f.entry for f in selection.files if f.entry.path in _PACKAGING]
            parts.append(digest("local", path, str(step.editable), tree_digest(packaging)))
        else:
            parts.append(digest("local", path, str(step.editable), selection.content_digest()))
        steps.append(PipStep((place(path),), None, editable=step.editable))
    return tuple(steps), tuple(parts)


def ensure_env(
    envs: PythonEnvBuilder, request: EnvRequest, console: Console, clock: Clock, where: str = ""
) -> str:
    """The environment's interpreter, saying how long it took when it had to be made."""
    started = clock.monotonic()
    env = envs.ensure(request, on_line=console.output)
    if env.created:
        place = f" on {where}" if where else ""
        console.info(f"made environment {request.key[:12]}{place} in {clock.monotonic() - started:.1f}s")
    return env.python
