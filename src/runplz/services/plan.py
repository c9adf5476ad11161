"""`runplz plan`: what `runplz <backend> SCRIPT ARGS...` would do, with no side effects.

Reads only: the script (imported, as a run imports it), the repo (walked with
a `TreeScanner` that has no cache folder, so nothing is written), the runtime
bundle's files (for its digest), `brev search` (the `Catalog`) and, for
``--instance NAME``, `brev ls` (`Instances.list`). It never creates, starts,
builds, uploads, connects or runs anything, and writes no file.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Mapping, Sequence

import attrs

from ..domain.bind import BindRequest
from ..domain.brev_instances import find
from ..domain.brev_lifecycle import Target, arrival, check_finish, check_image, ephemeral_name
from ..domain.config import BrevConfig
from ..domain.dockerfile import render_run_layer
from ..domain.entry_args import HelpRequested, params_of, parse
from ..domain.errors import ScriptError
from ..domain.hashing import digest
from ..domain.host import parse_target
from ..domain.image import DockerfileBase
from ..domain.inline_plan import inline_plan
from ..domain.limits import run_limit
from ..domain.local_plan import native_plan
from ..domain.modal_resources import modal_resources
from ..domain.naming import run_tag
from ..domain.offers import Offer
from ..domain.picker import NoMatch, pick, requirements_of
from ..domain.plan import (
    NEW_RUN, BrevPlan, FunctionPlan, ImagePlan, ModalPlan, OfferLine, Plan, SizedPath, Upload, worst_case_cost,
)
from ..domain.plan_modal import modal_chain
from ..domain.remote_layout import REPO, repo_tree, run_dir
from ..domain.spec import FunctionSpec
from ..ports.catalog import Catalog, SearchQuery
from ..ports.instances import Instances
from ..loader import load_app
from . import plan_steps as steps
from .brev_shape import stops
from .bundle import RuntimeBundle
from .images import ImageBuilder
from .modal_backend import python_to_add
from .native_steps import native_steps
from .plan_slurm import slurm_function
from .repo import anchored_outputs, check_outputs_dir, find_repo_root
from .tree import Selection, TreeScanner

LARGEST = 10
_RUN_ID_SHAPE = "00000000-000000-000000"  # as long as a real run id (naming.run_id)


@attrs.frozen
class PlanHost:
    """Facts of this machine a run would use: the ids files are made as, and the
    Python version Modal's ``add_python="auto"`` follows."""

    uid: int
    gid: int
    python_version: str


class _Refuses:
    """Stands in for the container engine and console of an `ImageBuilder` used
    only to name images: any call is a bug (plan runs no docker command)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"runplz plan must not call {name}()")


def _largest(selection: Selection) -> tuple[SizedPath, ...]:
    ranked = sorted(selection.files, key=lambda f: (-f.entry.size, f.entry.path))[:LARGEST]
    return tuple(SizedPath(f.entry.path, f.entry.size) for f in ranked)


def ephemeral_display(app: str, function: str) -> str:
    """The ephemeral box's name with the run id left as ``<new>``."""
    return ephemeral_name(app, function, _RUN_ID_SHAPE)[: -len(_RUN_ID_SHAPE)] + NEW_RUN


class PlanService:
    def __init__(
        self,
        catalog: Catalog,
        instances: Instances,
        bundle: RuntimeBundle,
        trees: TreeScanner | None = None,
        cache_dir: str = "<runplz cache>",
    ) -> None:
        self._catalog = catalog
        self._instances = instances
        self._bundle = bundle
        self._trees = trees or TreeScanner()  # no cache folder: a plan writes nothing
        self._cache = cache_dir
        self._searches: dict[SearchQuery, tuple[Offer, ...]] = {}
        self._listing: tuple | None = None

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
        ctx = _Context(app, request, host, repo_root, outputs, anchored, self._mode(app, request))
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

    def _target(self, ctx: "_Context") -> str:
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

    def _upload(self, ctx: "_Context", selection: Selection | None) -> Upload | None:
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

    def _function(self, ctx: "_Context", spec: FunctionSpec, implicit: bool) -> FunctionPlan:
        backend = ctx.request.backend
        if backend == "modal":
            return self._modal(ctx, spec, implicit)
        if backend == "local":
            return self._local(ctx, spec, implicit)
        if backend == "slurm":
            files = len(ctx.selection.files) if ctx.selection is not None else 0
            return slurm_function(ctx.app, spec, implicit, ctx.login(), ctx.repo_root, self._trees,
                                  self._bundle.digest(), files, ctx.outputs)
        brev = self._brev(ctx, spec) if backend == "brev" else None
        where = brev.instance if brev is not None else ctx.ssh_target()
        config = ctx.app.brev_config if brev is not None else ctx.app.ssh_config
        limit = run_limit(spec.timeout, config.max_runtime_seconds)
        image, docker_job, marker = self._remote_image(ctx, spec)
        basis = repo_tree(digest(socket.gethostname(), ctx.repo_root))
        files = len(ctx.selection.files) if ctx.selection is not None else 0
        body = steps.remote_steps(
            where, ctx.mode, self._bundle.digest(), basis, files, ctx.outputs, config.ssh_ready_wait_seconds,
            limit, docker_job, image.base_tag, marker,
        )
        if brev is not None:
            body = steps.brev_before(brev) + body + steps.brev_after(brev)
            target = (f"a new ephemeral Brev box {brev.instance}" if brev.ephemeral else f"Brev box {brev.instance}")
        else:
            target = f"ssh {where}"
        return FunctionPlan(spec.name, implicit, spec.timeout, target, image, body, brev=brev)

    def _remote_image(self, ctx: "_Context", spec: FunctionSpec) -> tuple[ImagePlan, str | None, str | None]:
        run_repo = f"~/{run_dir(NEW_RUN)}/{REPO}"

        def place(path: str) -> str:
            return run_repo + ("" if path == "." else f"/{path}")

        if ctx.mode == "docker":
            base = self._images().base_request(ctx.app.name, spec.image, ctx.repo_root, ctx.anchored)
            job = steps.remote_docker_job(ctx.app.name, spec.name, base.tag, sorted(spec.env), spec.wants_gpu)
            return ImagePlan("dockerfile", base.dockerfile, base_tag=base.tag), job, None
        if ctx.mode == "inline":
            plan = inline_plan(spec.image, spec.name)
            pip, _ = native_steps(plan.native, ctx.repo_root, self._trees, place)
            return ImagePlan("inline", steps.inline_text(plan, pip)), None, plan.marker
        plan = native_plan(spec.image, spec.name)
        pip, _ = native_steps(plan, ctx.repo_root, self._trees, place)
        return ImagePlan("native", steps.pip_lines(pip), warnings=plan.warnings), None, None

    def _images(self) -> ImageBuilder:
        return ImageBuilder(engine=_Refuses(), console=_Refuses(), bundle=self._bundle, trees=self._trees)

    def _local(self, ctx: "_Context", spec: FunctionSpec, implicit: bool) -> FunctionPlan:
        limit = run_limit(spec.timeout)
        if ctx.mode == "native":
            plan = native_plan(spec.image, spec.name)
            pip, _ = native_steps(plan, ctx.repo_root, self._trees, lambda p: os.path.join(ctx.repo_root, *p.split("/")))
            image = ImagePlan("native", steps.pip_lines(pip), warnings=plan.warnings)
            body = steps.local_native_steps(ctx.repo_root, self._cache, self._bundle.digest(), ctx.outputs, limit)
            return FunctionPlan(spec.name, implicit, spec.timeout, "this machine, natively", image, body)
        app, host = ctx.app.name, ctx.host
        base = self._images().base_request(app, spec.image, ctx.repo_root, ctx.anchored)
        layer = render_run_layer(base.tag, host.uid, host.gid)
        assert ctx.selection is not None
        content = digest(spec.name, base.tag, layer, ctx.selection.content_digest(), self._bundle.digest())
        tag = run_tag(app, content)
        title = "# the base image" + (" (your Dockerfile)" if isinstance(spec.image.base, DockerfileBase) else "")
        text = f"{title}\n{base.dockerfile.rstrip()}\n\n# the run layer\n{layer}"
        image = ImagePlan("dockerfile", text, base_tag=base.tag, run_tag=tag)
        gpus = self._local_gpus(ctx.app.local_config.gpus, spec.wants_gpu)
        body = steps.local_docker_steps(
            app, spec.name, base.tag, tag, ctx.request.build, ctx.outputs, sorted(spec.env),
            host.uid, host.gid, gpus, limit,
        )
        return FunctionPlan(spec.name, implicit, spec.timeout, "this machine, in Docker", image, body)

    @staticmethod
    def _local_gpus(setting: str, wants_gpu: bool) -> str | None:
        """``--gpus`` as the run would pass it, assuming the engine has the NVIDIA
        runtime (a plan does not ask the engine)."""
        if setting == "none" or (setting == "auto" and not wants_gpu):
            return None
        return "all" if setting in ("auto", "all") else f"device={setting}"

    def _modal(self, ctx: "_Context", spec: FunctionSpec, implicit: bool) -> FunctionPlan:
        resources = modal_resources(spec)  # the run's refusals, before anything
        add_python = python_to_add(ctx.app.modal_config, spec.image, ctx.host.python_version)
        modal = ModalPlan(resources.gpu, resources.cpu, resources.memory_mib, resources.timeout, add_python)
        image = ImagePlan("modal", modal_chain(spec.image, ctx.repo_root, add_python))
        files = len(ctx.selection.files) if ctx.selection is not None else 0
        body = steps.modal_steps(ctx.app.name, spec.name, modal, files, ctx.outputs)
        return FunctionPlan(spec.name, implicit, resources.timeout, "Modal", image, body, modal=modal)

    # ---------------------------------------------------------------- brev

    def _brev(self, ctx: "_Context", spec: FunctionSpec) -> BrevPlan:
        config: BrevConfig = ctx.app.brev_config
        check_image(config, spec.image, spec.name)
        if config.mode == "container":
            inline_plan(spec.image, spec.name)  # refuses what container mode cannot run
        name = ctx.request.instance
        found = None
        if name is None:
            target = Target(ephemeral_display(ctx.app.name, spec.name), ephemeral=True)
        else:
            target = Target(name, ephemeral=False)
            found = find(self._list(), name)
        how = arrival(target, found, config)  # TypoGuard, BoxUnusable: as a run refuses
        req = requirements_of(spec)
        limit = run_limit(spec.timeout, config.max_runtime_seconds)
        types: tuple[str, ...] = ()
        if how != "create":
            kind = found.instance_type if found is not None else None
            offer = self._offer(kind, spec.wants_gpu) if kind else None
            if stops(target, config):
                check_finish(target, config, offer.stoppable if offer else None, kind or "(unknown)")
            source, offers = "named", (offer,) if offer else ()
        elif config.instance_type is not None:
            offer = self._offer(config.instance_type, req.gpu_count > 0)
            if stops(target, config):
                check_finish(target, config, offer.stoppable if offer else None, config.instance_type)
            source, offers, types = "pinned", (offer,) if offer else (), (config.instance_type,)
        else:
            found_offers = self._search(SearchQuery.for_requirements(req))
            chosen = pick(found_offers, req)
            if stops(target, config) and not all(o.stoppable for o in chosen.offers):
                try:
                    chosen = pick([o for o in found_offers if o.stoppable], req)
                except NoMatch:
                    check_finish(target, config, False, chosen.choice.type)  # raises NotStoppable
            source, offers, types = "picked", chosen.offers, chosen.types
        price = max((o.price_per_hour for o in offers), default=None)
        return BrevPlan(
            source=source,
            how=how,
            instance=target.name,
            ephemeral=target.ephemeral,
            mode=config.mode,
            on_finish="delete" if target.ephemeral else config.on_finish,
            types=types,
            offers=tuple(OfferLine.of(o) for o in offers),
            instance_type=found.instance_type if found is not None else None,
            status=found.describe() if found is not None else None,
            min_disk_gb=req.min_disk_gb if how == "create" else None,
            limit_seconds=limit.seconds if limit else None,
            limit_reason=limit.reason if limit else None,
            price_per_hour=price,
            worst_case_usd=worst_case_cost(price, limit.seconds if limit else None),
        )

    def _search(self, query: SearchQuery) -> tuple[Offer, ...]:
        if query not in self._searches:
            self._searches[query] = self._catalog.search(query)
        return self._searches[query]

    def _offer(self, instance_type: str, gpu_first: bool) -> Offer | None:
        """The catalog's offer for one type (GPU types first when ``gpu_first``)."""
        for gpu in (gpu_first, not gpu_first):
            for offer in self._search(SearchQuery(gpu=gpu)):
                if offer.type == instance_type:
                    return offer
        return None

    def _list(self) -> tuple:
        if self._listing is None:
            self._listing = self._instances.list()
        return self._listing


@attrs.define
class _Context:
    app: Any
    request: BindRequest
    host: PlanHost
    repo_root: str
    outputs: str
    anchored: frozenset[str]
    mode: str
    selection: Selection | None = None

    def ssh_target(self) -> str:
        return str(parse_target(self.request.host, self.app.ssh_config))

    def login(self) -> str:
        return str(parse_target(self.request.host)) if self.request.host else "this machine"

    def where_text(self) -> str:
        if self.request.backend == "ssh":
            return self.ssh_target()
        return self.request.instance or f"runplz-<app>-<function>-{NEW_RUN}"
