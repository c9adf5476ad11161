"""`runplz down`: a live driver is asked to stop; a dead one's leftovers are cleaned up."""

from __future__ import annotations

import pytest

from runplz.domain.job_stop import JobLeftRunning
from runplz.domain.run_record import Ended, Note, Phase, Started, Teardown
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


def test_a_dead_ssh_run_without_a_way_to_the_box_says_so_and_stays_open(parts):
    from runplz.services.run_down import DownUnfinished

    store, brev, _, _, down = parts
    dead(store, "ssh", "gpu1")
    with pytest.raises(DownUnfinished, match=r"could not reach the box \(no transport\); the run stays open"):
        down.down("last")
    assert not any(isinstance(e, Ended) for e in store.events(RUN))
    assert store.events(RUN)[-1].text == "runplz down: its driver was gone; could not reach the box (no transport); the run stays open"


def test_an_ssh_box_that_does_not_answer_leaves_the_run_open_for_another_down():
    from runplz.services.run_down import DownUnfinished
    from runplz.testing import FakeTransport

    store, clock = FakeRunStore(), FakeClock()

    def unreachable(target):
        transport = FakeTransport(name=target.host)
        transport.unreachable_until = float("inf")
        return transport

    down = RunDown(store, clock, RecordingConsole(), FakeContainerEngine(), FakeBrev(clock=clock), FakeLedger(),
                   transports=unreachable, bundle_digest=lambda: "0" * 64)
    dead(store, "ssh", "gpu1")
    with pytest.raises(DownUnfinished, match="could not stop the job on gpu1: "):
        down.down("last")
    assert not any(isinstance(e, Ended) for e in store.events(RUN))
    with pytest.raises(DownUnfinished):  # asked again, it tries again (not "already ended")
        down.down("last")


def test_a_dead_native_run_with_nothing_left_says_so(parts):
    store, _, _, _, down = parts
    dead(store, "local", "native")
    assert "no process of its job was left running" in down.down("last")
    assert store.events(RUN)[-1].outcome == "interrupted"


def test_a_dead_native_runs_job_is_stopped(parts):
    store, _, _, _, down = parts
    dead(store, "local", "native")
    store.start_job(RUN, processes=3)
    store.start_job("20261129-100000-other0")  # another run's job is not this run's
    assert "stopped its job (3 processes)" in down.down("last")
    assert store.jobs == {"20261129-100000-other0": 1}


def test_a_host_that_cannot_look_for_the_native_job_says_so(parts):
    store, _, _, _, down = parts
    dead(store, "local", "native")
    store.can_look = False
    assert "cannot look for its job's processes on this system" in down.down("last")


class StuckJobStore(FakeRunStore):
    """A host where some of the job's processes outlive SIGKILL (stuck in the
    kernel), and one process's environment could not be read."""

    def stop_job(self, run_id: str) -> int | None:
        super().stop_job(run_id)
        raise JobLeftRunning(5, alive=(4242, 4243), unchecked=(77,))


def test_a_native_job_that_would_not_stop_is_not_reported_stopped():
    store = StuckJobStore()
    clock = FakeClock()
    down = RunDown(store, clock, RecordingConsole(), FakeContainerEngine(), FakeBrev(clock=clock), FakeLedger())
    dead(store, "local", "native")
    line = down.down("last")
    assert "stopped its job" not in line
    assert "2 processes of its job would not stop (pids 4242, 4243), even after SIGKILL; 3 of 5 stopped" in line
    assert "1 process in uninterruptible sleep could not be checked for its mark (pid 77)" in line
    assert store.events(RUN)[-1].outcome == "interrupted"
    assert "would not stop" in store.events(RUN)[-2].text


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


def named(store: FakeRunStore, brev: FakeBrev, action: str | None, box: str = "my-box") -> None:
    _made(brev, box)
    brev.list()  # it boots
    store.begin(started("brev", box))
    if action is not None:
        store.append(RUN, Teardown(box, action, 1.5))
    store.append(RUN, Phase("run", 2.0))
    store.kill(RUN)


@pytest.mark.parametrize("action, status, said", [
    ("stop", "STOPPED", "stopped Brev box my-box (on_finish='stop')"),
    ("delete", None, "deleted Brev box my-box (on_finish='delete')"),
    ("leave", "RUNNING", "left Brev box my-box as it is (on_finish='leave')"),
    (None, "RUNNING", "its record does not say what on_finish it was due"),
])
def test_a_dead_named_brev_run_gets_the_on_finish_its_record_says(parts, action, status, said):
    store, brev, ledger, _, down = parts
    named(store, brev, action)
    line = down.down("last")
    assert said in line and "could not reach the box (no transport)" in line  # the job first, then the box
    box = brev.boxes.get("my-box")
    assert (box.status if box else None) == status
    assert ledger.records() == ()
    assert store.events(RUN)[-1].outcome == "interrupted"


def test_a_named_box_another_live_run_uses_is_not_stopped(parts):
    store, brev, _, _, down = parts
    named(store, brev, "stop")
    later = "20261129-110000-fedcba"
    store.driver = 7
    store.begin(Started(later, "brev", "my-box", "demo", "train", (), (), "/out", 5.0))
    assert "left Brev box my-box running (on_finish='stop'): run 20261129-110000-fedcba is using it now" in down.down(RUN)
    assert brev.boxes["my-box"].status == "RUNNING"


def test_a_named_box_that_failed_to_stop_says_how_to_stop_it(parts):
    store, brev, _, _, down = parts
    named(store, brev, "stop")
    brev.boxes["my-box"].stoppable = False
    assert "stopping Brev box my-box failed" in down.down("last") and "`brev stop my-box`" in store.events(RUN)[-2].text


def test_a_box_brev_no_longer_lists_is_not_reached_for(parts):
    store, brev, ledger, _, down = parts
    box = f"runplz-demo-train-{RUN}"
    dead(store, "brev", box)  # its ephemeral name, though the ledger lost it
    line = down.down("last")
    assert f"Brev no longer lists box {box}" in line and "could not reach" not in line


def test_an_ephemeral_box_is_known_by_its_name_without_its_ledger_record(parts):
    store, brev, ledger, _, down = parts
    box = f"runplz-demo-train-{RUN}"
    _made(brev, box)
    dead(store, "brev", box)
    assert "deleted its ephemeral Brev box" in down.down("last")
    assert box not in brev.boxes


def test_a_stopped_named_box_is_not_reached_for(parts):
    store, brev, _, _, down = parts
    named(store, brev, "stop")
    brev.stop("my-box")
    line = down.down("last")
    assert "Brev box my-box is STOPPED, so no job runs on it" in line and "could not reach" not in line
    assert "Brev box my-box was stopped already (on_finish='stop')" in line
    assert [call for call in brev.calls if call[0] == "stop"] == [("stop", "my-box")]  # the test's own, no second
    assert brev.boxes["my-box"].status == "STOPPED"


def test_ssh_outputs_this_machine_cannot_write_are_not_called_a_failed_stop(tmp_path):
    from runplz.adapters.local_transport import LocalTransport
    from runplz.adapters.subprocess_runner import SubprocessRunner
    from runplz.domain.remote_layout import run_dir
    from runplz.services.run_down import DownUnfinished

    home = tmp_path / "box"
    out = home / run_dir(RUN) / "out"
    out.mkdir(parents=True)
    (out / "a.txt").write_text("a")
    (tmp_path / "mine").write_text("a file where the outputs folder's parent should be")
    store, clock = FakeRunStore(), FakeClock()
    store.begin(Started(RUN, "ssh", "gpu1", "demo", "train", (), (), str(tmp_path / "mine" / "out"), 1.0))
    store.kill(RUN)
    down = RunDown(store, clock, RecordingConsole(), FakeContainerEngine(), FakeBrev(clock=clock), FakeLedger(),
                   transports=lambda target: LocalTransport(SubprocessRunner(), str(home), name=target.host),
                   bundle_digest=lambda: "0" * 64)
    with pytest.raises(DownUnfinished, match=r"stopped its job on gpu1, but its outputs did not come home \(") as failed:
        down.down("last")
    assert f"they stay in {run_dir(RUN)}/out there; the run stays open" in str(failed.value)
    assert (out / "a.txt").read_text() == "a" and not any(isinstance(e, Ended) for e in store.events(RUN))
    (tmp_path / "mine").unlink()
    assert "stopped its job on gpu1 and brought 1 bytes of outputs" in down.down("last")
    assert store.events(RUN)[-1].outcome == "interrupted" and (tmp_path / "mine" / "out" / "a.txt").read_text() == "a"


def test_a_container_that_could_not_be_removed_leaves_the_run_open():
    from runplz.domain.errors import CommandError
    from runplz.services.run_down import DownUnfinished

    class Stuck(FakeContainerEngine):
        def remove(self, name):
            raise CommandError(f"docker rm -f {name} failed: Cannot connect to the Docker daemon")

    store, clock = FakeRunStore(), FakeClock()
    down = RunDown(store, clock, RecordingConsole(), Stuck(), FakeBrev(clock=clock), FakeLedger())
    dead(store, "local", "docker")
    with pytest.raises(DownUnfinished, match="removing container runplz-demo-train-.* failed: .*Docker daemon; the run stays open"):
        down.down("last")
    assert not any(isinstance(e, Ended) for e in store.events(RUN))
