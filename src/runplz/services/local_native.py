"""The local backend, native mode: a cached venv from the image's pip steps, no Docker.

The job runs under the agent's guard in a session of its own, so it outlives
a driver killed with SIGKILL; ``RUNPLZ_RUN_ID`` (the run id) in its
environment, inherited by all it starts, is how `runplz down` finds what is
left of it then, and never another process."""

from __future__ import annotations

import os
import threading

from ..domain.call import FunctionCall
from ..domain.errors import CommandTimeout, RunTimeout
from ..domain.hashing import digest
from ..domain.layout import BOOT_SCRIPT
from ..domain.limits import run_limit
from ..domain.local_plan import native_plan
from ..ports.clock import Clock
from ..ports.command_runner import CommandRunner
from ..ports.console import Console
from ..ports.python_env import EnvRequest, PythonEnvBuilder
from .bundle import RuntimeBundle
from .fan_out import Stops
from .native_steps import ensure_env, native_steps
from .repo import find_repo_root
from ..domain.remote_layout import EXIT_TIMED_OUT
from ..domain.run_record import JOB_MARK
from .run_recorder import Recording, RunRecorder
from .runs import BACKUP_SECONDS, RunDir, dispatch_for, guarded
from .settings import LocalSettings
from .tree import TreeScanner


class LocalNativeBackend:
    """Runs a call natively; several at once for a map (see `stop`)."""

    map_concurrency = os.cpu_count() or 1  # `.map()`'s default K: one input per CPU

    def __init__(
        self,
        envs: PythonEnvBuilder,
        runner: CommandRunner,
        bundle: RuntimeBundle,
        trees: TreeScanner,
        console: Console,
        clock: Clock,
        settings: LocalSettings,
        runs: RunRecorder | None = None,
    ) -> None:
        self._envs = envs
        self._runner = runner
        self._bundle = bundle
        self._trees = trees
        self._console = console
        self._clock = clock
        self._settings = settings
        self._runs = runs or RunRecorder.off(clock)
        self._stops = Stops()
        self._building = threading.Lock()  # a map's inputs make (or find) the venv one at a time

    def _environment(self, call: FunctionCall, repo_root: str) -> tuple[str, str]:
        plan = native_plan(call.spec.image, call.spec.name)
        for warning in plan.warnings:
            self._console.warn(warning)
        steps, parts = native_steps(
            plan, repo_root, self._trees, lambda path: os.path.join(repo_root, *path.split("/"))
        )
        key = digest("venv", self._settings.python, self._settings.python_version, *parts)
        request = EnvRequest(key, self._settings.python, steps)
        return ensure_env(self._envs, request, self._console, self._clock), key

    def call(self, call: FunctionCall):
        outputs = call.outputs or self._settings.outputs_dir
        with self._runs.begin("local", "native", call, outputs, run_id=call.run_id) as record:
            return self._call(call, record, outputs)

    def stop(self, call: FunctionCall) -> None:
        """Stop a map input's run from another thread (`StoppableBackend`): its
        job's process group is interrupted, or it never starts."""
        self._stops.ask(call.run_id)

    def _call(self, call: FunctionCall, record: Recording, outputs: str):
        spec = call.spec
        repo_root = find_repo_root(call.script)
        run = record.id
        self._stops.check(run)
        with record.phase("build"), self._building:
            python, key = self._environment(call, repo_root)
        record.image(f"venv:{key}")
        bundle = self._bundle.materialize()
        os.makedirs(outputs, exist_ok=True)
        env = dict(spec.env)
        env["RUNPLZ_OUT"] = outputs
        env[JOB_MARK] = run  # the mark `runplz down` knows the job's processes by
        limit = run_limit(spec.timeout)
        with RunDir() as run_dir:
            run_dir.write(dispatch_for(call, repo_root, run))
            self._console.info(f"running {call.label} natively (run {run})")
            started = self._clock.monotonic()
            try:
                with record.phase("run"), self._stops.waiting(run):
                    result = self._runner.run(
                        list(guarded(python, os.path.join(bundle, BOOT_SCRIPT), run_dir.payload, limit.seconds if limit else 0)),
                        cwd=repo_root,
                        env=env,
                        timeout=limit.seconds + BACKUP_SECONDS if limit else None,
                        inherit=True,
                    )
                exit_code = result.exit_code
            except CommandTimeout:
                exit_code = EXIT_TIMED_OUT
            if limit and exit_code == EXIT_TIMED_OUT and run_dir.result() is None:
                raise RunTimeout(
                    f"{spec.name} ran past {limit.reason} and was stopped"
                )
            self._console.info(
                f"{call.label} finished with exit code {exit_code} "
                f"in {self._clock.monotonic() - started:.1f}s"
            )
            return run_dir.settle(exit_code, run)
