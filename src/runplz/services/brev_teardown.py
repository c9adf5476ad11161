"""Taking a Brev box away after a run, and reaping the boxes of dead drivers.

Teardown never hides the run's own error: a failure is a warning naming the
box and the command that finishes the job by hand. An interrupt (Ctrl-C,
SIGTERM, SIGHUP) during teardown does not skip it: the step is tried again,
up to three times in all, and the interrupt is raised once it is done. An
ephemeral box whose deletion could not be confirmed keeps its ledger record,
so the next `runplz brev` deletes it.

Calls may come from several threads at once (a map's inputs, each with its
box): reaping is done by one of them at a time, so a dead driver's box is
deleted once.
"""

from __future__ import annotations

import threading
from typing import Callable

from .map_shield import shielded
from ..domain.brev_instances import BrevCommandError, find
from ..domain.brev_lifecycle import Finish, Target
from ..ports.console import Console
from ..ports.instances import Instances
from ..ports.ledger import BoxLedger

BACKEND = "brev"  # the backend name in the ledger
TRIES = 3


def _by_hand(verb: str, name: str) -> str:
    return f"`brev {verb} {name}`"


class BrevTeardown:
    def __init__(self, instances: Instances, ledger: BoxLedger, console: Console) -> None:
        self._instances = instances
        self._ledger = ledger
        self._console = console
        self._reaping = threading.Lock()

    def reap(self) -> None:
        """Delete the boxes the ledger holds for drivers that died, and say so."""
        with self._reaping:
            self._reap()

    def _reap(self) -> None:
        for record in self._ledger.orphans(BACKEND):
            name = record.name
            who = f"left by a driver that died (pid {record.driver_pid})"
            try:
                deleted = self._ensure_gone(name, made=True)
            except Exception as error:  # noqa: BLE001 - best effort; the run goes on
                self._console.warn(
                    f"could not delete Brev box {name} {who}: {error}; delete it with "
                    f"{_by_hand('delete', name)} (the next run tries again)"
                )
                continue
            if deleted:
                self._console.info(f"deleted Brev box {name} {who}")
            else:
                self._console.info(f"forgot Brev box {name} {who}: Brev no longer lists it")

    def finish(self, target: Target, action: Finish, made: bool = True, attempted: bool = False) -> None:
        """Delete, stop or leave ``target``. ``made`` False: the box may not
        exist (its create failed or never ran), so look before deleting;
        ``attempted``: a create was called, so a box not listed yet keeps its
        record (the next run reaps it if it appears)."""
        name = target.name
        if action == "leave":
            self._console.info(f"leaving Brev box {name} as it is (on_finish='leave')")
            return
        doing = "deleting" if action == "delete" else "stopping"
        with shielded():  # a map's stop of this input waits until the box is dealt with
            self._shielded(target, doing, lambda: self._apply(target, action, made, attempted))

    def _apply(self, target: Target, action: Finish, made: bool, attempted: bool = False) -> None:
        name = target.name
        try:
            if action == "delete":
                self._console.info(f"deleting Brev box {name}")
                self._ensure_gone(name, made, attempted)
            else:
                self._console.info(f"stopping Brev box {name} (on_finish='stop')")
                self._instances.stop(name)
        except Exception as error:  # noqa: BLE001 - never hide the run's own error
            self._console.warn(self._failed(target, action, error))

    def _failed(self, target: Target, action: Finish, error: Exception) -> str:
        name = target.name
        if action == "stop":
            return (
                f"could not stop Brev box {name} (on_finish='stop'): {error}; it may still be running "
                f"and billing: stop it with {_by_hand('stop', name)}, or, if its type cannot be "
                f"stopped, delete it with {_by_hand('delete', name)}"
            )
        if not target.ephemeral:
            return f"could not delete Brev box {name} (on_finish='delete'): {error}; delete it with {_by_hand('delete', name)}"
        return (
            f"could not delete Brev box {name}: {error}; it may still be billing: delete it with "
            f"{_by_hand('delete', name)} (the next `runplz brev` also tries)"
        )

    def _ensure_gone(self, name: str, made: bool, attempted: bool = False) -> bool:
        """Delete ``name`` unless Brev does not list it, then forget its record.
        True if it was deleted here, False if it was already gone. A box whose
        create was cut short and is not listed yet keeps its record."""
        if not made and find(self._instances.list(), name) is None:
            if attempted:
                self._console.warn(
                    f"the create of Brev box {name} was cut short and brev does not list it yet; "
                    "the next `runplz brev` deletes it if it appears"
                )
                return False
            self._ledger.forget(name)
            return False
        try:
            self._instances.delete(name)
        except BrevCommandError:
            if find(self._instances.list(), name) is not None:
                raise
            self._ledger.forget(name)
            return False
        self._ledger.forget(name)
        return True

    def _shielded(self, target: Target, doing: str, step: Callable[[], None]) -> None:
        name = target.name
        interrupt: KeyboardInterrupt | None = None
        for attempt in range(1, TRIES + 1):
            try:
                step()
                break
            except KeyboardInterrupt as caught:
                interrupt = caught
                if attempt < TRIES:
                    self._console.warn(f"interrupted while {doing} Brev box {name}; trying again first")
        else:
            verb = "delete" if doing == "deleting" else "stop"
            later = " (the next `runplz brev` also tries)" if target.ephemeral else ""
            self._console.warn(
                f"interrupted {TRIES} times: gave up {doing} Brev box {name}; it may still be billing: "
                f"{verb} it with {_by_hand(verb, name)}{later}"
            )
        if interrupt is not None:
            raise interrupt
