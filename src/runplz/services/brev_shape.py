"""Which Brev instance types a new box asks for, and whether a type can stop.

A pinned ``BrevConfig.instance_type`` skips the picker. Otherwise one
`brev search` with the function's floors, then the domain picker: the choice
and two ranked fallbacks, passed to `brev create` as one ordered list. The disk
asked for is the function's ``min_disk`` (every fallback's largest disk holds
it; the choice's own smallest disk may not fit a fallback).

A named box that will be stopped when runplz is done (``on_finish="stop"``) is
only made from stoppable types; when no stoppable type fits, the run is refused
before anything is created (`NotStoppable`).

The boxes of one ``.map()`` share one pick (one search, one progress line, the
same ordered types for every input), made by whichever input comes first while
the others wait for it.
"""

from __future__ import annotations

import threading

import attrs

from ..domain.brev_lifecycle import Target, check_finish
from ..domain.config import BrevConfig
from ..domain.offers import Offer
from ..domain.picker import NoMatch, Pick, pick, requirements_of
from ..domain.spec import FunctionSpec
from ..ports.catalog import Catalog, SearchQuery
from ..ports.console import Console


@attrs.frozen
class Shape:
    """What `brev create` asks for: ordered types, and the disk (GB, None: no flag)."""

    types: tuple[str, ...]
    min_disk_gb: float | None
    prices: tuple[float, ...] = ()  # $/h of each type, where `brev search` listed it

    def price_of(self, instance_type: str) -> float | None:
        """The listed $/h of ``instance_type`` (None when it was pinned or is not among the types)."""
        return dict(zip(self.types, self.prices)).get(instance_type)


def stops(target: Target, config: BrevConfig) -> bool:
    """Whether runplz will `brev stop` this box when it is done with it."""
    return not target.ephemeral and config.on_finish == "stop"


def _price(offer: Offer) -> str:
    return f"${offer.price_per_hour:g}/h"


def _hardware(offer: Offer) -> str:
    gpus = f"{offer.gpu_count} x {offer.gpu_name}, " if offer.gpu_count else ""
    return f"{gpus}{offer.vcpus} vCPUs, {offer.ram_gb:g} GB RAM"


def describe(chosen: Pick, function: str, stoppable_only: bool) -> str:
    """One progress line: the type picked, its price, and the fallbacks."""
    choice = chosen.choice
    text = f"picked Brev type {choice.type} for {function}: {_hardware(choice)}, {_price(choice)} ({choice.provider})"
    if stoppable_only:
        text += ", stoppable types only (on_finish='stop')"
    if chosen.fallbacks:
        text += "; fallbacks: " + ", ".join(f"{o.type} {_price(o)}" for o in chosen.fallbacks)
    return text


class BrevShapes:
    """Chooses the types of new boxes; answers whether a type can stop (cached)."""

    def __init__(self, catalog: Catalog, console: Console) -> None:
        self._catalog = catalog
        self._console = console
        self._stoppable: dict[str, bool | None] = {}
        self._picks: dict[tuple[str, str, bool], Shape] = {}
        self._picking = threading.Lock()

    def for_new_box(
        self, target: Target, spec: FunctionSpec, config: BrevConfig, pick_for: str | None = None
    ) -> Shape:
        """The shape of a box made for ``spec``; refuses (`NoMatch`, `NotStoppable`)
        before anything is created. With ``pick_for`` (a map's id) the first
        call's shape serves every later call with the same key."""
        if pick_for is None:
            return self._shape(target, spec, config)
        key = (pick_for, spec.name, target.ephemeral)  # one map: one function, one config
        with self._picking:
            shape = self._picks.get(key)
            if shape is None:
                shape = self._picks[key] = self._shape(target, spec, config)
            return shape

    def _shape(self, target: Target, spec: FunctionSpec, config: BrevConfig) -> Shape:
        req = requirements_of(spec)
        pinned = config.instance_type
        if pinned is not None:
            if stops(target, config):
                check_finish(target, config, self.stoppable(pinned, req.gpu_count > 0), pinned)
            self._console.info(f"using the pinned Brev type {pinned} for {spec.name} (BrevConfig.instance_type)")
            return Shape((pinned,), req.min_disk_gb)
        offers = self._search(SearchQuery.for_requirements(req))
        chosen = pick(offers, req)
        only_stoppable = stops(target, config) and not all(o.stoppable for o in chosen.offers)
        if only_stoppable:
            try:
                chosen = pick([offer for offer in offers if offer.stoppable], req)
            except NoMatch:
                check_finish(target, config, False, chosen.choice.type)  # raises NotStoppable
        self._console.info(describe(chosen, spec.name, only_stoppable))
        return Shape(chosen.types, req.min_disk_gb, tuple(offer.price_per_hour for offer in chosen.offers))

    def stoppable(self, instance_type: str, gpu_first: bool = True) -> bool | None:
        """Whether Brev can stop ``instance_type``, as `brev search` lists it
        (None: not listed, or no type known)."""
        if not instance_type:
            return None
        for gpu in (gpu_first, not gpu_first):
            if instance_type in self._stoppable:
                break
            self._search(SearchQuery(gpu=gpu))
        return self._stoppable.setdefault(instance_type, None)

    def _search(self, query: SearchQuery) -> tuple[Offer, ...]:
        offers = self._catalog.search(query)
        for offer in offers:
            self._stoppable.setdefault(offer.type, offer.stoppable)
        return offers
