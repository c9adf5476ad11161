"""A state machine over the brev backend's lifecycle, with faults at every step.

Drivers come and go over one fake Brev account and one ledger. Each driver gets
its own faults: transient and final CLI errors, a create that fails or does
nothing, no capacity, slow boots, interrupts during teardown, a run that fails,
times out or is interrupted, and death (SIGKILL: from some step on, nothing it
does reaches the world, and no teardown runs). Invariants:

- every ephemeral box that exists is in the ledger (nothing billed is untracked);
- after a call whose driver lived and whose deletes could work, no ephemeral
  box is left at all (its own was deleted, dead drivers' boxes were reaped);
- a named box is never deleted except under on_finish="delete";
- there is never a create on a typo'd name (a missing named box without
  auto_create_instances=True).
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from runplz import BrevConfig, RemoteError
from runplz.adapters.fake_brev import BrevFaults, FakeBox, FakeBrev
from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_ledger import FakeLedger
from runplz.domain.errors import RunplzError, RunTimeout
from testsupport.brev_catalog import CATALOG

from .brev_stubs import StubRuns, backend, spec_call

NAMES = ("alpha", "beta")
VERBS = ("search", "ls", "create", "start", "stop", "delete", "refresh")
OUTCOMES = ("ok", "remote-error", "timeout", "interrupt", "die")


class DriverDied(BaseException):
    """The driver was killed (SIGKILL): nothing after this point happens."""


class Mortal:
    """Forwards to ``inner`` until the driver dies at step ``death`` (counted over
    every brev, ledger and run call of the driver, shared by its proxies)."""

    def __init__(self, inner, life: dict, interrupts: int = 0, spare: frozenset = frozenset()) -> None:
        self._inner, self._life, self._interrupts, self._spare = inner, life, interrupts, spare

    def _step(self) -> None:
        life = self._life
        life["steps"] += 1
        if life["dead"] or life["steps"] == life["death"]:
            life["dead"] = True
            raise DriverDied()

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._step()
            if name == "delete" and self._interrupts > 0 and args[0] not in self._spare:
                self._interrupts -= 1
                raise KeyboardInterrupt()
            return attr(*args, **kwargs)

        return call


FAULTS = {
    "create-fails": {"create_fails": True},
    "create-does-nothing": {"create_does_nothing": True},
    "lost-create-reply": {"lost_create_replies": 1},
    "no-capacity-first": {"no_capacity": ("g5.xlarge", "cpu-4x16")},
    "no-capacity-any": {"no_capacity": ("g5.xlarge", "g5.2xlarge", "cpu-4x16", "cpu-16x64")},
    "slow-boot": {"boot_polls": 3},
    "unauthorized": {"unauthorized": True},
}


@st.composite
def faults_st(draw):
    """None, one or two faults: a fault-free run must stay common."""
    chosen = draw(st.lists(st.sampled_from(sorted(FAULTS)), max_size=2, unique=True))
    fields = {}
    for name in chosen:
        fields.update(FAULTS[name])
    transient = draw(st.dictionaries(st.sampled_from(VERBS), st.integers(1, 5), max_size=2))
    return BrevFaults(transient=transient, **fields)


specs = st.sampled_from([{"gpu": "A10G"}, {"min_cpu": 4}, {"gpu": "T4"}, {"gpu": "A10G"}, {"gpu": "H200"}])


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world: dict[str, FakeBox] = {}
        self.clock = FakeClock()
        self.ledger = FakeLedger()
        self.pids = itertools.count(100)
        self.named_before: set[str] = set()
        self.allowed_deletes: set[str] = set()

    # ------------------------------------------------------------ one driver

    def _driver(self, faults: BrevFaults, death: int, delete_interrupts: int, outcome: str):
        pid = next(self.pids)
        self.ledger.driver = pid
        life = {"steps": 0, "death": death, "dead": False}
        brev = FakeBrev(CATALOG, faults=faults, clock=self.clock, boxes=self.world)
        mortal = Mortal(brev, life, delete_interrupts, spare=frozenset(self.world))  # Ctrl-C hits its own box

        def behaviour(call, box):
            life["steps"] += 1
            if outcome == "die" or life["dead"] or life["steps"] == death:
                life["dead"] = True
                raise DriverDied()
            if outcome == "remote-error":
                raise RemoteError("ValueError", "boom", "", 1)
            if outcome == "timeout":
                raise RunTimeout("too slow")
            if outcome == "interrupt":
                raise KeyboardInterrupt()
            return box

        runs = StubRuns(brev, behaviour)
        return pid, brev, mortal, Mortal(self.ledger, life), runs, life

    def _run(self, pid, life, go) -> None:
        try:
            go()
        except (RunplzError, KeyboardInterrupt, DriverDied):
            pass
        finally:
            self.ledger.end_driver(pid)  # the driver process ends, one way or another

    @staticmethod
    def _teardown_can_work(faults: BrevFaults, life: dict, delete_interrupts: int) -> bool:
        counts = faults.transient
        return not (
            life["dead"] or faults.unauthorized or delete_interrupts >= 3
            or counts.get("delete", 0) >= 4 or counts.get("ls", 0) >= 4
        )

    # ------------------------------------------------------------ rules

    @rule(name=st.sampled_from(NAMES), kind=st.sampled_from(["g5.xlarge", "lambda_A10_1x"]),
          status=st.sampled_from(["RUNNING", "STOPPED"]))
    def user_makes_a_named_box(self, name, kind, status):
        if name in self.world:
            return
        stoppable = kind == "g5.xlarge"
        self.world[name] = FakeBox(name, kind, stoppable, status=status, build_status="COMPLETED")

    @rule(faults=faults_st(), spec=specs, outcome=st.sampled_from(OUTCOMES), death=st.integers(0, 14),
          delete_interrupts=st.integers(0, 3))
    def ephemeral_call(self, faults, spec, outcome, death, delete_interrupts):
        pid, brev, mortal, ledger, runs, life = self._driver(faults, death, delete_interrupts, outcome)
        run = backend(brev, ledger, runs=runs, instances=mortal, catalog=mortal, console=RecordingConsole())
        self._run(pid, life, lambda: run.call(spec_call(**spec)))
        self._check_creates(brev, auto_create=False)
        if self._teardown_can_work(faults, life, delete_interrupts):
            assert [n for n in self.world if n.startswith("runplz-")] == []

    @rule(faults=faults_st(), spec=specs, outcome=st.sampled_from(OUTCOMES), death=st.integers(0, 14),
          name=st.sampled_from(NAMES), auto_create=st.booleans(),
          on_finish=st.sampled_from(["stop", "delete", "leave"]), calls=st.integers(1, 2))
    def named_invocation(self, faults, spec, outcome, death, name, auto_create, on_finish, calls):
        pid, brev, mortal, ledger, runs, life = self._driver(faults, death, 0, outcome)
        config = BrevConfig(auto_create_instances=auto_create, on_finish=on_finish, ssh_ready_wait_seconds=120)
        run = backend(brev, ledger, config=config, instance=name, runs=runs, instances=mortal, catalog=mortal)
        if on_finish == "delete":
            self.allowed_deletes.add(name)

        def go():
            try:
                for _ in range(calls):
                    run.call(spec_call(**spec))
            finally:
                if not life["dead"]:
                    run.close()

        self._run(pid, life, go)
        self._check_creates(brev, auto_create=auto_create)

    def _check_creates(self, brev: FakeBrev, auto_create: bool) -> None:
        for verb, detail in brev.calls:
            if verb == "create" and not detail.name.startswith("runplz-"):
                assert auto_create, f"created {detail.name} without auto_create_instances"
                assert detail.name not in self.named_before, f"created {detail.name}, which existed"

    # ------------------------------------------------------------ invariants

    @invariant()
    def every_ephemeral_box_is_in_the_ledger(self):
        recorded = {record.name for record in self.ledger.records()}
        for name in self.world:
            if name.startswith("runplz-"):
                assert name in recorded, f"{name} is billing and nobody knows"

    @invariant()
    def named_boxes_go_only_under_on_finish_delete(self):
        gone = self.named_before - set(self.world)
        assert gone <= self.allowed_deletes, f"named boxes {gone} were deleted"
        self.allowed_deletes = set()
        self.named_before = {name for name in self.world if not name.startswith("runplz-")}

    def teardown(self):
        pid, brev, mortal, ledger, runs, life = self._driver(BrevFaults(), 0, 0, "ok")
        backend(brev, ledger, runs=runs, instances=mortal, catalog=mortal).call(spec_call(min_cpu=4))
        self.ledger.end_driver(pid)
        assert [n for n in self.world if n.startswith("runplz-")] == []
        assert [r.name for r in self.ledger.records() if r.name.startswith("runplz-")] == []


Lifecycle.TestCase.settings = settings(
    max_examples=80, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLifecycle = Lifecycle.TestCase
