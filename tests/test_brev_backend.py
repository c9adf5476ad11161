"""The brev backend's lifecycle over FakeBrev and FakeLedger, with a stand-in run path."""

from __future__ import annotations

import pytest

from runplz import BrevConfig, Image, RemoteError
from runplz.adapters.fake_brev import BrevFaults, FakeBox, FakeBrev
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_ledger import FakeLedger
from runplz.domain.brev_instances import InstanceFailed, InstanceNotReady
from runplz.domain.brev_lifecycle import BoxUnusable, NotStoppable, TypoGuard
from runplz.domain.errors import ConfigError, RunTimeout
from runplz.domain.picker import NoMatch
from testsupport.brev_catalog import CATALOG

from .brev_stubs import StubRuns, backend, ephemeral, spec_call, verbs


@pytest.fixture
def brev():
    return FakeBrev(CATALOG)


def box(brev: FakeBrev, name: str, status: str = "RUNNING", kind: str = "g5.xlarge") -> FakeBox:
    stoppable = next(row["stoppable"] for row in CATALOG if row["type"] == kind)
    made = FakeBox(name, kind, stoppable, status=status, build_status="COMPLETED")
    brev.boxes[name] = made
    return made


# ---------------------------------------------------------------- ephemeral


def test_ephemeral_picks_creates_once_runs_and_deletes(brev):
    console, ledger = RecordingConsole(), FakeLedger()
    runs = StubRuns(brev)
    value = backend(brev, ledger, runs=runs, console=console).call(spec_call(gpu="A10G", min_disk=80))
    (name,) = {box for box, _, _ in runs.runs}
    assert value == {"ran": "train", "on": name}
    assert name.startswith("runplz-app-train-")
    assert runs.runs == [(name, "inline", "train")]  # container mode runs inline
    assert ephemeral(brev) == [] and ledger.records() == ()
    assert verbs(brev) == ["search --help", "ls", "search", "create", "ls", "refresh", "delete"]
    (create,) = [detail for verb, detail in brev.calls if verb == "create"]
    assert create.types == ("g5.xlarge", "g5.2xlarge")  # the choice and its fallback, one create
    assert (create.mode, create.container_image, create.min_disk_gb) == ("container", "python:3.11-slim", 80)
    infos = " | ".join(console.infos)
    assert "picked Brev type g5.xlarge for train: 1 x A10G, 4 vCPUs, 16 GB RAM, $1.006/h (aws)" in infos
    assert "fallbacks: g5.2xlarge $1.212/h" in infos
    for step in (f"creating ephemeral Brev box {name}", f"waiting up to 1800s for Brev box {name}",
                 f"Brev box {name} is usable", f"`ssh {name}` reaches the box", f"deleting Brev box {name}"):
        assert step in infos


@pytest.mark.parametrize(
    "raised",
    [RemoteError("ValueError", "bad", "tb", 1), RunTimeout("over time"), KeyboardInterrupt(), OSError("broken pipe")],
    ids=["remote-error", "timeout", "interrupt", "exception"],
)
def test_ephemeral_box_is_deleted_however_the_run_ends(brev, raised):
    def fail(call, box):
        raise raised

    ledger = FakeLedger()
    with pytest.raises(type(raised)):
        backend(brev, ledger, runs=StubRuns(brev, fail)).call(spec_call(gpu="T4"))
    assert ephemeral(brev) == [] and ledger.records() == ()
    assert verbs(brev)[-1] == "delete"


@pytest.mark.parametrize(
    "faults, error",
    [
        (BrevFaults(create_fails=True), InstanceFailed),
        (BrevFaults(boot_polls=500), InstanceNotReady),
        (BrevFaults(no_capacity=("g5.xlarge", "g5.2xlarge")), Exception),
    ],
    ids=["create-failed", "never-ready", "no-capacity"],
)
def test_a_box_that_never_comes_up_is_deleted_or_forgotten(faults, error):
    brev = FakeBrev(CATALOG, faults=faults)
    ledger = FakeLedger()
    with pytest.raises(error):
        backend(brev, ledger, config=BrevConfig(ssh_ready_wait_seconds=60)).call(spec_call(gpu="A10G"))
    assert ephemeral(brev) == [] and ledger.records() == ()


def test_the_ledger_records_the_box_before_create():
    brev = FakeBrev(CATALOG)
    ledger = FakeLedger()
    seen = []

    class Watching:
        def __getattr__(self, name):
            return getattr(brev, name)

        def create(self, name, *args, **kwargs):
            seen.append([record.name for record in ledger.records()])
            return brev.create(name, *args, **kwargs)

    backend(brev, ledger, instances=Watching()).call(spec_call(gpu="T4"))
    (created,) = [detail.name for verb, detail in brev.calls if verb == "create"]
    assert seen == [[created]]
    assert ledger.records() == ()


def test_a_pinned_type_skips_the_search(brev):
    config = BrevConfig(instance_type="n1-highmem-4:nvidia-tesla-t4:1", mode="vm", use_docker=False)
    runs = StubRuns(brev)
    backend(brev, config=config, runs=runs).call(spec_call(gpu="A100", min_disk=50))
    assert "search" not in verbs(brev)
    (create,) = [detail for verb, detail in brev.calls if verb == "create"]
    assert (create.types, create.mode, create.container_image, create.min_disk_gb) == (
        ("n1-highmem-4:nvidia-tesla-t4:1",), "vm", None, 50
    )
    assert runs.runs[0][1] == "native"


def test_vm_mode_with_docker_runs_docker(brev):
    runs = StubRuns(brev)
    backend(brev, config=BrevConfig(mode="vm"), runs=runs).call(spec_call(min_cpu=4))
    assert runs.runs[0][1] == "docker"
    (create,) = [detail for verb, detail in brev.calls if verb == "create"]
    assert (create.types, create.mode, create.container_image) == (("cpu-4x16", "cpu-16x64"), "vm", None)


def test_fallback_types_go_in_one_create():
    brev = FakeBrev(CATALOG, faults=BrevFaults(no_capacity=("g5.xlarge",)))
    runs = StubRuns(brev, lambda call, box: brev.boxes[box].instance_type)
    assert backend(brev, runs=runs).call(spec_call(gpu="A10G")) == "g5.2xlarge"
    assert verbs(brev).count("create") == 1


def test_nothing_fits_names_the_constraint_and_creates_nothing(brev):
    ledger = FakeLedger()
    with pytest.raises(NoMatch, match="no Brev offer has H200 GPUs") as caught:
        backend(brev, ledger).call(spec_call(gpu="H200"))
    assert caught.value.constraint == "gpu"
    assert "create" not in verbs(brev) and ledger.records() == ()


@pytest.mark.parametrize(
    "config, image",
    [
        (BrevConfig(), Image.from_dockerfile("Dockerfile")),
        (BrevConfig(mode="vm", use_docker=False), Image.from_dockerfile("Dockerfile")),
    ],
    ids=["container-mode", "vm-native"],
)
def test_refused_images_call_no_brev_at_all(brev, config, image):
    with pytest.raises(ConfigError, match=r"from_dockerfile|Dockerfile step"):
        backend(brev, config=config).call(spec_call(image=image))
    assert brev.calls == []


def test_a_dockerfile_runs_in_vm_mode_with_docker(brev):
    runs = StubRuns(brev)
    backend(brev, config=BrevConfig(mode="vm"), runs=runs).call(spec_call(image=Image.from_dockerfile("Dockerfile")))
    assert runs.runs[0][1] == "docker"


# ---------------------------------------------------------------- orphans and teardown failures


def test_an_orphan_is_reaped_on_the_next_run_and_said(brev):
    ledger = FakeLedger(driver=41)
    box(brev, "runplz-app-train-20260101-000000-abcdef")
    ledger.record("runplz-app-train-20260101-000000-abcdef", "brev")
    ledger.record("runplz-app-train-gone", "brev")  # its box is gone already
    ledger.end_driver(41)
    ledger.driver = 42
    console = RecordingConsole()
    backend(brev, ledger, console=console).call(spec_call(min_cpu=2))
    assert ephemeral(brev) == [] and ledger.records() == ()
    assert "deleted Brev box runplz-app-train-20260101-000000-abcdef left by a driver that died (pid 41)" in console.infos
    assert any(m.startswith("forgot Brev box runplz-app-train-gone") for m in console.infos)


def test_a_live_drivers_boxes_are_not_reaped(brev):
    ledger = FakeLedger(driver=7)
    box(brev, "runplz-other-run")
    ledger.record("runplz-other-run", "brev")
    backend(brev, ledger).call(spec_call(min_cpu=2))
    assert ephemeral(brev) == ["runplz-other-run"]


def test_a_failed_delete_is_a_warning_naming_the_command_and_the_run_error_wins():
    brev = FakeBrev(CATALOG, faults=BrevFaults(transient={"delete": 8}))
    ledger, console = FakeLedger(), RecordingConsole()

    def fail(call, box):
        raise RemoteError("ValueError", "the run's own error", "", 3)

    with pytest.raises(RemoteError, match="the run's own error"):
        backend(brev, ledger, runs=StubRuns(brev, fail), console=console).call(spec_call(gpu="T4"))
    (name,) = ephemeral(brev)
    (warning,) = console.warnings
    assert f"could not delete Brev box {name}" in warning and f"`brev delete {name}`" in warning
    assert [record.name for record in ledger.records()] == [name]  # the next run reaps it


def test_a_second_interrupt_during_teardown_does_not_skip_the_delete(brev):
    interrupts = [KeyboardInterrupt()]

    class Jumpy:
        def __getattr__(self, name):
            return getattr(brev, name)

        def delete(self, name):
            if interrupts:
                raise interrupts.pop()
            return brev.delete(name)

    def ctrl_c(call, box):
        raise KeyboardInterrupt()

    console = RecordingConsole()
    with pytest.raises(KeyboardInterrupt):
        backend(brev, runs=StubRuns(brev, ctrl_c), instances=Jumpy(), console=console).call(spec_call(gpu="T4"))
    assert ephemeral(brev) == []
    assert any("interrupted while deleting" in w for w in console.warnings)


def test_an_interrupt_that_hit_a_delete_that_went_through_is_fine(brev):
    class Late:
        fired = False

        def __getattr__(self, name):
            return getattr(brev, name)

        def delete(self, name):
            brev.delete(name)
            if not Late.fired:
                Late.fired = True
                raise KeyboardInterrupt()

    ledger = FakeLedger()
    with pytest.raises(KeyboardInterrupt):
        backend(brev, ledger, instances=Late()).call(spec_call(gpu="T4"))
    assert ephemeral(brev) == [] and ledger.records() == ()


# ---------------------------------------------------------------- named boxes


def test_named_box_attaches_and_is_stopped_when_the_app_is_done(brev):
    box(brev, "my-box")
    runs = StubRuns(brev)
    run = backend(brev, instance="my-box", runs=runs)
    run.call(spec_call("a"))
    run.call(spec_call("b"))
    assert [r[0] for r in runs.runs] == ["my-box", "my-box"]
    assert brev.boxes["my-box"].status == "RUNNING"  # one box serves the whole invocation
    run.close()
    run.close()
    assert brev.boxes["my-box"].status == "STOPPED"
    assert verbs(brev).count("stop") == 1 and "create" not in verbs(brev) and "start" not in verbs(brev)
    assert verbs(brev).count("refresh") == 1


def test_a_stopped_named_box_is_started_first(brev):
    box(brev, "my-box", status="STOPPED")
    console = RecordingConsole()
    run = backend(brev, instance="my-box", console=console)
    assert run.call(spec_call())["on"] == "my-box"
    assert verbs(brev).index("start") < verbs(brev).index("refresh")
    assert any(m.startswith("starting Brev box my-box (it is STOPPED") for m in console.infos)
    run.close()
    assert brev.boxes["my-box"].status == "STOPPED"


def test_a_stopping_named_box_is_started_once_it_has_stopped(brev):
    made = box(brev, "my-box", status="STOPPING")
    polls = []

    class Stopping:
        def __getattr__(self, name):
            return getattr(brev, name)

        def list(self):
            polls.append(made.status)
            if len(polls) == 4:  # the arrival check, then 3 polls while it stops
                made.status = "STOPPED"
            return brev.list()

    assert backend(brev, instance="my-box", instances=Stopping()).call(spec_call())["on"] == "my-box"
    assert polls[:4] == ["STOPPING"] * 4 and brev.clock.sleeps[:2] == [2.0, 4.0]
    assert verbs(brev).count("start") == 1


def test_a_booting_named_box_is_waited_for():
    brev = FakeBrev(CATALOG, faults=BrevFaults(boot_polls=2))
    made = box(brev, "my-box", status="STARTING")
    made.polls_left = 2
    made.build_status = "PENDING"
    assert backend(brev, instance="my-box").call(spec_call())["on"] == "my-box"
    assert "start" not in verbs(brev)


def test_typo_guard_creates_nothing(brev):
    box(brev, "my-box")
    run = backend(brev, instance="my-bx")
    with pytest.raises(TypoGuard, match="no Brev instance named my-bx"):
        run.call(spec_call(gpu="T4"))
    run.close()
    assert verbs(brev) == ["search --help", "ls"]


def test_a_failed_named_box_is_refused(brev):
    box(brev, "my-box", status="FAILURE")
    with pytest.raises(BoxUnusable):
        backend(brev, instance="my-box").call(spec_call())
    assert brev.boxes["my-box"].status == "FAILURE"


def test_auto_create_the_first_function_pins_the_shape(brev):
    config = BrevConfig(auto_create_instances=True, on_finish="delete")
    runs = StubRuns(brev, lambda call, box: brev.boxes[box].instance_type)
    run = backend(brev, config=config, instance="fresh", runs=runs)
    assert run.call(spec_call("prep", min_cpu=2)) == "cpu-2x8-nostop"
    assert run.call(spec_call("train", gpu="A100")) == "cpu-2x8-nostop"  # attaches: the shape stays
    assert verbs(brev).count("create") == 1
    run.close()
    assert brev.boxes == {}


@pytest.mark.parametrize("on_finish, status", [("stop", "STOPPED"), ("delete", None), ("leave", "RUNNING")])
def test_on_finish_applies_to_named_boxes(brev, on_finish, status):
    box(brev, "my-box")
    run = backend(brev, config=BrevConfig(on_finish=on_finish), instance="my-box")
    run.call(spec_call())
    assert brev.boxes["my-box"].status == "RUNNING"
    run.close()
    assert (brev.boxes["my-box"].status if "my-box" in brev.boxes else None) == status


def test_named_box_on_finish_applies_after_a_failed_run_too(brev):
    box(brev, "my-box", status="STOPPED")

    def fail(call, where):
        raise RemoteError("ValueError", "x", "", 1)

    run = backend(brev, instance="my-box", runs=StubRuns(brev, fail))
    with pytest.raises(RemoteError):
        run.call(spec_call())
    run.close()
    assert brev.boxes["my-box"].status == "STOPPED"


def test_stop_on_a_box_that_cannot_stop_is_refused_before_running(brev):
    box(brev, "my-box", kind="lambda_A10_1x")
    runs = StubRuns(brev)
    run = backend(brev, instance="my-box", runs=runs)
    with pytest.raises(NotStoppable, match="lambda_A10_1x cannot be stopped"):
        run.call(spec_call(gpu="A10"))
    run.close()
    assert runs.runs == [] and brev.boxes["my-box"].status == "RUNNING"
    assert "stop" not in verbs(brev)


@pytest.mark.parametrize(
    "config, spec",
    [
        (BrevConfig(auto_create_instances=True), {"gpu": "A10"}),  # only lambda_A10_1x has A10s
        (BrevConfig(auto_create_instances=True, instance_type="hyperstack_A100x2"), {}),
    ],
    ids=["picked", "pinned"],
)
def test_stop_on_a_new_named_box_that_could_not_stop_is_refused_before_create(brev, config, spec):
    with pytest.raises(NotStoppable):
        backend(brev, config=config, instance="fresh").call(spec_call(**spec))
    assert "create" not in verbs(brev) and brev.boxes == {}


def test_stop_picks_among_stoppable_types_only(brev):
    config = BrevConfig(auto_create_instances=True)
    console = RecordingConsole()
    run = backend(brev, config=config, instance="fresh", console=console)
    run.call(spec_call(min_cpu=2))  # the cheapest CPU type (cpu-2x8-nostop) cannot stop
    assert brev.boxes["fresh"].instance_type == "cpu-4x16"
    assert any("stoppable types only" in m for m in console.infos)
    run.close()
    assert brev.boxes["fresh"].status == "STOPPED"


def test_stop_on_an_unlisted_type_is_allowed(brev):
    box(brev, "my-box").instance_type = "retired-type"
    run = backend(brev, instance="my-box")
    run.call(spec_call())
    run.close()
    assert brev.boxes["my-box"].status == "STOPPED"
    assert verbs(brev).count("search") == 2  # looked in GPU and CPU types, once


# ---------------------------------------------------------------- creates cut short (review findings)


def test_a_create_cut_short_keeps_the_record_until_a_later_run_sees_the_box(brev):
    console, ledger = RecordingConsole(), FakeLedger()
    real_create = brev.create

    def interrupted(name, types, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the request may already have reached Brev

    brev.create = interrupted
    with pytest.raises(KeyboardInterrupt):
        backend(brev, ledger, console=console).call(spec_call(gpu="A10G"))
    (kept,) = ledger.records()
    assert any("cut short" in line for line in console.warnings)
    real_create(kept.name, ["g5.xlarge"])  # the box shows up after all
    ledger.end_driver(ledger.driver)
    brev.create = real_create
    ledger.driver = 2
    backend(brev, ledger, console=console).call(spec_call(gpu="A10G"))
    assert ephemeral(brev) == [] and ledger.records() == ()


def test_a_named_auto_create_cut_short_still_gets_its_on_finish(brev):
    real_create = brev.create

    def lost_reply(name, types, **kwargs):
        real_create(name, types, **kwargs)
        raise KeyboardInterrupt  # the box was made; the driver never heard

    brev.create = lost_reply
    made = backend(brev, config=BrevConfig(auto_create_instances=True, on_finish="delete"), instance="my-new-box")
    with pytest.raises(KeyboardInterrupt):
        made.call(spec_call(gpu="A10G"))
    assert "my-new-box" in brev.boxes
    made.close()
    assert "my-new-box" not in brev.boxes
