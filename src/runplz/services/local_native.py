"""The local backend, native mode: a cached venv from the image's pip steps, no Docker."""

from __future__ import annotations

import os

from ..domain.call import FunctionCall
from ..domain.errors import CommandTimeout, RunTimeout, UsageError
from ..domain.hashing import digest, tree_digest
from ..domain.layout import BOOT_SCRIPT
from ..domain.local_plan import NativeStep, native_plan
from ..ports.clock import Clock
from ..ports.command_runner import CommandRunner
from ..ports.console import Console
from ..ports.python_env import EnvRequest, PipStep, PythonEnvBuilder
from .bundle import RuntimeBundle
from .repo import find_repo_root
from .runs import RunDir, dispatch_for, new_run_id
from .settings import LocalSettings
from .tree import TreeScanner

_PACKAGING = ("pyproject.toml", "setup.py", "setup.cfg")


class LocalNativeBackend:
    def __init__(
        self,
        envs: PythonEnvBuilder,
        runner: CommandRunner,
        bundle: RuntimeBundle,
        trees: TreeScanner,
        console: Console,
        clock: Clock,
        settings: LocalSettings,
    ) -> None:
        self._envs = envs
        self._runner = runner
        self._bundle = bundle
        self._trees = trees
        self._console = console
        self._clock = clock
        self._settings = settings

    def _step(self, step: NativeStep, repo_root: str) -> tuple[PipStep, str]:
        if not step.local:
            return PipStep(step.packages, step.index_url), digest("pip", *step.packages, step.index_url or "")
        folder = os.path.join(repo_root, *step.packages[0].split("/"))
        if not os.path.isdir(folder):
            raise UsageError(f"pip_install_local_dir({step.packages[0]!r}): no such folder in the repo")
        files = self._trees.scan(folder)
        if step.editable:
            files = [f for f in files if f.entry.path in _PACKAGING]
        content = digest("local", step.packages[0], str(step.editable), tree_digest(f.entry for f in files))
        return PipStep((folder,), None, editable=step.editable), content

    def _environment(self, call: FunctionCall, repo_root: str) -> str:
        plan = native_plan(call.spec.image, call.spec.name)
        for warning in plan.warnings:
            self._console.warn(warning)
        steps, parts = [], []
        for step in plan.steps:
            pip_step, part = self._step(step, repo_root)
            steps.append(pip_step)
            parts.append(part)
        key = digest("venv", self._settings.python, self._settings.python_version, *parts)
        started = self._clock.monotonic()
        env = self._envs.ensure(
            EnvRequest(key, self._settings.python, tuple(steps)), on_line=self._console.output
        )
        if env.created:
            self._console.info(
                f"made environment {key[:12]} in {self._clock.monotonic() - started:.1f}s"
            )
        return env.python

    def call(self, call: FunctionCall):
        spec = call.spec
        repo_root = find_repo_root(call.script)
        python = self._environment(call, repo_root)
        bundle = self._bundle.materialize()
        outputs = self._settings.outputs_dir
        os.makedirs(outputs, exist_ok=True)
        run = new_run_id(self._clock)
        env = dict(spec.env)
        env["RUNPLZ_OUT"] = outputs
        with RunDir() as run_dir:
            run_dir.write(dispatch_for(call, repo_root, run))
            self._console.info(f"running {spec.name} natively (run {run})")
            started = self._clock.monotonic()
            try:
                result = self._runner.run(
                    [python, os.path.join(bundle, BOOT_SCRIPT), run_dir.payload],
                    cwd=repo_root,
                    env=env,
                    timeout=spec.timeout,
                    inherit=True,
                )
            except CommandTimeout:
                raise RunTimeout(
                    f"{spec.name} ran past its timeout of {spec.timeout}s and was stopped"
                ) from None
            self._console.info(
                f"{spec.name} finished with exit code {result.exit_code} "
                f"in {self._clock.monotonic() - started:.1f}s"
            )
            return run_dir.settle(result.exit_code, run)
