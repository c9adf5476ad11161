"""`runplz down RUN`: stop a run and give it the teardown it was due.

A live driver is asked to stop (SIGTERM), and does what it does on Ctrl-C:
stops its own job (process group or container), brings the outputs back and
deletes an ephemeral Brev box. For a driver that is gone, what it left is
cleaned up here where runplz can name it: the run's local container; a local
native run's job (its processes, told from every other by the run's mark in
their environment); on an ssh or Brev box, the run's own job (the agent's
``kill`` of its run folder), then its outputs are brought home; a Slurm
run's job is cancelled (``scancel``, on its login node) and, once it left
the queue, its outputs are brought home (`SlurmDown`); then the
teardown the run was due: an ephemeral Brev box is deleted (and forgotten by
the ledger), a named one gets the ``on_finish`` its record says ("stop",
"delete" or "leave"), unless another live run is using it now.

Only what is done ends the run: a container not removed, an ssh job not
stopped, a Slurm job not seen to leave the queue, or outputs that did not
come home leave it open (`DownUnfinished`, exit code 1; `DownRefused`, exit
code 2, when its record names an unusable host), with a note that says what
failed, so `runplz ps` keeps asking about it and `down` can be run again.
"""

from __future__ import annotations

from typing import Any, Callable

from ..domain.brev_instances import BrevError, find
from ..domain.brev_lifecycle import ephemeral_name
from ..domain.errors import CommandError, RunplzError, TransportError, UsageError
from ..domain.host import SshTarget, parse_target
from ..domain.job_stop import JobLeftRunning
from ..domain.layout import BOOT_SCRIPT
from ..domain.remote_layout import OUT, bundle_dir, run_dir
from ..domain.naming import container_name
from ..domain.run_record import Ended, Event, Note, Started, Teardown
from ..domain.slurm_state import noted_job
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.container_engine import ContainerEngine
from ..ports.instances import Instances
from ..ports.ledger import BoxLedger
from ..ports.run_store import RunStore
from .slurm_runs import DownSaid, SlurmDown

WAIT_SECONDS = 180.0  # for a live driver to finish its cleanup


class DriverElsewhere(RunplzError):
    """The run's driver lives, but not where this runplz can signal it."""


class DownUnfinished(RunplzError):
    """`down` could not finish what a dead driver left (the run stays open; run it again)."""


class DownRefused(UsageError):
    """The run's record names something `down` cannot use (the run stays open)."""


class RunDown:
    def __init__(
        self, store: RunStore, clock: Clock, console: Console, engine: ContainerEngine,
        instances: Instances, ledger: BoxLedger,
        transports: Callable[..., Any] | None = None,  # called with target=SshTarget
        bundle_digest: Callable[[], str] | None = None,
        schedulers: Callable[..., Any] | None = None,  # called with transport=: a `BatchScheduler`
        login: Callable[[], Any] | None = None,  # this machine as a Slurm login node (a `Transport`)
    ) -> None:
        self._schedulers = schedulers
        self._login = login
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
        said = self._after_death(run, started, events)
        what = "its driver was gone; " + said.words
        if not said.settled:
            self._store.append(run, Note(f"runplz down: {what}; the run stays open", self._clock.now()))
            line = f"run {run}: {what}; the run stays open: `runplz down {run}` tries again"
            raise (DownRefused if said.bad_input else DownUnfinished)(line)
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

    def _after_death(self, run: str, started: Started, events: tuple[Event, ...]) -> DownSaid:
        """Clean up after a driver that died; what was done, and whether the run may end."""
        if started.backend == "slurm":
            return self._stop_slurm(run, started, events)
        if started.backend == "ssh":  # a job left running, or outputs not home: the run stays open
            return self._remote(run, started)
        if started.backend == "local" and started.target == "docker":
            name = container_name(started.app, started.function, run)
            try:
                self._engine.remove(name)
            except CommandError as exc:  # it may still run: the run stays open
                return DownSaid(f"removing container {name} failed: {exc}", False)
            return DownSaid(f"removed its container {name} (if it was still there)")
        return DownSaid(self._elsewhere(run, started, events))

    def _elsewhere(self, run: str, started: Started, events: tuple[Event, ...]) -> str:
        """The other backends' cleanup, in words (the run ends after it, whatever it says:
        a native job that outlives SIGKILL is named, a Brev box gets its teardown)."""
        if started.backend == "local" and started.target == "native":
            return self._stop_native(run)
        if started.backend == "brev":
            return self._brev(run, started, events)
        if started.backend == "modal":
            return "Modal stops an app whose client has gone away"
        return (
            f"runplz cannot reach what it left on {started.backend} "
            f"({started.target}) yet: stop the job there by hand if it still runs"
        )

    def _brev(self, run: str, started: Started, events: tuple[Event, ...]) -> str:
        """The job on the box stopped and its outputs home, then the box's teardown."""
        box = started.target
        try:
            found = find(self._instances.list(), box)
        except BrevError as exc:
            return (
                f"{self._stop_remote(run, started)}; could not list the Brev boxes ({exc}), so box {box} "
                "got no teardown: see `brev ls`"
            )
        listed = found is not None
        if found is None:
            reached = f"Brev no longer lists box {box}; "
        elif found.status in ("STOPPED", "STOPPING"):
            reached = f"Brev box {box} is {found.status}, so no job runs on it; "
        else:
            reached = self._stop_remote(run, started) + "; "
        if not self._ephemeral(run, started):
            return reached + self._finish_named(run, box, events)
        try:
            if listed:
                self._instances.delete(box)
        except BrevError as exc:
            return f"{reached}deleting Brev box {box} failed: {exc} (run `brev delete {box}`)"
        self._ledger.forget(box)
        return reached + (f"deleted its ephemeral Brev box {box}" if listed else "forgot its ephemeral box")

    def _ephemeral(self, run: str, started: Started) -> bool:
        """Whether the run's Brev box was its own: the ledger holds it, or it has
        the name only this run's ephemeral box can have (a run id is unique)."""
        if any(r.name == started.target for r in self._ledger.records()):
            return True
        try:
            return started.target == ephemeral_name(started.app, started.function, run)
        except UsageError:
            return False

    def _stop_native(self, run: str) -> str:
        """Stop what a local native run's job left running here."""
        try:
            found = self._store.stop_job(run)
        except JobLeftRunning as exc:
            return exc.words()
        if found is None:
            return "runplz cannot look for its job's processes on this system: stop the job by hand if it still runs"
        if not found:
            return "no process of its job was left running"
        return f"stopped its job ({found} process{'es' if found != 1 else ''})"

    def _finish_named(self, run: str, box: str, events: tuple[Event, ...]) -> str:
        """The ``on_finish`` a named Brev box was due, as its driver would have applied it."""
        due = next((e.action for e in reversed(events) if isinstance(e, Teardown) and e.box == box), None)
        if due is None:
            return f"left Brev box {box} as it is (its record does not say what on_finish it was due)"
        if due not in ("stop", "delete"):
            return f"left Brev box {box} as it is (on_finish={due!r})"
        user = self._user_of(run, box)
        if user is not None:
            return f"left Brev box {box} running (on_finish={due!r}): run {user} is using it now"
        try:
            found = find(self._instances.list(), box)
            if found is None:
                return f"nothing to {due} (on_finish={due!r})"
            if due == "stop" and found.status == "STOPPED":
                return f"Brev box {box} was stopped already (on_finish='stop')"
            if due == "stop":
                self._instances.stop(box)
            else:
                self._instances.delete(box)
        except BrevError as exc:
            return f"{'stopping' if due == 'stop' else 'deleting'} Brev box {box} failed: {exc} (run `brev {due} {box}`)"
        return f"{'stopped' if due == 'stop' else 'deleted'} Brev box {box} (on_finish={due!r})"

    def _user_of(self, run: str, box: str) -> str | None:
        """Another run on ``box`` that is not over (its driver lives), if any."""
        for other in self._store.runs():
            if other == run:
                continue
            try:
                events = self._store.events(other)
                if not events or not isinstance(events[0], Started):
                    continue
                if events[0].backend != "brev" or events[0].target != box:
                    continue
                if any(isinstance(e, Ended) for e in events) or not self._store.driver_alive(other):
                    continue
            except RunplzError:  # a record removed or unreadable meanwhile
                continue
            return other
        return None

    def _stop_remote(self, run: str, started: Started) -> str:
        """`_remote`, in words (a Brev box's teardown follows it whatever it says)."""
        return self._remote(run, started).words

    def _remote(self, run: str, started: Started) -> DownSaid:
        """Kill the run's own job on its box and bring its outputs home; what happened."""
        if self._transports is None or self._bundle_digest is None:
            return DownSaid("could not reach the box (no transport)", False)
        try:
            target = SshTarget(started.target) if started.backend == "brev" else parse_target(started.target)
        except UsageError as exc:
            return DownSaid(f"could not reach {started.target}: {exc}", False, bad_input=True)
        folder = run_dir(run)
        boot = f"{bundle_dir(self._bundle_digest())}/{BOOT_SCRIPT}"
        killed = False
        try:
            transport = self._transports(target=target)
            transport.connect(wait=60)
            try:
                transport.run(["python3", boot, "agent", "kill", folder], timeout=120)
                killed = True
                pulled = transport.pull(f"{folder}/{OUT}", started.outputs, move=True)
            finally:
                transport.close()
        except (TransportError, CommandError, OSError) as exc:
            if killed:  # what arrived was moved home; the rest stays on the box
                return DownSaid(f"stopped its job on {started.target}, but its outputs did not come home ({exc}); "
                                f"they stay in {folder}/{OUT} there", False)
            return DownSaid(f"could not stop the job on {started.target}: {exc}", False)
        return DownSaid(f"stopped its job on {started.target} and brought {pulled.received} bytes of outputs to "
                        f"{started.outputs}")

    def _stop_slurm(self, run: str, started: Started, events: tuple[Event, ...]) -> DownSaid:
        """``scancel`` the run's Slurm job (its record notes the job id), wait for
        the queue, then bring its outputs home (`SlurmDown`)."""
        notes = tuple(e.text for e in events if isinstance(e, Note))
        job = noted_job(notes)
        if job is None:
            return DownSaid("its record names no Slurm job (it was never submitted)")
        where = started.target
        if self._schedulers is None or self._transports is None or self._login is None:
            return DownSaid(f"could not reach Slurm to cancel job {job}: run `scancel {job}` on the login node", False)
        try:
            transport = self._login() if where == "local" else self._transports(target=parse_target(where))
            scheduler = self._schedulers(transport=transport)
        except UsageError as exc:
            return DownSaid(f"its record's login node {where!r} is not usable ({exc}), so Slurm job {job} was not "
                            f"cancelled: run `scancel {job}` there", False, bad_input=True)
        except (TransportError, CommandError, OSError) as exc:
            return DownSaid(f"could not reach {where} to cancel Slurm job {job}: {exc} (run `scancel {job}` there)", False)
        return SlurmDown(transport, scheduler, self._clock).stop(run, started.outputs, notes, where)
