"""`runplz ps` / `status`: ask the backends how runs whose driver is gone are doing.

Only reads: one container listing for all local Docker runs, one ssh
connection (one ``sh`` that reads run folders) per box, one `brev ls` for all
Brev runs, one connection per Slurm login node (one ``python3`` that reads
the run folders, then squeue/sacct for each run's job: `slurm_views`). The
checks run at once, each in its own thread, and all of them together get
`CHECK_SECONDS`; a backend that cannot be reached, or does not answer in
time, is a warning naming it and why, never a failure.

A check that misses the budget is abandoned, but what it started must not
outlive `ps`: with ``stragglers`` (a fence, see `RunReconciler`), every
program the checks start is marked, and those still running at the budget (an
ssh master still connecting, a slow `brev ls`) are stopped; the abandoned
checks then get `SETTLE_SECONDS` to close their transports (which stops an
ssh master and removes its temp folder), and a transport still open after
that is closed from here.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from contextlib import nullcontext
from typing import Any, Callable, Iterable, Sequence

import attrs

from ..domain.errors import RunplzError, Unreachable
from ..domain.host import SshTarget, parse_target
from ..domain.run_liveness import (
    NOT_REACHED,
    RUN_LABEL,
    FOLDER_SCRIPT,
    BackendView,
    Probe,
    box_view,
    container_view,
    folder_argv,
    folder_view,
    parse_folder_report,
    probe_for,
)
from ..domain.run_summary import RunSummary
from ..domain.slurm_liveness import LOCAL_TARGET as LOCAL  # a Slurm run's target when its driver ran on the login node
from ..ports.clock import Clock
from ..ports.container_engine import ContainerEngine
from ..ports.instances import Instances
from .slurm_runs import slurm_views

CHECK_SECONDS = 10.0  # for all the checks of one `ps` together
SSH_COMMAND_SECONDS = CHECK_SECONDS  # the read of the run folders, once connected
SETTLE_SECONDS = 2.0  # after the budget and the stragglers' stop, for abandoned checks to close up

Views = dict[str, BackendView]


def _login_name(target: str) -> str:
    return "Slurm on this machine (its login node)" if target == LOCAL else f"Slurm login node {target}"


@attrs.frozen
class Reconciled:
    """The backend's view of each run that was asked about, and one warning
    per backend that could not be asked."""

    views: dict[str, BackendView] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()


class _Checks:
    """Checks running at once in daemon threads (one that never answers does
    not hold the process up), all due by ``deadline`` (the Clock's monotonic
    seconds); each gives views (or a `Reconciled` of its own) or a warning."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        self._clock = clock
        self._deadline = deadline
        self._done = threading.Condition()
        self._jobs: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []

    def start(self, what: str, runs: Iterable[str], work: Callable[[], Views | Reconciled]) -> None:
        slot: dict[str, Any] = {}
        self._jobs.append((what, tuple(runs), slot))

        def go() -> None:
            try:
                slot["answer"] = work()
            except Unreachable as exc:
                slot["error"] = str(exc).split(": ", 1)[-1]
            except RunplzError as exc:
                slot["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - ps shows its table whatever a backend does
                slot["error"] = f"{type(exc).__name__}: {exc}"
            with self._done:
                slot["done"] = True
                self._done.notify_all()

        threading.Thread(target=go, name=f"runplz-ps {what}", daemon=True).start()

    def wait(self) -> Reconciled:
        left = max(0.0, self._deadline - self._clock.monotonic())
        with self._done:
            self._done.wait_for(lambda: all("done" in slot for _, _, slot in self._jobs), timeout=left)
            finished = [(what, runs, dict(slot)) for what, runs, slot in self._jobs]
        views: Views = {}
        warnings: list[str] = []
        for what, runs, slot in finished:
            answer = slot.get("answer")
            if isinstance(answer, Reconciled):
                views.update(answer.views)
                warnings += answer.warnings
            elif answer is not None:
                views.update(answer)
            else:
                reason = slot.get("error") or f"no answer within {left:.0f}s"
                warnings.append(f"could not check {what}: {reason}")
                views.update({run: NOT_REACHED for run in runs})
        return Reconciled(views, tuple(warnings))

    def unfinished(self) -> bool:
        with self._done:
            return not all("done" in slot for _, _, slot in self._jobs)

    def settle(self, seconds: float) -> None:
        """Wait up to ``seconds`` (real time) for the unfinished checks to end."""
        with self._done:
            self._done.wait_for(lambda: all("done" in slot for _, _, slot in self._jobs), timeout=seconds)


class _Opened:
    """The transports the checks made, each closed once: by its check, or
    (abandoned) by `close_all`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Any] = {}

    def add(self, transport: Any) -> None:
        with self._lock:
            self._open[id(transport)] = transport

    def close(self, transport: Any) -> None:
        with self._lock:
            mine = self._open.pop(id(transport), None) is not None
        if mine:
            transport.close()

    def close_all(self) -> None:
        with self._lock:
            left, self._open = list(self._open.values()), {}
        for transport in left:
            try:
                transport.close()
            except Exception:  # noqa: BLE001 - best effort: ps shows its table whatever happens
                pass


class RunReconciler:
    """``transports(target=SshTarget)`` makes a `Transport` to a box (one that
    gives up connecting well within the budget). ``schedulers(transport=)``
    makes the `BatchScheduler` on a Slurm login node, ``login()`` this machine
    as one (a `Transport`); without them a Slurm run is a warning.
    ``stragglers()``, if given, makes a fence: ``with fence:`` marks every
    program started meanwhile, and ``fence.stop()`` stops those still running
    (`ProcessFence`)."""

    def __init__(
        self, engine: ContainerEngine, instances: Instances, transports: Callable[..., Any], clock: Clock,
        seconds: float = CHECK_SECONDS, stragglers: Callable[[], Any] | None = None,
        schedulers: Callable[..., Any] | None = None, login: Callable[[], Any] | None = None,
    ) -> None:
        self._schedulers = schedulers
        self._login = login
        self._stragglers = stragglers
        self._engine = engine
        self._instances = instances
        self._transports = transports
        self._clock = clock
        self._seconds = seconds

    def check(self, summaries: Sequence[RunSummary]) -> Reconciled:
        """The backend's view of each run of ``summaries`` that `probe_for` picks."""
        groups: dict[Probe, list[str]] = defaultdict(list)
        slurm: dict[str, list[RunSummary]] = defaultdict(list)
        for summary in summaries:
            probe = probe_for(summary)
            if probe is not None:
                groups[probe].append(summary.run)
                if probe.kind == "slurm":
                    slurm[probe.target].append(summary)
        if not groups:
            return Reconciled()
        fence = self._stragglers() if self._stragglers is not None else None
        opened = _Opened()
        with fence if fence is not None else nullcontext():
            deadline = self._clock.monotonic() + self._seconds
            checks = _Checks(self._clock, deadline)
            brev: dict[str, list[str]] = {}
            for probe, runs in groups.items():
                if probe.kind == "docker":
                    checks.start("the local Docker engine", runs, self._docker(runs))
                elif probe.kind == "ssh":
                    checks.start(f"ssh box {probe.target}", runs, self._folders_of(probe.target, runs, opened))
                elif probe.kind == "slurm":
                    checks.start(_login_name(probe.target), runs, self._slurm(probe.target, slurm[probe.target], opened))
                else:
                    brev[probe.target] = runs
            if brev:
                every = [run for runs in brev.values() for run in runs]
                checks.start("Brev (brev ls)", every, lambda: self._brev(brev, deadline - 1.0, opened))
            got = checks.wait()
            if checks.unfinished():
                self._abandon(checks, fence, opened)
        return got

    @staticmethod
    def _abandon(checks: _Checks, fence: Any, opened: _Opened) -> None:
        """Leave nothing of the checks that missed the budget running."""
        if fence is not None:
            fence.stop()
            checks.settle(SETTLE_SECONDS)
        opened.close_all()

    def _docker(self, runs: Sequence[str]) -> Callable[[], Views]:
        def work() -> Views:
            found = [(c.name, c.labels, c.state, c.exit_code) for c in self._engine.containers(RUN_LABEL)]
            return {run: container_view(run, found) for run in runs}

        return work

    def _brev(self, brev: dict[str, list[str]], deadline: float, opened: _Opened) -> Reconciled:
        """One `brev ls` for every Brev run; then, at once, the run folders on the usable boxes."""
        boxes = {box.name: box for box in self._instances.list()}
        views: Views = {}
        folders = _Checks(self._clock, deadline)
        for name, runs in brev.items():
            box = boxes.get(name)
            shown = box_view(name, box.status if box else None, bool(box and box.usable), box.describe() if box else "")
            if shown is None:
                folders.start(f"Brev box {name}", runs, self._folders_of(name, runs, opened, brev=True))
            else:
                views.update({run: shown for run in runs})
        found = folders.wait()
        return Reconciled({**views, **found.views}, found.warnings)

    def _slurm(self, target: str, summaries: Sequence[RunSummary], opened: _Opened) -> Callable[[], Views]:
        """The Slurm runs of one login node: its run folders, then squeue/sacct (`slurm_views`)."""

        def work() -> Views:
            if self._schedulers is None or (target == LOCAL and self._login is None):
                raise RunplzError("this runplz has no Slurm client wired in")
            transport = self._login() if target == LOCAL else self._transports(target=parse_target(target))
            opened.add(transport)
            try:
                transport.connect(wait=0)
                return slurm_views(transport, self._schedulers(transport=transport), summaries)
            finally:
                opened.close(transport)

        return work

    def _folders_of(
        self, target: str, runs: Sequence[str], opened: _Opened, brev: bool = False
    ) -> Callable[[], Views]:
        def work() -> Views:
            where = SshTarget(target) if brev else parse_target(target)
            transport = self._transports(target=where)
            opened.add(transport)
            try:
                transport.connect(wait=0)
                script = FOLDER_SCRIPT.encode()
                result = transport.run(folder_argv(runs), input=script, timeout=SSH_COMMAND_SECONDS)
            finally:
                opened.close(transport)
            report = parse_folder_report(result.stdout)
            if not report and result.exit_code != 0:
                words = (result.stderr or result.stdout).strip().splitlines()
                raise RunplzError(f"reading its run folders failed (exit {result.exit_code}): {words[-1] if words else ''}")
            return {run: folder_view(run, report.get(run)) for run in runs}

        return work
