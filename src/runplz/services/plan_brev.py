"""`runplz plan brev`: which box one function would run on, of which type(s),
at what price, with the refusals a run makes before anything is billed.

Reads only `brev search` (the `Catalog`) and, for ``--instance NAME``,
`brev ls` (`Instances.list`); each answer is asked for once per plan.
"""

from __future__ import annotations

from ..domain.brev_instances import find
from ..domain.brev_lifecycle import Target, arrival, check_finish, check_image, ephemeral_name
from ..domain.config import BrevConfig
from ..domain.inline_plan import inline_plan
from ..domain.limits import run_limit
from ..domain.offers import Offer
from ..domain.picker import NoMatch, pick, requirements_of
from ..domain.plan import NEW_RUN, BrevPlan, OfferLine, worst_case_cost
from ..domain.spec import FunctionSpec
from ..ports.catalog import Catalog, SearchQuery
from ..ports.instances import Instances
from .brev_shape import stops
from .plan_context import PlanContext

_RUN_ID_SHAPE = "00000000-000000-000000"  # as long as a real run id (naming.run_id)


def ephemeral_display(app: str, function: str) -> str:
    """The ephemeral box's name with the run id left as ``<new>``."""
    return ephemeral_name(app, function, _RUN_ID_SHAPE)[: -len(_RUN_ID_SHAPE)] + NEW_RUN


class BrevPlanner:
    """Plans the Brev side of functions, remembering each search and listing."""

    def __init__(self, catalog: Catalog, instances: Instances) -> None:
        self._catalog = catalog
        self._instances = instances
        self._searches: dict[SearchQuery, tuple[Offer, ...]] = {}
        self._listing: tuple | None = None

    def plan(self, ctx: PlanContext, spec: FunctionSpec) -> BrevPlan:
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
