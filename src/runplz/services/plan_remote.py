"""`runplz plan ssh|brev`: one function run on a remote box over ssh, natively,
in Docker, or inline in a Brev container, as the run's steps would be."""

from __future__ import annotations

import socket

from ..domain.hashing import digest
from ..domain.inline_plan import inline_plan
from ..domain.limits import run_limit
from ..domain.local_plan import native_plan
from ..domain.plan import NEW_RUN, BrevPlan, FunctionPlan, ImagePlan
from ..domain.remote_layout import REPO, repo_tree, run_dir
from ..domain.spec import FunctionSpec
from . import plan_steps as steps
from .bundle import RuntimeBundle
from .native_steps import native_steps
from .plan_context import PlanContext, naming_images
from .tree import TreeScanner


def remote_function(
    ctx: PlanContext, spec: FunctionSpec, implicit: bool, brev: BrevPlan | None,
    bundle: RuntimeBundle, trees: TreeScanner,
) -> FunctionPlan:
    """The function on an ssh box, or on Brev when ``brev`` (its box) is given."""
    where = brev.instance if brev is not None else ctx.ssh_target()
    config = ctx.app.brev_config if brev is not None else ctx.app.ssh_config
    limit = run_limit(spec.timeout, config.max_runtime_seconds)
    image, docker_job, marker = remote_image(ctx, spec, bundle, trees)
    basis = repo_tree(digest(socket.gethostname(), ctx.repo_root))
    body = steps.remote_steps(
        where, ctx.mode, bundle.digest(), basis, ctx.files(), ctx.outputs, config.ssh_ready_wait_seconds,
        limit, docker_job, image.base_tag, marker,
    )
    if brev is not None:
        body = steps.brev_before(brev) + body + steps.brev_after(brev)
        target = (f"a new ephemeral Brev box {brev.instance}" if brev.ephemeral else f"Brev box {brev.instance}")
    else:
        target = f"ssh {where}"
    return FunctionPlan(spec.name, implicit, spec.timeout, target, image, body, brev=brev)


def remote_image(
    ctx: PlanContext, spec: FunctionSpec, bundle: RuntimeBundle, trees: TreeScanner
) -> tuple[ImagePlan, str | None, str | None]:
    """The image (or venv) the box would get, the docker job's text and the
    inline marker, each when the mode has one."""
    run_repo = f"~/{run_dir(NEW_RUN)}/{REPO}"

    def place(path: str) -> str:
        return run_repo + ("" if path == "." else f"/{path}")

    if ctx.mode == "docker":
        base = naming_images(bundle, trees).base_request(ctx.app.name, spec.image, ctx.repo_root, ctx.anchored)
        job = steps.remote_docker_job(ctx.app.name, spec.name, base.tag, sorted(spec.env), spec.wants_gpu)
        return ImagePlan("dockerfile", base.dockerfile, base_tag=base.tag), job, None
    if ctx.mode == "inline":
        plan = inline_plan(spec.image, spec.name)
        pip, _ = native_steps(plan.native, ctx.repo_root, trees, place)
        return ImagePlan("inline", steps.inline_text(plan, pip)), None, plan.marker
    plan = native_plan(spec.image, spec.name)
    pip, _ = native_steps(plan, ctx.repo_root, trees, place)
    return ImagePlan("native", steps.pip_lines(pip), warnings=plan.warnings), None, None
