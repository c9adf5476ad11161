"""A `Plan` as text for people and as JSON for machines (schema: docs/plan.md)."""

from __future__ import annotations

import json
from typing import Any

import attrs

from .plan import BrevPlan, FunctionPlan, ModalPlan, Plan, SlurmPlan, Upload


def size_text(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def money(usd: float) -> str:
    return f"${usd:,.2f}"


def to_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON values; ``schema`` comes first."""
    data = attrs.asdict(plan)
    return {"schema": data.pop("schema"), **data}


def dumps(plan: Plan) -> str:
    return json.dumps(to_json(plan), indent=2, ensure_ascii=False) + "\n"


def _indent(text: str, by: str) -> list[str]:
    return [by + line if line else line for line in text.rstrip("\n").splitlines()]


def _upload(upload: Upload | None, backend: str, mode: str) -> list[str]:
    if upload is None:
        what = "nothing travels: the job runs in the repo, in place"
        return [f"upload: {what}"]
    verb = {"rsync": "rsync to", "modal": "mounted into the Modal container at", "build-context": "build context of the run image, at"}
    lines = [
        f"upload: {size_text(upload.bytes)} in {upload.files} files from {upload.root}, "
        f"{verb.get(upload.kind, upload.kind)} {upload.destination}"
    ]
    if upload.excluded:
        lines.append("  left out (outputs folder): " + ", ".join(upload.excluded))
    for path in upload.links_dropped:
        lines.append(f"  left out (link): {path}")
    if upload.largest:
        lines.append("  largest files:")
        width = max(len(size_text(item.bytes)) for item in upload.largest)
        lines += [f"    {size_text(item.bytes):>{width}}  {item.path}" for item in upload.largest]
    return lines


def _offer(label: str, offer, marker: str = "") -> str:
    boot = f"boot ~{offer.boot_seconds}s" if offer.boot_seconds else "boot time not listed"
    return (
        f"    {label:<11} {offer.type} ({offer.provider}): GPU {offer.gpu}, {offer.vcpus} vCPUs, "
        f"{offer.ram_gb:g} GB RAM, ${offer.price_per_hour:g}/h, {boot}{marker}"
    )


def _cost(brev: BrevPlan) -> str:
    if brev.price_per_hour is None:
        return "  worst-case cost: unknown (the catalog does not list this type's price)"
    if brev.limit_seconds is None:
        return (
            f"  worst-case cost: unbounded (no timeout): ${brev.price_per_hour:g} per hour the box runs"
        )
    assert brev.worst_case_usd is not None
    dearest = " (the dearest type create may get)" if len(brev.offers) > 1 else ""
    return (
        f"  worst-case cost: {money(brev.worst_case_usd)} = ${brev.price_per_hour:g}/h{dearest} x "
        f"{brev.limit_seconds:g}s ({brev.limit_reason}) / 3600, plus boot and setup time"
    )


def _brev(brev: BrevPlan) -> list[str]:
    if brev.source == "named":
        kind = brev.instance_type or "type not listed"
        lines = [f"  Brev box: --instance {brev.instance} ({kind}, {brev.status}); runplz will {brev.how} it"]
        lines += [_offer("its type", offer) for offer in brev.offers]
    elif brev.source == "pinned":
        lines = [f"  Brev type: pinned by BrevConfig(instance_type={brev.types[0]!r}); no fallbacks"]
        lines += [_offer("pinned", offer) for offer in brev.offers]
        if not brev.offers:
            lines.append("    (brev search does not list this type)")
    else:
        lines = ["  Brev type (picked from `brev search`):"]
        labels = ["chosen"] + [f"fallback {n}" for n in range(1, len(brev.offers))]
        lines += [_offer(label, offer) for label, offer in zip(labels, brev.offers)]
    if brev.types:
        disk = f", disk >= {brev.min_disk_gb:g} GB" if brev.min_disk_gb else ""
        lines.append(f"  create: --type {','.join(brev.types)} --mode {brev.mode}{disk}")
    lines.append(_cost(brev))
    lines.append(f"  afterwards: {_finish(brev)}")
    return lines


def _finish(brev: BrevPlan) -> str:
    if brev.ephemeral:
        return f"brev delete {brev.instance} (ephemeral: deleted when the call ends, however it ends)"
    return {
        "stop": f"brev stop {brev.instance} when the App is done (on_finish='stop')",
        "delete": f"brev delete {brev.instance} when the App is done (on_finish='delete')",
        "leave": f"{brev.instance} is left running (on_finish='leave'): it bills until you stop it",
    }[brev.on_finish]


def _modal(modal: ModalPlan) -> list[str]:
    memory = f"{modal.memory_mib} MiB" if modal.memory_mib else "Modal's default"
    cpu = f"{modal.cpu:g}" if modal.cpu else "Modal's default"
    return [f"  Modal resources: gpu={modal.gpu or 'none'}, cpu={cpu}, memory={memory}, timeout={modal.timeout}s"]


def _slurm(slurm: SlurmPlan) -> list[str]:
    limit = f"{slurm.limit_seconds:g}s ({slurm.limit_reason})" if slurm.limit_seconds else "none (--time: partition default)"
    lines = [
        f"  Slurm: login node {slurm.login}; runs and venvs under {slurm.workdir}/.runplz; "
        f"container: {slurm.container}; time limit: {limit}",
        "  sbatch directives:",
    ]
    lines += [f"    {line}" for line in slurm.directives]
    lines.append(f"  .map() of N inputs: ONE job array, {slurm.array} (K: concurrency=, default {slurm.map_concurrency})")
    lines.append("  batch script (sbatch --parsable, on stdin):")
    lines += _indent(slurm.script, "    | ")
    return lines


_IMAGE_TITLE = {
    "dockerfile": "image (Dockerfile)",
    "inline": "image (applied on the box itself, then a venv)",
    "native": "image (a venv from the pip steps)",
    "modal": "image (modal.Image chain)",
    "registry": "image (a registry image, run as it is)",
}


def _function(fn: FunctionPlan) -> list[str]:
    mark = "  [the implicit entrypoint runs this one]" if fn.implicit else ""
    timeout = f"timeout {fn.timeout}s" if fn.timeout else "no timeout"
    lines = ["", f"function {fn.name} ({timeout}){mark}", f"  target: {fn.target}"]
    if fn.brev is not None:
        lines += _brev(fn.brev)
    if fn.modal is not None:
        lines += _modal(fn.modal)
    if fn.slurm is not None:
        lines += _slurm(fn.slurm)
    image = fn.image
    title = _IMAGE_TITLE.get(image.kind, image.kind)
    tags = ", ".join(t for t in (image.base_tag, image.run_tag) if t)
    lines.append(f"  {title}" + (f": {tags}" if tags else "") + ":")
    lines += _indent(image.text or "(no steps)\n", "    | ")
    lines += [f"  warning: {warning}" for warning in image.warnings]
    lines.append("  what the run does:")
    width = max((len(step.phase) for step in fn.steps), default=0)
    for step in fn.steps:
        when = f"   [{step.when}]" if step.when else ""
        lines.append(f"    {step.phase:<{width}}  {step.command}{when}")
    return lines


def render_text(plan: Plan) -> str:
    mode = {"docker": "Docker", "native": "native venv", "inline": "container mode", "modal": "Modal",
            "registry": "registry image"}[plan.mode]
    args = " ".join(plan.args)
    lines = [
        f"runplz plan: {plan.backend} ({mode}) {plan.script}{' ' + args if args else ''}  (nothing was run)",
        f"app: {plan.app}; run id: {plan.run_id}",
        f"target: {plan.target}",
        f"outputs: {plan.outputs_dir}",
    ]
    lines += _upload(plan.upload, plan.backend, plan.mode)
    if plan.entrypoint:
        lines.append(f"entrypoint: {plan.entrypoint} (it may call any function below)")
    else:
        lines.append("entrypoint: none; runplz calls the one function itself")
    for fn in plan.functions:
        lines += _function(fn)
    return "\n".join(lines) + "\n"
