"""A function's hardware wishes as Modal's ``@app.function`` parameters, checked first.

The modal client checks almost nothing: it uppercases the GPU name and parses a
``:N`` count, so ``"BOGUS:2"`` or ``"T4-16GB"`` only fail later, on Modal's side.
`modal_resources` refuses those up front, with a `ConfigError` (a ValueError)
naming the function and the field.

Rules:

- GPU names match case-insensitively, surrounding space ignored; the result uses
  Modal's spelling. A memory suffix is valid only on the A100 (``A100-40GB``,
  ``A100-80GB``); other suffixed names are refused with a "did you mean".
- ``num_gpus > 1`` becomes ``:N``; more than the model's per-container maximum is refused.
- ``min_gpu_memory`` is GB of VRAM *per GPU*. Without ``gpu`` it picks the smallest
  model that meets it and allows ``num_gpus``, in this order (VRAM, then price):
  T4 (16) < L4 (24) < A10 (24) < A100-40GB (40) < L40S (48) < A100-80GB (80)
  < H100 (80) < RTX-PRO-6000 (96) < H200 (141) < B200 (180).
  With ``gpu="A100"`` it picks the A100 variant that meets it; any other named
  model with less VRAM is refused.
- ``min_memory`` (GB) becomes ``memory`` in MiB (rounded up); ``min_cpu`` becomes ``cpu``.
- ``min_disk`` is refused: the seed promises a ValueError there (use a modal.Volume).
- ``timeout`` defaults to 3600 s (`modal_timeout`); Modal allows 1 s to 24 h.
"""

from __future__ import annotations

import difflib
import math
import re

import attrs

from .errors import ConfigError
from .limits import modal_timeout
from .spec import FunctionSpec

MAX_TIMEOUT = 24 * 60 * 60  # Modal: "timeout durations between 1 second and 24 hours"


@attrs.frozen
class GpuModel:
    """One GPU model Modal rents: its canonical name, VRAM per GPU (GB),
    on-demand price per GPU-hour (USD) and most GPUs per container."""

    name: str
    vram_gb: int
    usd_per_hour: float
    max_count: int


# Sources (read 2026):
# - names and counts: https://modal.com/docs/guide/gpu ("Specifying GPU type" lists
#   T4, L4, A10, L40S, A100, A100-40GB, A100-80GB, RTX-PRO-6000, H100/H100!, H200,
#   B200/B200+; "B200, H200, H100, A100, L4, T4 and L40S instances support up to 8
#   GPUs ... A10 instances support up to 4"). RTX-PRO-6000 is not in that sentence;
#   8 is assumed, so Modal, not runplz, has the last word on it.
# - "A100" means the 40GB card: https://modal.com/docs/reference/modal.gpu
# - VRAM: NVIDIA's data sheets (T4 16, L4 24, A10 24, L40S 48, A100 40/80, RTX PRO
#   6000 Blackwell 96, H100 SXM 80, H200 141, B200 180 usable per GPU in HGX B200).
# - prices: https://modal.com/pricing per-second rates x 3600 (T4 0.59, L4 0.80,
#   L40S 1.95, A100-80GB 2.50, H100 3.95 confirmed by a 2026 snapshot of that page;
#   the rest as listed there). Prices only break ties between equal VRAM.
GPU_MODELS: tuple[GpuModel, ...] = (
    GpuModel("T4", 16, 0.59, 8),
    GpuModel("L4", 24, 0.80, 8),
    GpuModel("A10", 24, 1.10, 4),
    GpuModel("L40S", 48, 1.95, 8),
    GpuModel("A100-40GB", 40, 2.10, 8),
    GpuModel("A100-80GB", 80, 2.50, 8),
    GpuModel("RTX-PRO-6000", 96, 3.03, 8),
    GpuModel("H100", 80, 3.95, 8),
    GpuModel("H200", 141, 4.54, 8),
    GpuModel("B200", 180, 6.25, 8),
)

# Other spellings Modal documents, and the model each stands for. "H100!" pins
# a plain H100 (no automatic upgrade), "B200+" lets Modal run a B300 instead;
# "A10G" is the A10's older name. They keep their own spelling on the way out,
# except A10G, which becomes today's "A10".
_ALIASES: dict[str, tuple[str, str]] = {
    "A100": ("A100", "A100-40GB"),
    "H100!": ("H100!", "H100"),
    "B200+": ("B200+", "B200"),
    "A10G": ("A10", "A10"),
}

_BY_NAME = {model.name: model for model in GPU_MODELS}
_MEMORY_SUFFIX = re.compile(r"^(.*?)[\s-]*(\d+)\s*GB$")

# Auto-pick order: least VRAM first, then cheapest.
PICK_ORDER: tuple[GpuModel, ...] = tuple(sorted(GPU_MODELS, key=lambda m: (m.vram_gb, m.usd_per_hour)))

# Every name `modal_resources` accepts, in Modal's spelling.
VALID_NAMES: tuple[str, ...] = (
    "T4", "L4", "A10", "L40S", "A100", "A100-40GB", "A100-80GB",
    "RTX-PRO-6000", "H100", "H100!", "H200", "B200", "B200+",
)


@attrs.frozen
class ModalResources:
    """What to pass to Modal's ``@app.function``: ``gpu`` (e.g. ``"A100-80GB:4"``,
    None for CPU only), ``cpu`` (cores), ``memory`` (MiB) and ``timeout`` (seconds)."""

    gpu: str | None
    cpu: float | None
    memory_mib: int | None
    timeout: int


def _refuse(spec: FunctionSpec, field: str, why: str) -> ConfigError:
    return ConfigError(f"@app.function {field}= for {spec.name!r} on Modal: {why}")


def _suggestion(name: str) -> str | None:
    """A close valid name: a memory-suffixed name's stem first, else the nearest spelling."""
    suffixed = _MEMORY_SUFFIX.match(name)
    if suffixed and suffixed.group(1) in VALID_NAMES:
        return suffixed.group(1)
    close = difflib.get_close_matches(name, VALID_NAMES, n=1, cutoff=0.6)
    return close[0] if close else None


def lookup_gpu(name: str) -> tuple[str, GpuModel] | None:
    """``(Modal's spelling, model)`` for a GPU name in any case, or None if unknown."""
    key = name.strip().upper()
    if key in _ALIASES:
        spelling, model = _ALIASES[key]
        return spelling, _BY_NAME[model]
    if key in _BY_NAME:
        return key, _BY_NAME[key]
    return None


def _known_gpu(spec: FunctionSpec, name: str) -> tuple[str, GpuModel]:
    found = lookup_gpu(name)
    if found is not None:
        return found
    hint = _suggestion(name.strip().upper())
    mean = f" (did you mean {hint!r}?)" if hint else ""
    suffixed = _MEMORY_SUFFIX.match(name.strip().upper())
    suffix = " Only the A100 takes a memory suffix (A100-40GB, A100-80GB)." if suffixed else ""
    raise _refuse(
        spec, "gpu", f"{name!r} is not a GPU Modal rents{mean}.{suffix} Valid names: {', '.join(VALID_NAMES)}"
    )


def _meeting(vram: float, count: int) -> list[GpuModel]:
    return [m for m in PICK_ORDER if m.vram_gb >= vram and m.max_count >= count]


def _pick(spec: FunctionSpec, vram: float) -> tuple[str, GpuModel]:
    """The first model in `PICK_ORDER` with ``vram`` GB per GPU that allows ``num_gpus``."""
    if not _meeting(vram, 1):
        largest = max(GPU_MODELS, key=lambda m: m.vram_gb)
        raise _refuse(
            spec,
            "min_gpu_memory",
            f"no Modal GPU has {vram:g} GB of VRAM (the largest, {largest.name}, has {largest.vram_gb} GB)",
        )
    choices = _meeting(vram, spec.num_gpus)
    if not choices:
        most = max(m.max_count for m in GPU_MODELS)
        raise _refuse(
            spec, "num_gpus", f"{spec.num_gpus} GPUs is more than Modal puts in one container (at most {most})"
        )
    return choices[0].name, choices[0]


def _with_memory(spec: FunctionSpec, spelling: str, model: GpuModel, vram: float) -> tuple[str, GpuModel]:
    """An explicit ``gpu`` checked against ``min_gpu_memory``; a bare A100 picks its variant."""
    if spelling == "A100":
        variants = [m for m in PICK_ORDER if m.name.startswith("A100-") and m.vram_gb >= vram]
        if variants:
            return variants[0].name, variants[0]
    if model.vram_gb >= vram:
        return spelling, model
    others = ", ".join(m.name for m in _meeting(vram, 1)) or "none"
    raise _refuse(
        spec,
        "min_gpu_memory",
        f"gpu={spelling!r} has {model.vram_gb} GB of VRAM, less than min_gpu_memory={vram:g}; "
        f"GPUs that meet it: {others}",
    )


def _gpu(spec: FunctionSpec) -> str | None:
    if spec.gpu is None and spec.min_gpu_memory is None:
        return None
    if spec.gpu is None:
        spelling, model = _pick(spec, float(spec.min_gpu_memory))  # type: ignore[arg-type]
    else:
        spelling, model = _known_gpu(spec, spec.gpu)
        if spec.min_gpu_memory is not None:
            spelling, model = _with_memory(spec, spelling, model, float(spec.min_gpu_memory))
    if spec.num_gpus > model.max_count:
        raise _refuse(
            spec,
            "num_gpus",
            f"{spec.num_gpus} x {model.name} is more than Modal puts in one container (at most {model.max_count})",
        )
    return spelling if spec.num_gpus == 1 else f"{spelling}:{spec.num_gpus}"


def _timeout(spec: FunctionSpec) -> int:
    seconds = modal_timeout(spec.timeout)
    if seconds > MAX_TIMEOUT:
        raise _refuse(spec, "timeout", f"{seconds} s is more than Modal allows ({MAX_TIMEOUT} s, 24 hours)")
    return seconds


def modal_resources(spec: FunctionSpec) -> ModalResources:
    """Modal's parameters for ``spec``; a `ConfigError` naming the function and
    field for anything Modal would refuse or runplz cannot honour there."""
    if spec.min_disk is not None:
        raise _refuse(
            spec,
            "min_disk",
            f"min_disk={spec.min_disk:g} cannot be honoured (runplz does not size Modal disks); "
            "write big data to a modal.Volume instead",
        )
    gpu = _gpu(spec)
    cpu = None if spec.min_cpu is None else float(spec.min_cpu)
    memory = None if spec.min_memory is None else max(1, math.ceil(spec.min_memory * 1024))
    return ModalResources(gpu=gpu, cpu=cpu, memory_mib=memory, timeout=_timeout(spec))
