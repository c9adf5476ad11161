"""`runplz down RUN`: stop a run and give it the teardown it was due.

A live driver is asked to stop (SIGTERM), and does what it does on Ctrl-C:
stops its own job (process group or container), brings the outputs back and
deletes an ephemeral Brev box. For a driver that is gone, what it left is
cleaned up here where runplz can name it: the run's local container; on an
ssh or Brev box, the run's own job (the agent's ``kill`` of its run folder),
then its outputs are brought home; an ephemeral Brev box is then deleted (and
forgotten by the ledger).
"""

from __future__ import annotations

from ..domain.brev_instances import BrevError
from typing import Any, Callable

from ..domain.errors import CommandError, RunplzError, TransportError, UsageError
from ..domain.host import SshTarget, parse_target
from ..domain.layout import BOOT_SCRIPT
from ..domain.remote_layout import OUT, bundle_dir, run_dir
from ..domain.naming import container_name
from ..domain.run_record import Ended, Note, Started
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.container_engine import ContainerEngine
from ..ports.instances import Instances
from ..ports.ledger import BoxLedger
from ..ports.run_store import RunStore

WAIT_SECONDS = 180.0  # for a live driver to finish its cleanup


class DriverElsewhere(RunplzError):
    """The run's driver lives, but not where this runplz can signal it."""


class RunDown:
    def __init__(
        self, store: RunStore, clock: Clock, console: Console, engine: ContainerEngine,
        instances: Instances, ledger: BoxLedger,
        transports: Callable[..., Any] | None = None,  # called with target=SshTarget
        bundle_digest: Callable[[], str] | None = None,
    ) -> None:
        self._transports = transports
        self._bundle_digest = bundle_digest
        self._store = store
        self._clock = clock
        self._console = console
        self._engine = engine
        self._instances = instances
        self._ledger = ledger

    def down(self, text: str, wait: float = WAIT_SECONDS) -> str:
        """Stop the run ``text`` names; returns the one line that says what happened."""
        run = self._store.resolve(text)
        events = self._store.events(run)
        ended = next((e for e in events if isinstance(e, Ended)), None)
        if ended is not None:
            return f"run {run} had already ended ({ended.outcome}); nothing to stop"
        started = events[0]
        assert isinstance(started, Started)
        if self._store.driver_alive(run):
            if not self._store.stop_driver(run):
                raise DriverElsewhere(
                    f"the driver of run {run} (pid {started.driver_pid} on {started.driver_host or 'another host'}) "
                    "cannot be signalled from here; run `runplz down` where it runs"
                )
            self._console.info(f"asked the driver of run {run} to stop; waiting for its cleanup")
            return self._await(run, wait)
        what = self._after_death(run, started)
        self._store.append(run, Note(f"runplz down: {what}", self._clock.now()))
        self._store.append(run, Ended(None, "interrupted", self._clock.now()))
        return f"run {run}: {what}"

    def _await(self, run: str, wait: float) -> str:
        deadline = self._clock.monotonic() + wait
        while self._clock.monotonic() < deadline:
            ended = next((e for e in self._store.events(run) if isinstance(e, Ended)), None)
            if ended is not None:
                return f"run {run} stopped ({ended.outcome})"
            if not self._store.driver_alive(run):
                return f"run {run} stopped (its driver is gone)"
            self._clock.sleep(0.5)
        return f"run {run}: its driver is still cleaning up after {wait:g}s; `runplz status {run}` shows when it is done"

    def _after_death(self, run: str, started: Started) -> str:
        """Clean up after a driver that died; what was done, in words."""
        if started.backend == "local" and started.target == "docker":
            name = container_name(started.app, started.function, run)
            try:
                self._engine.remove(name)
            except CommandError as exc:
                return f"its driver was gone; removing container {name} failed: {exc}"
            return f"its driver was gone; removed its container {name} (if it was still there)"
        reached = ""
        if started.backend in ("ssh", "brev"):
            reached = self._stop_remote(run, started) + "; "
        if started.backend == "brev" and any(r.name == started.target for r in self._ledger.records()):
            try:
                if any(box.name == started.target for box in self._instances.list()):
                    self._instances.delete(started.target)
            except BrevError as exc:
                return f"its driver was gone; deleting Brev box {started.target} failed: {exc} (run `brev delete {started.target}`)"
            self._ledger.forget(started.target)
            return f"its driver was gone; {reached}deleted its ephemeral Brev box {started.target}"
        if reached:
            return f"its driver was gone; {reached.rstrip('; ')}"
        if started.backend == "modal":
            return "its driver was gone; Modal stops an app whose client has gone away"
        return (
            f"its driver was gone; runplz cannot reach what it left on {started.backend} "
            f"({started.target}) yet: stop the job there by hand if it still runs"
        )

    def _stop_remote(self, run: str, started: Started) -> str:
        """Kill the run's own job on its box and bring its outputs home; what happened, in words."""
        if self._transports is None or self._bundle_digest is None:
            return "could not reach the box (no transport)"
        try:
            target = SshTarget(started.target) if started.backend == "brev" else parse_target(started.target)
        except UsageError as exc:
            return f"could not reach {started.target}: {exc}"
        transport = self._transports(target=target)
        folder = run_dir(run)
        boot = f"{bundle_dir(self._bundle_digest())}/{BOOT_SCRIPT}"
        try:
            transport.connect(wait=60)
            try:
                transport.run(["python3", boot, "agent", "kill", folder], timeout=120)
                pulled = transport.pull(f"{folder}/{OUT}", started.outputs, move=True)
            finally:
                transport.close()
        except (TransportError, CommandError, OSError) as exc:
            return f"could not stop the job on {started.target}: {exc}"
        return f"stopped its job on {started.target} and brought {pulled.received} bytes of outputs to {started.outputs}"
