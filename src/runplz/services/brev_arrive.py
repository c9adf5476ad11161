"""Bringing a Brev box to where ``ssh NAME`` runs a job on it.

In two steps, so every refusal comes before anything is billed: ``plan``
lists the boxes, applies the lifecycle policy (typo guard, stoppability,
image/mode checks are the caller's) and chooses a new box's shape; ``carry_out``
records an ephemeral box in the ledger, then creates or starts the box, waits
until Brev calls it usable and refreshes the ssh config.
"""

from __future__ import annotations

import attrs

from ..domain.brev_instances import (
    BrevCommandError,
    POLL_FIRST,
    POLL_MAX,
    STOPPED,
    STOPPING,
    Instance,
    InstanceMissing,
    InstanceNotReady,
    find,
)
from ..domain.brev_lifecycle import Arrive, Target, arrival, check_finish
from ..domain.config import BrevConfig
from ..domain.image import RegistryBase
from ..domain.spec import FunctionSpec
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.instances import Instances
from ..ports.ledger import BoxLedger
from .brev_shape import BrevShapes, Shape, stops
from .brev_teardown import BACKEND
from .map_shield import shielded, stop_held

LATE_BOX = 20.0  # seconds a create cut short is given to show its box in `brev ls`


@attrs.define
class Visit:
    """One call's way onto its box: what was found, what to do, and whether
    a create went through (teardown looks before deleting when it did not)."""

    target: Target
    spec: FunctionSpec
    config: BrevConfig
    found: Instance | None
    how: Arrive
    shape: Shape | None = None
    created: bool = False
    attempted: bool = False  # `brev create` was called (it may have gone through even if it failed)
    box: Instance | None = None  # the box once usable (its type says which fallback Brev granted)


def _create_mode(spec: FunctionSpec, config: BrevConfig) -> tuple[str, str | None]:
    """`brev create --mode` and, in container mode, the image the box is made from."""
    if config.mode == "container" and isinstance(spec.image.base, RegistryBase):
        return "container", spec.image.base.ref
    return config.mode, None


class BrevArrival:
    def __init__(
        self, instances: Instances, shapes: BrevShapes, ledger: BoxLedger, console: Console, clock: Clock
    ) -> None:
        self._instances = instances
        self._shapes = shapes
        self._ledger = ledger
        self._console = console
        self._clock = clock
        self._refreshed: set[str] = set()

    def plan(self, target: Target, spec: FunctionSpec, config: BrevConfig, pick_for: str | None = None) -> Visit:
        """What reaching ``target`` takes; refusals (`TypoGuard`, `BoxUnusable`,
        `NotStoppable`, `NoMatch`) are raised here, before anything is created.
        ``pick_for`` (a map's id): the boxes of one map share one pick."""
        found = find(self._instances.list(), target.name)
        how = arrival(target, found, config)
        visit = Visit(target, spec, config, found, how)
        if how == "create":
            visit.shape = self._shapes.for_new_box(target, spec, config, pick_for=pick_for)
        elif how in ("attach", "wait") and stops(target, config) and found is not None:
            kind = found.instance_type
            check_finish(target, config, self._shapes.stoppable(kind, spec.wants_gpu), kind or "(unknown)")
        return visit

    def carry_out(self, visit: Visit) -> None:
        """Create, start or wait for the box, then refresh the ssh config."""
        name = visit.target.name
        found = visit.found
        if visit.how == "create":
            self._create(visit)
        elif visit.how == "start" and found is not None:
            if found.status == STOPPING:
                self._until_stopped(name, visit.config.ssh_ready_wait_seconds)
            self._console.info(f"starting Brev box {name} (it is {found.describe()})")
            self._instances.start(name)
        if visit.how != "attach":
            wait = visit.config.ssh_ready_wait_seconds
            now = f" (it is {found.describe()})" if visit.how == "wait" and found is not None else ""
            self._console.info(f"waiting up to {wait:g}s for Brev box {name} to be usable{now}")
            box = visit.box = self._instances.wait_usable(name, wait)
            self._console.info(f"Brev box {name} is usable ({box.instance_type or 'type not listed'}, {box.describe()})")
        if visit.how != "attach" or name not in self._refreshed:
            self._instances.refresh()
            self._refreshed.add(name)
            self._console.info(f"refreshed Brev's ssh config: `ssh {name}` reaches the box")

    def _create(self, visit: Visit) -> None:
        name, shape = visit.target.name, visit.shape
        assert shape is not None
        mode, image = _create_mode(visit.spec, visit.config)
        if visit.target.ephemeral:
            self._ledger.record(name, BACKEND)  # before create: a driver killed in between leaks nothing
        kind = "ephemeral" if visit.target.ephemeral else "named"
        self._console.info(f"creating {kind} Brev box {name} (types {','.join(shape.types)}, mode {mode})")
        visit.attempted = True
        try:
            with shielded():  # a map's stop waits for the create to end: the box it made is then deleted
                try:
                    self._instances.create(
                        name, shape.types, mode=mode, container_image=image, min_disk=shape.min_disk_gb
                    )
                except BrevCommandError as error:
                    if not error.transient and not error.words.startswith("brev gave no answer"):
                        visit.attempted = False  # the CLI answered no: nothing is on its way
                    elif stop_held():  # stopping, with the create's outcome unknown: look for its box
                        self._late_box(visit)
                    raise
                visit.created = True
        except KeyboardInterrupt:  # Ctrl-C cut the create short (a map's stop waits for it above)
            if not visit.created:
                self._late_box(visit)
            raise

    def _late_box(self, visit: Visit) -> None:
        """A create cut short may still make its box: look for it by name for a
        while, so the teardown deletes it now rather than the next `runplz brev`."""
        name = visit.target.name
        self._console.info(f"the create of Brev box {name} was cut short: looking for it (up to {LATE_BOX:g}s) to delete it")
        deadline = self._clock.monotonic() + LATE_BOX
        delay = POLL_FIRST
        while True:
            try:
                if find(self._instances.list(), name) is not None:
                    visit.created = True
                    return
            except BrevCommandError:
                pass
            left = deadline - self._clock.monotonic()
            if left <= 0:
                return
            self._clock.sleep(min(delay, left))
            delay = min(delay * 2, POLL_MAX)

    def _until_stopped(self, name: str, within: float) -> None:
        """A box that is stopping can only be started once it has stopped."""
        self._console.info(f"Brev box {name} is stopping; waiting for it to stop before starting it again")
        deadline = self._clock.monotonic() + within
        delay = POLL_FIRST
        while True:
            box = find(self._instances.list(), name)
            if box is None:
                raise InstanceMissing(f"brev ls no longer lists instance {name}")
            if box.status == STOPPED:
                return
            left = deadline - self._clock.monotonic()
            if left <= 0:
                raise InstanceNotReady(f"Brev instance {name} was still {box.describe()} after {within:g}s")
            self._clock.sleep(min(delay, left))
            delay = min(delay * 2, POLL_MAX)
