"""`.map()` end to end: local native (a real venv and processes) and local Docker (a real engine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.container import make_container
from runplz.loader import load_app

from .jobs import make_repo
from testsupport.signals import default_signals

pytestmark = pytest.mark.real

JOB = '''
import os, time
from runplz import App, Image, LocalConfig

app = App("{name}", local_config=LocalConfig(use_docker={docker}))


@app.function(image=Image.from_registry("python:3.11-slim"))
def item(i: int, nap: float = 0.0, fail_at: int = -1):
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, "started"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(0 if i == fail_at else nap)
    if i == fail_at:
        raise ValueError(f"item {{i}} fails")
    with open(os.path.join(out, "finished"), "w") as handle:
        handle.write(str(i))
    return {{"i": i, "square": i * i}}


@app.local_entrypoint()
def main(n: int = 4, k: int = 2):
    print(list(item.map(range(n), kwargs={{"nap": 300}}, concurrency=k)))
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("map-cache")


def _bound(tmp_path, cache, docker: bool, name: str):
    repo = make_repo(tmp_path / "repo", JOB.format(name=name, docker=docker))
    console = RecordingConsole()
    container = make_container(str(cache))
    container.console.override(console)
    module, app = load_app(str(repo))
    app.bind("local", outputs_dir=str(tmp_path / "out"), container=container)
    module.out, module.console, module.repo = tmp_path / "out", console, repo.parent
    return module


@pytest.fixture
def native(tmp_path, cache):
    return _bound(tmp_path, cache, False, "map-native")


def test_native_results_in_order_and_each_input_its_own_folder(native):
    results = list(native.item.map(range(8), concurrency=3))
    assert results == [{"i": i, "square": i * i} for i in range(8)]
    for i in range(8):
        assert (native.out / str(i) / "finished").read_text() == str(i)
    assert sorted(p.name for p in native.out.iterdir()) == [str(i) for i in range(8)]
    assert native.console.infos[-1].startswith("item.map: 8 done, 0 failed of 8 in ")


def test_native_failure_at_5_raises_it_stops_the_running_and_starts_no_more(native):
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        # 0-2 take 2s; then 3, 4, 5 start; 5 fails at once, 3 and 4 would nap 2s more
        list(native.item.map(range(8), kwargs={"nap": 2.0, "fail_at": 5}, concurrency=3))
    assert caught.value.index == 5 and caught.value.remote_type == "ValueError"
    assert str(caught.value).startswith("input 5: ValueError: item 5 fails")
    for i in range(3):
        assert (native.out / str(i) / "finished").exists()
    for i in (3, 4):  # running when 5 failed: stopped before they finished, and gone
        pid = int((native.out / str(i) / "started").read_text())
        assert not (native.out / str(i) / "finished").exists()
        assert _wait_for(lambda: not _alive(pid), 10), f"input {i} (pid {pid}) still running"
    assert not (native.out / "6").exists() and not (native.out / "7").exists()  # never started
    assert time.monotonic() - started < 60


def test_native_return_exceptions_gives_the_failure_in_its_place(native):
    results = list(native.item.map(range(4), kwargs={"fail_at": 2}, return_exceptions=True, concurrency=4))
    assert [r["i"] for r in results if isinstance(r, dict)] == [0, 1, 3]
    assert isinstance(results[2], RemoteError) and results[2].index == 2
    assert (native.out / "3" / "finished").exists()


def test_ctrl_c_on_the_driver_leaves_no_input_running(tmp_path, cache):
    repo = make_repo(tmp_path / "repo", JOB.format(name="map-sigint", docker=False)).parent
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        driver = subprocess.Popen(
            [sys.executable, "-m", "runplz", "local", "--native", "job.py", "--n=4", "--k=2"],
            cwd=repo, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=default_signals,
        )
    pids = []
    try:
        started = [repo / "out" / str(i) / "started" for i in (0, 1)]
        assert _wait_for(lambda: all(p.exists() and p.read_text() for p in started) or driver.poll() is not None, 240), err.read_text()
        pids = [int(p.read_text()) for p in started]
        os.kill(driver.pid, signal.SIGINT)
        assert driver.wait(timeout=60) == 130, err.read_text()
        assert err.read_text().splitlines()[-1] == "runplz: interrupted"
        for pid in pids:
            assert _wait_for(lambda: not _alive(pid), 10), f"input process {pid} still running"
        assert not (repo / "out" / "2").exists() and not (repo / "out" / "3").exists()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _containers(app: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label=runplz.app={app}"],
        capture_output=True, text=True, timeout=60,
    )
    return listed.stdout.split()


def test_docker_map_and_a_failure_removes_the_running_container(tmp_path, cache, docker_engine):
    job = _bound(tmp_path, cache, True, "map-docker")
    assert list(job.item.map(range(3), concurrency=3)) == [{"i": i, "square": i * i} for i in range(3)]
    for i in range(3):
        assert (job.out / str(i) / "finished").read_text() == str(i)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        list(job.item.map([0, 1], kwargs={"nap": 120, "fail_at": 1}, concurrency=2))
    assert caught.value.index == 1
    assert time.monotonic() - started < 60
    assert _wait_for(lambda: not _containers("map-docker"), 30), _containers("map-docker")
