"""`.map()` on the modal backend: Modal's own map, one ephemeral app per map.

The fast tests use the shipped FakeModal; the `real` ones drive the real modal
client against the fake Modal control plane (testsupport/modal_fake), whose
containers run each input for real.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.container import make_container
from runplz.domain.errors import ServiceAuthError, ServiceError
from runplz.loader import load_app
from runplz.ports.backend import MapBackend
from runplz.services.modal_backend import ModalBackend
from runplz.testing import FakeModal, ModalFaults, fake_container

from testsupport.modal_fixture import modal_fake  # noqa: F401 (a fixture)

from .jobs import make_repo

JOB = '''
import os, time
from runplz import App, Image

app = App("map-modal")


@app.function(image=Image.from_registry("python:3.11-slim"), env={"GREETING": "hi"})
def item(i: int, fail_at: int = -1, nap: float = 0.0):
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, "n.txt"), "w") as handle:
        handle.write(str(i))
    time.sleep(nap if i != fail_at else 0)
    if i == fail_at:
        raise ValueError(f"item {i} fails")
    return {"i": i, "square": i * i, "greeting": os.environ["GREETING"]}
'''


def _bound(tmp_path, platform=None):
    """The job's module bound to modal; ``platform`` None: the real modal client."""
    repo = make_repo(tmp_path / "repo", JOB)
    module, app = load_app(str(repo))
    console = RecordingConsole()
    if platform is None:
        container = make_container(str(tmp_path / "cache"))
    else:
        container = fake_container(str(tmp_path / "cache"), modal_platform=platform)
    container.console.override(console)
    app.bind("modal", outputs_dir=str(tmp_path / "out"), container=container)
    module.out, module.console = tmp_path / "out", console
    return module


def _item(i: int) -> dict:
    return {"i": i, "square": i * i, "greeting": "hi"}


# -- FakeModal (no modal client) -------------------------------------------------------------


def test_the_modal_backend_is_a_map_backend_with_modal_deciding_the_width():
    assert issubclass(ModalBackend, MapBackend)
    assert not hasattr(ModalBackend, "map_unsupported")
    assert ModalBackend.map_concurrency >= 100


def test_fake_results_in_order_each_input_its_own_folder_one_job_per_input(tmp_path):
    platform = FakeModal()
    job = _bound(tmp_path, platform)
    assert list(job.item.map(range(4), concurrency=2)) == [_item(i) for i in range(4)]
    assert [(job.out / str(i) / "n.txt").read_text() for i in range(4)] == ["0", "1", "2", "3"]
    assert sorted(p.name for p in job.out.iterdir()) == ["0", "1", "2", "3"]
    assert len(platform.jobs) == 4 and len({j.payload for j in platform.jobs}) == 4
    assert job.console.infos[-1].startswith("item.map: 4 done, 0 failed of 4 in ")


def test_fake_failure_raises_naming_its_index_and_starts_no_more(tmp_path):
    job = _bound(tmp_path, FakeModal())
    with pytest.raises(RemoteError) as caught:
        list(job.item.map(range(5), kwargs={"fail_at": 2}, concurrency=1))
    assert caught.value.index == 2 and caught.value.remote_type == "ValueError"
    assert str(caught.value).startswith("input 2: ValueError: item 2 fails")
    assert (job.out / "2" / "n.txt").read_text() == "2"  # outputs come back on failure too
    assert not (job.out / "3").exists() and not (job.out / "4").exists()


def test_fake_return_exceptions_gives_each_failure_in_its_place(tmp_path):
    job = _bound(tmp_path, FakeModal())
    results = list(job.item.starmap([(0,), (1, 1), (2,), (3, 3)], return_exceptions=True))
    assert results[0] == _item(0) and results[2] == _item(2)
    assert [(r.index, r.remote_type) for r in (results[1], results[3])] == [(1, "ValueError"), (3, "ValueError")]


def test_fake_a_failure_stops_the_running_inputs(tmp_path):
    job = _bound(tmp_path, FakeModal())
    began = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        list(job.item.map([0, 1, 2], kwargs={"fail_at": 1, "nap": 120}, concurrency=3))
    assert caught.value.index == 1 and time.monotonic() - began < 60


def test_fake_a_platform_refusal_raises_before_any_input_runs(tmp_path):
    job = _bound(tmp_path, FakeModal(ModalFaults(unauthenticated=True)))
    with pytest.raises(ServiceAuthError, match="refused the credentials"):
        list(job.item.map(range(3)))
    assert not (tmp_path / "out").exists()


def test_fake_platform_map_cancelled_before_it_starts_runs_nothing(tmp_path):
    platform, cancel, seen = FakeModal(), threading.Event(), []
    cancel.set()

    class Sink:
        def started(self, index):
            seen.append(("started", index))

        def finished(self, index, value):
            seen.append(("finished", index))

        def failed(self, index, error):
            seen.append(("failed", index))

    platform.map(_a_job(tmp_path), ["{}", "{}"], 2, Sink(), cancel)
    assert seen == [] and platform.jobs == []


def _a_job(tmp_path):
    from runplz.domain.image import Image
    from runplz.domain.modal_resources import ModalResources
    from runplz.ports.serverless import ServerlessJob

    return ServerlessJob(
        app="a", function="f", image=Image.from_registry("python:3.11-slim"),
        resources=ModalResources(gpu=None, cpu=None, memory_mib=None, timeout=60), env={}, payload="",
        repo_root=str(tmp_path), repo_keep=frozenset(), bundle_dir=str(tmp_path),
    )


# -- the real modal client against the fake control plane ------------------------------------


@pytest.mark.real
def test_modal_map_in_order_folders_and_failures_in_place(modal_fake, tmp_path):
    job = _bound(tmp_path)
    assert list(job.item.map(range(4))) == [_item(i) for i in range(4)]
    assert [(job.out / str(i) / "n.txt").read_text() for i in range(4)] == ["0", "1", "2", "3"]
    creates = modal_fake.function_creates()
    assert len(creates) == 1  # one app, one function, for the whole map
    assert "FunctionPutInputs" in modal_fake.rpc_names()  # Modal's own map, not a .remote() per input
    assert len(modal_fake.containers()) == 4
    results = list(job.item.map(range(4), kwargs={"fail_at": 1}, return_exceptions=True, concurrency=2))
    assert [results[i] for i in (0, 2, 3)] == [_item(0), _item(2), _item(3)]
    assert isinstance(results[1], RemoteError) and (results[1].index, results[1].remote_type) == (1, "ValueError")
    assert modal_fake.unimplemented() == [] and modal_fake.errors() == []


@pytest.mark.real
def test_modal_map_failure_at_2_raises_it_and_stops_the_rest(modal_fake, tmp_path):
    job = _bound(tmp_path)
    began = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        list(job.item.map(range(4), kwargs={"fail_at": 2, "nap": 120}))
    assert caught.value.index == 2 and caught.value.remote_type == "ValueError"
    assert str(caught.value).startswith("input 2: ValueError: item 2 fails")
    assert (job.out / "2" / "n.txt").read_text() == "2"
    assert time.monotonic() - began < 100
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(run.returncode is None for run in modal_fake.containers()):
        time.sleep(0.2)
    assert all(run.returncode is not None for run in modal_fake.containers())  # nothing left running
    assert "AppStop" in modal_fake.rpc_names()
    assert job.console.infos[-1].startswith("item.map: 0 done, 1 failed, 3 cancelled of 4 in ")


def _kill_the_container_of(modal_fake, index: int, stop: threading.Event) -> threading.Thread:
    """Kill (from outside, as an out-of-memory kill would) the container running input ``index``."""

    def watch() -> None:
        while not stop.wait(0.1):
            for run in modal_fake.containers():
                marker = Path(run.root) / "out" / "n.txt"
                if run.returncode is None and marker.exists() and marker.read_text() == str(index):
                    modal_fake.kill_container(run)
                    return

    helper = threading.Thread(target=watch, daemon=True)
    helper.start()
    return helper


@pytest.mark.real
def test_modal_a_dead_container_is_pinned_on_its_input_once_that_is_certain(modal_fake, tmp_path):
    job = _bound(tmp_path)
    stop = threading.Event()
    try:
        # Modal's error for a dead container does not say which input it was: with 0 and 2
        # still running the map waits for them; then it can only be input 1's
        _kill_the_container_of(modal_fake, 1, stop)
        results = list(job.item.map([0, 1, 2], kwargs={"nap": 5.0}, return_exceptions=True))
        assert results[0] == _item(0) and results[2] == _item(2)
        assert isinstance(results[1], ServiceError) and results[1].index == 1
        assert "stopped before it returned a result" in str(results[1])
        assert "did not say which" not in str(results[1])
        _kill_the_container_of(modal_fake, 4, stop)
        with pytest.raises(ServiceError) as caught:
            list(job.item.map([3, 4, 5], kwargs={"nap": 3.0}, concurrency=1))
        assert caught.value.index == 1  # the map's input 1 (the value 4)
        assert len(modal_fake.containers()) == 5  # input 2 (the value 5) never started
    finally:
        stop.set()
