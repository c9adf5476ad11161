"""What `runplz plan <backend> ...` reports: a pure record of what a run would do.

Built by `services.plan.PlanService` without a single write or side effect;
rendered as text (`plan_render.render_text`) or JSON (`plan_render.to_json`,
schema in docs/plan.md). The run id of a planned run is always ``<new>``.
"""

from __future__ import annotations

import attrs

from .offers import Offer

SCHEMA = "runplz.plan/1"
NEW_RUN = "<new>"


def worst_case_cost(price_per_hour: float | None, limit_seconds: float | None) -> float | None:
    """The most a box can cost for one run: price x the run's limit (seconds) / 3600.

    None when either is unknown (no limit: the cost is unbounded)."""
    if price_per_hour is None or limit_seconds is None:
        return None
    return price_per_hour * float(limit_seconds) / 3600.0


@attrs.frozen
class OfferLine:
    """One Brev instance type as the plan shows it."""

    type: str
    provider: str
    gpu: str  # "1 x A10G", or "none" for a CPU-only type
    vcpus: int
    ram_gb: float
    price_per_hour: float
    boot_seconds: int | None  # None: the catalog does not say
    stoppable: bool

    @classmethod
    def of(cls, offer: Offer) -> "OfferLine":
        gpu = f"{offer.gpu_count} x {offer.gpu_name}" if offer.gpu_count else "none"
        return cls(
            offer.type, offer.provider, gpu, offer.vcpus, offer.ram_gb, offer.price_per_hour,
            offer.boot_time_seconds, offer.stoppable,
        )


@attrs.frozen
class BrevPlan:
    """How a call reaches its Brev box, and what it may cost.

    source: "picked" (the picker's choice, then its fallbacks), "pinned"
    (``BrevConfig.instance_type``) or "named" (``--instance NAME``, an existing box).
    how: "create", "attach", "start" or "wait" (see domain/brev_lifecycle.arrival).
    """

    source: str
    how: str
    instance: str
    ephemeral: bool
    mode: str  # "container" or "vm"
    on_finish: str  # "delete", "stop" or "leave"
    types: tuple[str, ...]  # what `brev create --type` would ask for, in order (empty: no create)
    offers: tuple[OfferLine, ...]  # the choice first, then the fallbacks (as the catalog lists them)
    instance_type: str | None = None  # a named box's type, as `brev ls` lists it
    status: str | None = None  # a named box's status, as `brev ls` lists it
    min_disk_gb: float | None = None
    limit_seconds: float | None = None
    limit_reason: str | None = None
    price_per_hour: float | None = None  # of the choice (or the named box's type), when known
    worst_case_usd: float | None = None  # None: unbounded (no limit) or price unknown


@attrs.frozen
class ModalPlan:
    gpu: str | None
    cpu: float | None
    memory_mib: int | None
    timeout: int
    add_python: str | None


@attrs.frozen
class SlurmPlan:
    """How a call becomes a Slurm batch job (services/slurm_jobs.py renders the same script).

    login: the login node (``--host``) or "this machine"; workdir: where the run
    folders and venvs go on the shared file system (``<home>``: the login's
    $HOME); container: "none", "apptainer" or "pyxis"; directives: the
    ``#SBATCH`` lines; script: the whole batch script; array: the directive a
    ``.map()`` of N inputs adds (ONE job array), K its default concurrency."""

    login: str
    workdir: str
    container: str
    directives: tuple[str, ...]
    script: str
    array: str
    map_concurrency: int
    limit_seconds: float | None = None
    limit_reason: str | None = None


@attrs.frozen
class ImagePlan:
    """The rendered image. kind: "dockerfile" (base, then the run layer where there
    is one), "inline" (steps applied on the box, then the venv's pip steps),
    "native" (a venv's pip steps), "modal" (the modal.Image chain as text) or
    "registry" (a registry image run as it is: Slurm with apptainer or pyxis)."""

    kind: str
    text: str
    base_tag: str | None = None
    run_tag: str | None = None
    warnings: tuple[str, ...] = ()


@attrs.frozen
class Step:
    """One thing the run would do: phase, the command (shell-like text), and the
    condition under which it happens (None: always)."""

    phase: str
    command: str
    when: str | None = None


@attrs.frozen
class SizedPath:
    path: str  # '/'-separated, relative to the repo root
    bytes: int


@attrs.frozen
class Upload:
    """What travels from the repo, after the excludes. kind: "rsync" (ssh, brev),
    "modal" (mounted into the Modal container) or "build-context" (local Docker)."""

    kind: str
    root: str
    destination: str
    files: int
    bytes: int
    largest: tuple[SizedPath, ...]  # the ten largest files, biggest first
    excluded: tuple[str, ...] = ()  # folders left out by name (the outputs folder)
    links_dropped: tuple[str, ...] = ()


@attrs.frozen
class FunctionPlan:
    name: str
    implicit: bool  # the function `runplz <backend> SCRIPT` runs when there is no entrypoint
    timeout: int | None
    target: str
    image: ImagePlan
    steps: tuple[Step, ...]
    brev: BrevPlan | None = None
    modal: ModalPlan | None = None
    slurm: SlurmPlan | None = None


@attrs.frozen
class Plan:
    backend: str  # "local", "ssh", "brev", "modal" or "slurm"
    mode: str  # "docker", "native", "inline" (brev container mode), "modal" or "registry" (slurm + a container runtime)
    script: str
    app: str
    entrypoint: str | None  # the @app.local_entrypoint(), if any
    args: tuple[str, ...]
    outputs_dir: str
    target: str
    upload: Upload | None  # None: nothing travels (local native runs in place)
    functions: tuple[FunctionPlan, ...]
    run_id: str = NEW_RUN
    schema: str = SCHEMA
