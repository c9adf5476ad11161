"""`runplz plan local`: one function run on this machine, natively in a venv or
in Docker (the base image and the run layer a run would build, and tag)."""

from __future__ import annotations

import os

from ..domain.dockerfile import render_run_layer
from ..domain.hashing import digest
from ..domain.image import DockerfileBase
from ..domain.limits import run_limit
from ..domain.local_plan import native_plan
from ..domain.naming import run_tag
from ..domain.plan import FunctionPlan, ImagePlan
from ..domain.spec import FunctionSpec
from . import plan_steps as steps
from .bundle import RuntimeBundle
from .native_steps import native_steps
from .plan_context import PlanContext, naming_images
from .tree import TreeScanner


def local_function(
    ctx: PlanContext, spec: FunctionSpec, implicit: bool, bundle: RuntimeBundle, trees: TreeScanner, cache_dir: str
) -> FunctionPlan:
    limit = run_limit(spec.timeout)
    if ctx.mode == "native":
        plan = native_plan(spec.image, spec.name)
        pip, _ = native_steps(plan, ctx.repo_root, trees, lambda p: os.path.join(ctx.repo_root, *p.split("/")))
        image = ImagePlan("native", steps.pip_lines(pip), warnings=plan.warnings)
        body = steps.local_native_steps(ctx.repo_root, cache_dir, bundle.digest(), ctx.outputs, limit)
        return FunctionPlan(spec.name, implicit, spec.timeout, "this machine, natively", image, body)
    app, host = ctx.app.name, ctx.host
    base = naming_images(bundle, trees).base_request(app, spec.image, ctx.repo_root, ctx.anchored)
    layer = render_run_layer(base.tag, host.uid, host.gid)
    assert ctx.selection is not None
    content = digest(spec.name, base.tag, layer, ctx.selection.content_digest(), bundle.digest())
    tag = run_tag(app, content)
    title = "# the base image" + (" (your Dockerfile)" if isinstance(spec.image.base, DockerfileBase) else "")
    text = f"{title}\n{base.dockerfile.rstrip()}\n\n# the run layer\n{layer}"
    image = ImagePlan("dockerfile", text, base_tag=base.tag, run_tag=tag)
    gpus = local_gpus(ctx.app.local_config.gpus, spec.wants_gpu)
    body = steps.local_docker_steps(
        app, spec.name, base.tag, tag, ctx.request.build, ctx.outputs, sorted(spec.env),
        host.uid, host.gid, gpus, limit,
    )
    return FunctionPlan(spec.name, implicit, spec.timeout, "this machine, in Docker", image, body)


def local_gpus(setting: str, wants_gpu: bool) -> str | None:
    """``--gpus`` as the run would pass it, assuming the engine has the NVIDIA
    runtime (a plan does not ask the engine)."""
    if setting == "none" or (setting == "auto" and not wants_gpu):
        return None
    return "all" if setting in ("auto", "all") else f"device={setting}"
