"""The brev backend: provision a Brev box, run on it over ssh, tear it down.

Per ``.remote()`` call: check the image against the mode (nothing billed for a
refused config), reap the boxes of drivers that died, then reach the box
(`BrevArrival`), hand ``ssh NAME`` to the shared remote run path, and apply
the teardown:

- ephemeral (no instance name): a box of its own, deleted when the call ends,
  however it ends (success, failure, timeout, Ctrl-C, SIGTERM, SIGHUP);
- named: one box serves the whole invocation; its ``on_finish`` ("stop",
  "delete" or "leave") applies once, when the App is done (`close`).

``.map()`` runs under the generic fan-out (`ThreadedMap`), each input a run
of its own (``call.run_id``, ``call.outputs``). Ephemeral: every input gets a
box of its own, named from its run id, up to K (`MAP_CONCURRENCY` by default)
at once, all asking for the types one pick made for the whole map; an input
that is stopped (the map's first failure, Ctrl-C) gets `ItemCancelled` raised
in its thread, which the teardown answers like an interrupt: its box is
deleted. Inputs not started never create a box. Named: the inputs take turns
on the one box (K is 1 by default; a larger ``concurrency=`` only queues them).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import attrs

from ..domain.brev_lifecycle import Target, check_image, finish, target_for
from ..domain.call import FunctionCall
from ..domain.config import BrevConfig
from ..domain.host import SshTarget
from ..domain.inline_plan import inline_plan
from ..domain.run_record import Teardown
from ..ports.clock import Clock
from ..ports.transport import Transport
from .brev_arrive import BrevArrival, Visit
from .brev_teardown import BrevTeardown
from .remote_path import RemoteRunPath, RemoteRunSettings
from .run_recorder import Recording, RunRecorder
from .runs import new_run_id


@attrs.frozen
class BrevSettings:
    outputs_dir: str  # absolute, on this machine
    config: BrevConfig
    instance: str | None = None  # None: ephemeral

    def run_settings(self) -> RemoteRunSettings:
        """Container mode runs inline (the box is the image); vm mode runs
        Docker on the box, or a native venv without it."""
        config = self.config
        if config.mode == "container":
            mode = "inline"
        else:
            mode = "docker" if config.use_docker else "native"
        return RemoteRunSettings(
            outputs_dir=self.outputs_dir,
            mode=mode,
            max_runtime_seconds=config.max_runtime_seconds,
            ready_wait_seconds=config.ssh_ready_wait_seconds,
        )


class BrevBackend:
    MAP_CONCURRENCY = 4  # boxes at once in a map, unless ``concurrency=`` says otherwise

    def __init__(
        self,
        arrival: BrevArrival,
        teardown: BrevTeardown,
        paths: Callable[..., RemoteRunPath],  # called with (transport=, settings=)
        transports: Callable[..., Transport],  # called with (target=SshTarget)
        clock: Clock,
        settings: BrevSettings,
        runs: RunRecorder | None = None,
    ) -> None:
        self._runs = runs or RunRecorder.off(clock)
        self._arrival = arrival
        self._teardown = teardown
        self._paths = paths
        self._transports = transports
        self._clock = clock
        self._settings = settings
        self._named: dict[str, Target] = {}  # named boxes this invocation touched
        self._turns = threading.Lock()  # calls on a named box take turns

    @property
    def map_concurrency(self) -> int:
        """`.map()`'s default K: boxes at once (ephemeral), or 1 on a named box."""
        return 1 if self._settings.instance is not None else self.MAP_CONCURRENCY

    def call(self, call: FunctionCall) -> Any:
        config = self._settings.config
        spec = call.spec
        check_image(config, spec.image, spec.name)
        if config.mode == "container":
            inline_plan(spec.image, spec.name)  # refuses what container mode cannot run
        self._teardown.reap()
        run = call.run_id or new_run_id(self._clock)
        target = target_for(self._settings.instance, call.app, spec.name, run)
        if target.ephemeral:
            return self._visit(target, call, run)
        with self._turns:  # one named box: its arrival and its runs, one call at a time
            return self._visit(target, call, run)

    def _visit(self, target: Target, call: FunctionCall, run: str) -> Any:
        config = self._settings.config
        outputs = call.outputs or self._settings.outputs_dir  # a map input's own folder
        visit = self._arrival.plan(target, call.spec, config, pick_for=call.map_id)
        with self._runs.begin("brev", target.name, call, outputs, run_id=run) as record:
            record.event(Teardown(target.name, finish(target, config), self._clock.now()))  # for `runplz down`
            if target.ephemeral:
                try:
                    self._arrive(visit, record)
                    return self._run(target, call, record, outputs)
                finally:
                    self._teardown.finish(
                        target, finish(target, config), made=visit.created, attempted=visit.attempted
                    )
            if visit.how != "create":
                self._named[target.name] = target
            try:
                self._arrive(visit, record)
            finally:
                if visit.created or visit.attempted:  # a create cut short may still make the box
                    self._named[target.name] = target
            return self._run(target, call, record, outputs)

    def _arrive(self, visit: Visit, record: Recording) -> None:
        """Reach the box, then record its type and price (the cost so far counts from here)."""
        with record.phase("provision"):
            self._arrival.carry_out(visit)
        kind = visit.box.instance_type if visit.box is not None else None
        price = visit.shape.price_of(kind) if visit.shape is not None and kind else None
        if kind and price is not None:
            record.box(kind, price, name=visit.target.name)

    def close(self) -> None:
        """Apply ``on_finish`` to the named boxes this backend used (once each)."""
        config = self._settings.config
        interrupt: KeyboardInterrupt | None = None
        while self._named:
            _, target = self._named.popitem()
            try:
                self._teardown.finish(target, finish(target, config))
            except KeyboardInterrupt as caught:  # the other boxes still get theirs
                interrupt = caught
        if interrupt is not None:
            raise interrupt

    def _run(self, target: Target, call: FunctionCall, record: Recording, outputs: str) -> Any:
        transport = self._transports(target=SshTarget(target.name))  # one per run: runs may overlap
        settings = attrs.evolve(self._settings.run_settings(), outputs_dir=outputs)
        return self._paths(transport=transport, settings=settings).call(call, record)
