"""`runplz plan`: what `runplz <backend> SCRIPT ARGS...` would do, with no side effects.

Reads only: the script (imported, as a run imports it), the repo (walked with
a `TreeScanner` that has no cache folder, so nothing is written), the runtime
bundle's files (for its digest), `brev search` (the `Catalog`) and, for
``--instance NAME``, `brev ls` (`Instances.list`). It never creates, starts,
builds, uploads, connects or runs anything, and writes no file.

This module is the entry point and the whole-plan parts (mode, target, upload);
each backend's functions are planned in `plan_local`, `plan_remote` (ssh and
Brev), `plan_brev` (the Brev box and its price), `plan_modal` and `plan_slurm`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from ..domain.bind import BindRequest
from ..domain.entry_args import HelpRequested, params_of, parse
from ..domain.errors import ScriptError
from ..domain.plan import NEW_RUN, FunctionPlan, Plan, SizedPath, Upload
from ..domain.remote_layout import REPO, run_dir
from ..domain.spec import FunctionSpec
from ..ports.catalog import Catalog
from ..ports.instances import Instances
from ..loader import load_app
from .bundle import RuntimeBundle
from .plan_brev import BrevPlanner, ephemeral_display
from .plan_context import PlanContext, PlanHost
from .plan_local import local_function
from .plan_modal import modal_function
from .plan_remote import remote_function
from .plan_slurm import slurm_function
from .repo import anchored_outputs, check_outputs_dir, find_repo_root
from .tree import Selection, TreeScanner

__all__ = ["LARGEST", "PlanHost", "PlanService", "ephemeral_display"]

LARGEST = 10


def _largest(selection: Selection) -> tuple[SizedPath, ...]:
    ranked = sorted(selection.files, key=lambda f: (-f.entry.size, f.entry.path))[:LARGEST]
    return tuple(SizedPath(f.entry.path, f.entry.size) for f in ranked)


class PlanService:
    def __init__(
        self,
        catalog: Catalog,
        instances: Instances,
        bundle: RuntimeBundle,
        trees: TreeScanner | None = None,
        cache_dir: str = "<runplz cache>",
    ) -> None:
        self._brev = BrevPlanner(catalog, instances)
        self._bundle = bundle
        self._trees = trees or TreeScanner()  # no cache folder: a plan writes nothing
        self._cache = cache_dir

    # ---------------------------------------------------------------- the whole plan

    def plan(
        self,
        script: str,
        argv: Sequence[str],
        request: BindRequest,
        host: PlanHost,
        usage: str = "",
        runner_flags: Mapping[str, bool] | None = None,
    ) -> Plan | HelpRequested:
        """The plan of ``runplz <request.backend> script argv``; the entrypoint's
        arguments are checked as a run checks them. Refusals a run would make
        before anything is billed (bad config, no matching Brev type, a missing
        named box) are raised the same way."""
        _, app = load_app(script)
        check_outputs_dir(request.outputs_dir, app.script)
        functions = list(app.registered_functions.values())
        entry = app.entrypoint
        implicit = None
        if entry is None:
            if len(functions) != 1:
                raise ScriptError(
                    f"{os.path.relpath(script)} has no @app.local_entrypoint() and "
                    f"{len(functions)} functions; add an entrypoint that calls the one to run"
                )
            implicit = functions[0].name
            parsed = parse(params_of(functions[0].__wrapped__), argv, implicit, usage, runner_flags)
        else:
            parsed = parse(params_of(entry), argv, entry.__name__, usage, runner_flags)
        if isinstance(parsed, HelpRequested):
            return parsed
        repo_root = find_repo_root(app.script)
        outputs = os.path.abspath(os.path.expanduser(request.outputs_dir))
        anchored = anchored_outputs(outputs, repo_root)
        ctx = PlanContext(app, request, host, repo_root, outputs, anchored, self._mode(app, request))
        selection = self._trees.select(repo_root, anchored) if ctx.mode != "native" or request.backend != "local" else None
        ctx.selection = selection
        planned = tuple(self._function(ctx, fn.spec, fn.name == implicit) for fn in functions)
        return Plan(
            backend=request.backend,
            mode=ctx.mode,
            script=os.path.relpath(app.script, repo_root).replace(os.sep, "/"),
            app=app.name,
            entrypoint=entry.__name__ if entry is not None else None,
            args=tuple(argv),
            outputs_dir=outputs,
            target=self._target(ctx),
            upload=self._upload(ctx, selection),
            functions=planned,
        )

    def _mode(self, app: Any, request: BindRequest) -> str:
        if request.backend == "modal":
            return "modal"
        if request.backend == "ssh":
            return "docker" if app.ssh_config.use_docker else "native"
        if request.backend == "slurm":
            return "native" if app.slurm_config.container == "none" else "registry"
        if request.backend == "brev":
            config = app.brev_config
            return "inline" if config.mode == "container" else ("docker" if config.use_docker else "native")
        native = (not app.local_config.use_docker) if request.native is None else request.native
        return "native" if native else "docker"

    def _target(self, ctx: PlanContext) -> str:
        backend = ctx.request.backend
        if backend == "local":
            return "this machine (local Docker engine)" if ctx.mode == "docker" else "this machine (a venv, no Docker)"
        if backend == "ssh":
            return f"ssh {ctx.ssh_target()} (a box you own; runplz never provisions or stops it)"
        if backend == "modal":
            return "Modal (an ephemeral app per call)"
        if backend == "slurm":
            return f"a Slurm batch job per call, submitted on {ctx.login()} (a .map(): ONE job array)"
        if ctx.request.instance:
            return f"the Brev box {ctx.request.instance} (--instance)"
        return f"a new ephemeral Brev box per call, named runplz-<app>-<function>-{NEW_RUN}, deleted when the call ends"

    def _upload(self, ctx: PlanContext, selection: Selection | None) -> Upload | None:
        if selection is None:
            return None
        backend = ctx.request.backend
        if backend == "modal":
            kind, destination = "modal", "/runplz/repo"
        elif backend == "local":
            kind, destination = "build-context", "/runplz/repo"
        elif backend == "slurm":
            kind, destination = "rsync", f"{ctx.login()}:<home>/.runplz/slurm-runs/{NEW_RUN}/{REPO}"
        else:
            kind, destination = "rsync", f"{ctx.where_text()}:~/{run_dir(NEW_RUN)}/{REPO}"
        return Upload(
            kind=kind,
            root=ctx.repo_root,
            destination=destination,
            files=len(selection.files),
            bytes=selection.size(),
            largest=_largest(selection),
            excluded=tuple(sorted(ctx.anchored)),
            links_dropped=tuple(path for path, _ in selection.dropped),
        )

    # ---------------------------------------------------------------- one function

    def _function(self, ctx: PlanContext, spec: FunctionSpec, implicit: bool) -> FunctionPlan:
        backend = ctx.request.backend
        if backend == "modal":
            return modal_function(ctx, spec, implicit)
        if backend == "local":
            return local_function(ctx, spec, implicit, self._bundle, self._trees, self._cache)
        if backend == "slurm":
            return slurm_function(ctx.app, spec, implicit, ctx.login(), ctx.repo_root, self._trees,
                                  self._bundle.digest(), ctx.files(), ctx.outputs)
        brev = self._brev.plan(ctx, spec) if backend == "brev" else None
        return remote_function(ctx, spec, implicit, brev, self._bundle, self._trees)
