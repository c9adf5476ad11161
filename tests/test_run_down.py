"""`runplz down`: a live driver is asked to stop; a dead one's leftovers are cleaned up."""

from __future__ import annotations

import pytest

from runplz.domain.run_record import Ended, Note, Phase, Started
from runplz.services.run_down import RunDown
from runplz.testing import FakeBrev, FakeClock, FakeContainerEngine, FakeLedger, FakeRunStore, RecordingConsole

RUN = "20261129-100000-abcdef"


def started(backend: str, target: str) -> Started:
    return Started(RUN, backend, target, "demo", "train", (), (), "/out", 1.0)


@pytest.fixture
def parts():
    store = FakeRunStore()
    clock = FakeClock()
    brev = FakeBrev(clock=clock)
    ledger = FakeLedger()
    engine = FakeContainerEngine()
    down = RunDown(store, clock, RecordingConsole(), engine, brev, ledger)
    return store, brev, ledger, engine, down


def dead(store: FakeRunStore, backend: str, target: str) -> None:
    store.begin(started(backend, target))
    store.append(RUN, Phase("run", 2.0))
    store.kill(RUN)


def test_an_ended_run_is_left_alone(parts):
    store, _, _, engine, down = parts
    store.begin(started("local", "docker"))
    store.append(RUN, Ended(0, "ok", 3.0))
    assert "already ended (ok)" in down.down("last")
    assert engine.removed == [] and store.stopped == []


def test_a_live_driver_is_asked_to_stop_and_waited_for(parts):
    store, _, _, _, down = parts
    store.begin(started("ssh", "gpu1"))
    line = down.down(RUN[:10], wait=5)
    assert store.stopped == [RUN]
    assert "still cleaning up" in line  # the fake driver never reacts


def test_a_dead_local_docker_run_loses_its_container(parts):
    store, _, _, engine, down = parts
    dead(store, "local", "docker")
    assert "removed its container" in down.down("last")
    assert engine.removed == [f"runplz-demo-train-{RUN}"]
    kinds = [type(e) for e in store.events(RUN)]
    assert kinds[-2:] == [Note, Ended] and store.events(RUN)[-1].outcome == "interrupted"
    assert "already ended" in down.down("last")  # a second down does nothing


def test_a_dead_ephemeral_brev_run_loses_its_box(parts):
    store, brev, ledger, _, down = parts
    box = f"runplz-demo-train-{RUN}"
    ledger.record(box, "brev")
    brev.boxes[box] = brev.boxes.get(box) or _made(brev, box)
    dead(store, "brev", box)
    assert "deleted its ephemeral Brev box" in down.down("last")
    assert ("delete", box) in brev.calls and ledger.records() == ()


def test_a_dead_ssh_run_without_a_way_to_the_box_says_so(parts):
    store, brev, _, _, down = parts
    dead(store, "ssh", "gpu1")
    assert "could not reach the box" in down.down("last")


def test_a_dead_native_run_says_what_it_cannot_do(parts):
    store, brev, _, _, down = parts
    dead(store, "local", "native")
    assert "cannot reach what it left on local (native)" in down.down("last")


def _made(brev: FakeBrev, name: str):
    brev.catalog.append({"type": "cpu-1", "provider": "x", "gpu_name": "", "gpu_count": 0, "vram_per_gpu_gb": 0,
                         "vcpus": 2, "ram_gb": 4, "disk_min_gb": 0, "disk_max_gb": 0, "boot_time_seconds": 10,
                         "stoppable": True, "price_per_hour": 0.1})
    brev.create(name, ["cpu-1"])
    return brev.boxes[name]


def test_a_live_driver_that_cannot_be_signalled_is_refused_not_cleaned_up(parts):
    from runplz.services.run_down import DriverElsewhere

    store, brev, ledger, engine, _ = parts

    class Elsewhere(FakeRunStore):
        def stop_driver(self, run_id):
            return False

    elsewhere = Elsewhere()
    elsewhere.begin(started("local", "docker"))
    down = RunDown(elsewhere, FakeClock(), RecordingConsole(), engine, brev, ledger)
    with pytest.raises(DriverElsewhere, match="cannot be signalled from here"):
        down.down("last")
    assert engine.removed == [] and not any(isinstance(e, Ended) for e in elsewhere.events(RUN))
