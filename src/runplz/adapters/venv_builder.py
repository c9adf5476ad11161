"""`PythonEnvBuilder` making real virtual environments (uv when present, else venv + pip).

With ``snapshot_editable`` (set by the remote agent), each editable folder is
first copied to ``<root>/<key[:24]>.src/<step>/`` and installed from there, so
the venv does not depend on the run folder it came from (run folders get pruned).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from typing import Callable

import attrs

from ..domain.errors import BuildError, CommandNotFound
from ..ports.command_runner import CommandRunner
from ..ports.python_env import EnvRequest, PipStep, PythonEnv

_READY = ".runplz-ready"


def _quiet(line: str) -> None:
    pass


class VenvBuilder:
    def __init__(
        self, runner: CommandRunner, root: str, uv: str | None = None, snapshot_editable: bool = False
    ) -> None:
        self._runner = runner
        self._root = root
        self._uv = uv
        self._snapshot_editable = snapshot_editable

    def _python(self, folder: str) -> str:
        return os.path.join(folder, "bin", "python")

    def _check(self, argv: list[str], on_line: Callable[[str], None], what: str) -> None:
        try:
            result = self._runner.run(argv, on_line=on_line, env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        except CommandNotFound as exc:
            raise BuildError(f"{what}: {exc}") from None
        if result.exit_code != 0:
            tail = "\n".join(result.stdout.strip().splitlines()[-20:])
            raise BuildError(f"{what} failed (exit {result.exit_code}):\n{tail}")

    def _install(self, python: str, step: PipStep) -> list[str]:
        if self._uv:
            argv = [self._uv, "pip", "install", "--python", python]
        else:
            argv = [python, "-m", "pip", "install", "--no-input"]
        if step.index_url:
            argv += ["--index-url", step.index_url]
        if step.editable:
            return argv + [item for package in step.packages for item in ("-e", package)]
        return argv + list(step.packages)

    def _snapshot(self, request: EnvRequest, sources: str) -> EnvRequest:
        """The request with each editable folder replaced by its copy under ``sources``."""
        steps = []
        for index, step in enumerate(request.steps):
            if step.editable:
                copies = []
                for number, package in enumerate(step.packages):
                    if not os.path.isdir(package):
                        copies.append(package)
                        continue
                    copy = os.path.join(sources, str(index) if number == 0 else f"{index}-{number}")
                    shutil.copytree(package, copy, symlinks=True)
                    copies.append(copy)
                step = attrs.evolve(step, packages=tuple(copies))
            steps.append(step)
        return attrs.evolve(request, steps=tuple(steps))

    def _create(self, request: EnvRequest, folder: str, on_line: Callable[[str], None]) -> None:
        if self._uv:
            self._check([self._uv, "venv", "--quiet", "--python", request.python, folder], on_line, "uv venv")
        else:
            self._check([request.python, "-m", "venv", folder], on_line, "python -m venv")
        python = self._python(folder)
        for step in request.steps:
            self._check(self._install(python, step), on_line, "installing " + " ".join(step.packages))

    def ensure(self, request: EnvRequest, on_line: Callable[[str], None] | None = None) -> PythonEnv:
        os.makedirs(self._root, exist_ok=True)
        folder = os.path.join(self._root, request.key[:24])
        with open(folder + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(os.path.join(folder, _READY)):
                return PythonEnv(self._python(folder), False)
            sources = folder + ".src"
            for made in (folder, sources):
                shutil.rmtree(made, ignore_errors=True)
            try:
                if self._snapshot_editable:
                    request = self._snapshot(request, sources)
                self._create(request, folder, on_line or _quiet)
            except BaseException:
                for made in (folder, sources):
                    shutil.rmtree(made, ignore_errors=True)
                raise
            with open(os.path.join(folder, _READY), "w", encoding="utf-8") as handle:
                json.dump({"key": request.key, "python": request.python}, handle)
        return PythonEnv(self._python(folder), True)
