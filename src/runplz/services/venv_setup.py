"""Native and inline modes of the remote run path: the job in a cached venv
made on the box from the image's pip steps; inline mode first applies the
image's apt and shell steps on the box itself (the box is the image)."""

from __future__ import annotations

import os
import shlex
from typing import Callable

from ..domain.call import FunctionCall
from ..domain.hashing import digest
from ..domain.inline_plan import InlinePlan, inline_plan
from ..domain.layout import BOOT_SCRIPT, PAYLOAD_FILE
from ..domain.local_plan import NativePlan, native_plan
from ..domain.machine import Machine
from ..domain.remote_layout import CTL, OUT, REPO
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.python_env import EnvRequest, PythonEnvBuilder
from ..ports.transport import Transport
from .inline_steps import InlineSteps
from .native_steps import ensure_env, native_steps
from .remote_run import RemoteJob, RunPlace
from .tree import TreeScanner

EnvsFor = Callable[[Transport, str], PythonEnvBuilder]  # (transport, remote boot script)


def import_roots(plan: NativePlan, repo_root: str, run_repo: str) -> list[str]:
    """Where the run's own copy of each editable local package imports from
    (``src/`` layouts and flat ones), so the job never imports another run's code."""
    roots = []
    for step in plan.steps:
        if step.local and step.editable:
            path = step.packages[0]
            base = run_repo if path == "." else f"{run_repo}/{path}"
            src = os.path.join(repo_root, *path.split("/"), "src")
            roots.append(f"{base}/src" if os.path.isdir(src) else base)
    return roots


class NativeSetup:
    docker = False

    def __init__(
        self, transport: Transport, envs_for: EnvsFor, trees: TreeScanner, console: Console, clock: Clock
    ) -> None:
        self._transport = transport
        self._envs_for = envs_for
        self._trees = trees
        self._console = console
        self._clock = clock
        self._plan: NativePlan | None = None

    def checks(self, call: FunctionCall, repo_root: str, anchored: frozenset[str]) -> dict[str, str]:
        self._plan = native_plan(call.spec.image, call.spec.name)
        return {}

    def job(self, call: FunctionCall, place: RunPlace, machine: Machine) -> RemoteJob:
        assert self._plan is not None, "checks() plans the venv first"
        for warning in self._plan.warnings:
            self._console.warn(warning)
        return self.venv_job(self._plan, call, place, machine)

    def venv_job(self, plan: NativePlan, call: FunctionCall, place: RunPlace, machine: Machine) -> RemoteJob:
        """The job in a cached venv made on the box from ``plan``'s pip steps."""
        spec, home, folder = call.spec, machine.home, place.folder
        run_repo = f"{home}/{folder}/{REPO}"
        steps, parts = native_steps(
            plan, place.repo_root, self._trees, lambda path: run_repo + ("" if path == "." else f"/{path}")
        )
        key = digest("remote-venv", machine.python, *parts)
        envs = self._envs_for(self._transport, f"{place.bundle}/{BOOT_SCRIPT}")
        python = ensure_env(envs, EnvRequest(key, "python3", steps), self._console, self._clock, self._transport.name)
        job_env = dict(spec.env)
        job_env["RUNPLZ_OUT"] = f"{home}/{folder}/{OUT}"
        roots = import_roots(plan, place.repo_root, run_repo)
        if roots:
            job_env["PYTHONPATH"] = os.pathsep.join(roots + ([spec.env["PYTHONPATH"]] if spec.env.get("PYTHONPATH") else []))
        argv = (python, f"{home}/{place.bundle}/{BOOT_SCRIPT}", f"{home}/{folder}/{CTL}/{PAYLOAD_FILE}")
        return RemoteJob(folder, argv, run_repo, job_env, place.payload)


class InlineSetup:
    """The box is the image: its apt and shell steps are applied there (once per
    box), then the job runs in a venv from its pip steps, as in native mode."""

    docker = False

    def __init__(self, native: NativeSetup, steps: InlineSteps) -> None:
        self._native = native
        self._steps = steps
        self._plan: InlinePlan | None = None

    def checks(self, call: FunctionCall, repo_root: str, anchored: frozenset[str]) -> dict[str, str]:
        self._plan = inline_plan(call.spec.image, call.spec.name)
        return {"inline": f"test -f {shlex.quote(self._plan.marker)} && echo yes"}

    def job(self, call: FunctionCall, place: RunPlace, machine: Machine) -> RemoteJob:
        assert self._plan is not None, "checks() plans the steps first"
        repo = f"{machine.home}/{place.folder}/{REPO}"
        self._steps.ensure(self._plan, machine.uid == 0, repo, applied=machine.fact("inline") == "yes")
        return self._native.venv_job(self._plan.native, call, place, machine)
