"""Pick the Brev instance type for a function, and the fallbacks after it.

The rule, from the seed's promise: of the offers that meet every requirement,
take the cheapest, except that an offer priced within 5% of it
(price <= 1.05 x cheapest) that boots faster wins. Only a KNOWN
`boot_time_seconds` counts: an unknown boot loses to any known one in the band,
and when none in the band is known the cheapest wins. The full key, so that
ties break the same way whatever the input order, is
(boot unknown, boot seconds, price, type). Fallbacks apply the same rule again
to what is left, each type once.

GPU names compare as models: case-insensitive, without a leading "NVIDIA" /
"Tesla" and without spaces, dashes or underscores, so "nvidia-tesla-t4" is T4
and "A10" matches neither "A100" nor "A10G". A user suffix such as "A100-80GB"
means model A100 with at least 80 GB per GPU.
"""

from __future__ import annotations

import functools
import heapq
import re
from operator import attrgetter
from typing import Callable, Iterable, Sequence

import attrs

from .errors import ConfigError, UsageError
from .offers import Offer
from .spec import FunctionSpec

BAND = 1.05  # an offer up to 5% dearer than the cheapest may win on boot time

_PREFIX = re.compile(r"^(?:(?:NVIDIA|TESLA)[\s_-]+)+")
_MEMORY_SUFFIX = re.compile(r"[\s_-]+(\d+(?:\.\d+)?)\s*GI?B$")
_SEPARATORS = re.compile(r"[\s_-]+")


class NoMatch(UsageError):
    """No Brev offer meets the function's requirements.

    `constraint` names the requirement that removed the last offers: "catalog"
    (nothing listed at all), "kind" (GPU or CPU-only), "gpu", "num_gpus",
    "min_gpu_memory", "min_cpu", "min_memory" or "min_disk".
    """

    def __init__(self, message: str, constraint: str) -> None:
        super().__init__(message)
        self.constraint = constraint


@functools.lru_cache(maxsize=4096)
def split_gpu_name(name: str) -> tuple[str, float | None]:
    """("A100", 80.0) for "NVIDIA A100-80GB"; (model, None) without a memory suffix."""
    text = _PREFIX.sub("", name.strip().upper())
    memory = None
    match = _MEMORY_SUFFIX.search(text)
    if match and match.start() > 0:
        memory, text = float(match.group(1)), text[: match.start()]
    return _SEPARATORS.sub("", text), memory


def gpu_model(name: str) -> str:
    """The normalised model a GPU name denotes ("Tesla T4" -> "T4")."""
    return split_gpu_name(name)[0]


def _non_negative_count(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"Requirements.{attribute.name} must be a whole number >= 0; got {value!r}")


@attrs.frozen(kw_only=True)
class Requirements:
    """What an offer must have. gpu_count 0 asks for a CPU-only offer."""

    gpu_model: str | None = None  # normalised (see gpu_model()); None: any GPU
    gpu_count: int = attrs.field(default=0, validator=_non_negative_count)
    min_vram_gb: float | None = None  # per GPU
    min_vcpus: float | None = None
    min_ram_gb: float | None = None
    min_disk_gb: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.gpu_count == 0 and (self.gpu_model is not None or self.min_vram_gb is not None):
            raise ConfigError("Requirements with a GPU model or GPU memory need gpu_count >= 1")


def requirements_of(spec: FunctionSpec) -> Requirements:
    """The requirements an `@app.function` decoration puts on a Brev offer."""
    model, suffix_gb = split_gpu_name(spec.gpu) if spec.gpu is not None else (None, None)
    floors = [gb for gb in (suffix_gb, spec.min_gpu_memory) if gb is not None]
    return Requirements(
        gpu_model=model,
        gpu_count=spec.num_gpus if spec.wants_gpu else 0,
        min_vram_gb=max(floors) if floors else None,
        min_vcpus=spec.min_cpu,
        min_ram_gb=spec.min_memory,
        min_disk_gb=spec.min_disk,
    )


def disk_gb(offer: Offer, min_disk: float | None) -> float | None:
    """The disk to ask `brev create --min-disk` for: max(min_disk, the offer's
    smallest disk); None (pass no flag) when neither is known."""
    return max(min_disk or 0.0, offer.disk_min_gb) or None


@attrs.frozen
class Pick:
    """The chosen offer, the ranked fallbacks after it, and the disk to ask for
    (`disk_gb` of the choice)."""

    choice: Offer
    fallbacks: tuple[Offer, ...]
    disk_gb: float | None

    @property
    def offers(self) -> tuple[Offer, ...]:
        return (self.choice, *self.fallbacks)

    @property
    def types(self) -> tuple[str, ...]:
        """The ordered list for `brev create --type T1,T2,T3`."""
        return tuple(offer.type for offer in self.offers)


def _rank_key(offer: Offer) -> tuple[bool, int, float, str]:
    boot = offer.boot_time_seconds
    return (boot is None, boot or 0, offer.price_per_hour, offer.type)


def best(offers: Sequence[Offer]) -> Offer:
    """The winner among offers that all fit (not empty): see the module's rule."""
    limit = min(offer.price_per_hour for offer in offers) * BAND
    return min((offer for offer in offers if offer.price_per_hour <= limit), key=_rank_key)


def pick(offers: Iterable[Offer], requirements: Requirements, fallbacks: int = 2) -> Pick:
    """The best offer meeting `requirements`, then up to `fallbacks` more, ranked.

    Each type appears once. Input order does not matter while types are
    unique (`offers_from_rows` makes them so). Raises `NoMatch` naming the
    first requirement, in a fixed order, that leaves no offer.
    """
    if isinstance(fallbacks, bool) or not isinstance(fallbacks, int) or fallbacks < 0:
        raise ConfigError(f"pick fallbacks must be a whole number >= 0; got {fallbacks!r}")
    ranked = _ranked(_fitting(list(offers), requirements), fallbacks + 1)
    choice = ranked[0]
    return Pick(choice, tuple(ranked[1:]), disk_gb(choice, requirements.min_disk_gb))


_price = attrgetter("price_per_hour")


def _ranked(left: list[Offer], count: int) -> list[Offer]:
    # Round r (r <= count) removes r - 1 types, so while the `count` cheapest
    # offers have distinct types, one of them is left and every band lies
    # under 1.05 x the count-th cheapest price: rank only what lies there.
    if len(left) > count:
        cheapest = heapq.nsmallest(count, left, key=_price)
        if len({offer.type for offer in cheapest}) == count:
            limit = cheapest[-1].price_per_hour * BAND
            left = [offer for offer in left if offer.price_per_hour <= limit]
    ranked: list[Offer] = []
    while left and len(ranked) < count:
        winner = best(left)
        ranked.append(winner)
        left = [offer for offer in left if offer.type != winner.type]
    return ranked


# ---------------------------------------------------------------- the filters, in order

Keep = Callable[[list[Offer], Requirements], list[Offer]]
Why = Callable[[list[Offer], Requirements], str]


def _fitting(offers: list[Offer], req: Requirements) -> list[Offer]:
    if not offers:
        raise NoMatch("brev search listed no offers at all", "catalog")
    for name, active, keep, why in _STAGES:
        if not active(req):
            continue
        kept = keep(offers, req)
        if not kept:
            raise NoMatch(why(offers, req), name)
        offers = kept
    return offers


def _by_kind(offers: list[Offer], req: Requirements) -> list[Offer]:
    if req.gpu_count:
        return [o for o in offers if o.gpu_count > 0]
    return [o for o in offers if o.gpu_count == 0]


def _by_model(offers: list[Offer], req: Requirements) -> list[Offer]:
    names = {name for name in {o.gpu_name for o in offers} if gpu_model(name) == req.gpu_model}
    return [o for o in offers if o.gpu_name in names]


def _by_count(offers: list[Offer], req: Requirements) -> list[Offer]:
    count = req.gpu_count
    return [o for o in offers if o.gpu_count == count]


def _by_vram(offers: list[Offer], req: Requirements) -> list[Offer]:
    floor = req.min_vram_gb
    return [o for o in offers if o.vram_per_gpu_gb >= floor]


def _by_vcpus(offers: list[Offer], req: Requirements) -> list[Offer]:
    floor = req.min_vcpus
    return [o for o in offers if o.vcpus >= floor]


def _by_ram(offers: list[Offer], req: Requirements) -> list[Offer]:
    floor = req.min_ram_gb
    return [o for o in offers if o.ram_gb >= floor]


def _by_disk(offers: list[Offer], req: Requirements) -> list[Offer]:
    # An offer that does not state its disk (max 0) cannot promise min_disk.
    floor = req.min_disk_gb
    return [o for o in offers if o.disk_max_gb >= floor]


# ---------------------------------------------------------------- why nothing fits


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _gpus(req: Requirements) -> str:
    return f"{req.gpu_count} x {req.gpu_model or 'GPU'}"


def _subject(req: Requirements) -> str:
    return f"no Brev offer with {_gpus(req)}" if req.gpu_count else "no CPU-only Brev offer"


def _why_kind(offers: list[Offer], req: Requirements) -> str:
    if req.gpu_count:
        return "no Brev offer has a GPU (every one listed is CPU-only)"
    return "no CPU-only Brev offer is listed (every one has a GPU)"


def _why_model(offers: list[Offer], req: Requirements) -> str:
    models = sorted({gpu_model(name) for name in {o.gpu_name for o in offers}})
    shown = ", ".join(models[:8]) + (f" and {len(models) - 8} more" if len(models) > 8 else "")
    return f"no Brev offer has {req.gpu_model} GPUs (models found: {shown})"


def _why_count(offers: list[Offer], req: Requirements) -> str:
    counts = ", ".join(str(n) for n in sorted({o.gpu_count for o in offers}))
    return f"no Brev offer has {_gpus(req)} (found: {counts} x {req.gpu_model or 'GPU'})"


def _why_vram(offers: list[Offer], req: Requirements) -> str:
    most = max(o.vram_per_gpu_gb for o in offers)
    return f"{_subject(req)} has >= {_num(req.min_vram_gb or 0)} GB per GPU (the most found: {_num(most)} GB)"


def _why_vcpus(offers: list[Offer], req: Requirements) -> str:
    most = max(o.vcpus for o in offers)
    return f"{_subject(req)} has >= {_num(req.min_vcpus or 0)} vCPUs (the most found: {most})"


def _why_ram(offers: list[Offer], req: Requirements) -> str:
    most = max(o.ram_gb for o in offers)
    return f"{_subject(req)} has >= {_num(req.min_ram_gb or 0)} GB RAM (the most found: {_num(most)} GB)"


def _why_disk(offers: list[Offer], req: Requirements) -> str:
    most = max(o.disk_max_gb for o in offers)
    found = f"the largest found: {_num(most)} GB" if most else "none found states its disk size"
    return f"{_subject(req)} takes a {_num(req.min_disk_gb or 0)} GB disk ({found})"


_STAGES: tuple[tuple[str, Callable[[Requirements], bool], Keep, Why], ...] = (
    ("kind", lambda req: True, _by_kind, _why_kind),
    ("gpu", lambda req: req.gpu_model is not None, _by_model, _why_model),
    ("num_gpus", lambda req: req.gpu_count > 0, _by_count, _why_count),
    ("min_gpu_memory", lambda req: req.min_vram_gb is not None, _by_vram, _why_vram),
    ("min_cpu", lambda req: req.min_vcpus is not None, _by_vcpus, _why_vcpus),
    ("min_memory", lambda req: req.min_ram_gb is not None, _by_ram, _why_ram),
    ("min_disk", lambda req: req.min_disk_gb is not None, _by_disk, _why_disk),
)
