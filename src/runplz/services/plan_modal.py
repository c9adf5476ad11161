"""`runplz plan modal`: one function's Modal resources, image chain and steps."""

from __future__ import annotations

from ..domain.modal_resources import modal_resources
from ..domain.plan import FunctionPlan, ImagePlan, ModalPlan
from ..domain.plan_modal import modal_chain
from ..domain.spec import FunctionSpec
from . import plan_steps as steps
from .modal_backend import python_to_add
from .plan_context import PlanContext


def modal_function(ctx: PlanContext, spec: FunctionSpec, implicit: bool) -> FunctionPlan:
    resources = modal_resources(spec)  # the run's refusals, before anything
    add_python = python_to_add(ctx.app.modal_config, spec.image, ctx.host.python_version)
    modal = ModalPlan(resources.gpu, resources.cpu, resources.memory_mib, resources.timeout, add_python)
    image = ImagePlan("modal", modal_chain(spec.image, ctx.repo_root, add_python))
    body = steps.modal_steps(ctx.app.name, spec.name, modal, ctx.files(), ctx.outputs)
    return FunctionPlan(spec.name, implicit, resources.timeout, "Modal", image, body, modal=modal)
