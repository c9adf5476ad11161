"""A map leaves nothing running or billing however it ends: its generator
closed, dropped, collected, left unfinished when the program ends, or its App
done; and a command's child is never left behind by an interrupt that lands
just as it is made. (The remote windows: test_map_lifecycle_remote.py.)"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.errors import ItemCancelled
from runplz.loader import load_app
from runplz.services.map_live import MapStopped, stop_maps
from runplz.testing import fake_container

from .jobs import make_repo

SRC = Path(__import__("runplz").__file__).resolve().parents[1]  # the runplz under test


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _with_marker(marker: str) -> list[int]:
    """The processes whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read() and _alive(int(entry)):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _gone(pids, within: float = 15.0) -> list[int]:
    """Those of ``pids`` still running after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


# ------------------------------------------------ 1. a map dropped, collected, or left at exit

NAP = '''
import os, time
from runplz import App, Image

app = App("lifecycle")


@app.function(image=Image.from_registry("python:3.11-slim"))
def nap(i, seconds=0.0, marks=""):
    with open(os.path.join(marks, f"{i}.pid"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(seconds)
    return i
'''


def _pids(marks: Path, count: int, within: float = 30.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and len(list(marks.glob("*.pid"))) < count:
        time.sleep(0.05)
    return [int(p.read_text()) for p in sorted(marks.glob("*.pid")) if p.read_text()]


@pytest.fixture
def napper(tmp_path):
    module, app = load_app(str(make_repo(tmp_path / "repo", NAP)))
    container = fake_container(str(tmp_path / "cache"))
    app.bind("local", outputs_dir=str(tmp_path / "out"), native=True, container=container)
    module.marks = tmp_path / "marks"
    module.marks.mkdir()
    module.console = container.console()
    return module


def _started(napper):
    """A map whose input 0 has given its result while 1 and 2 still run (for minutes)."""
    marks = str(napper.marks)
    it = napper.nap.starmap([(0, 0.0, marks), (1, 300.0, marks), (2, 300.0, marks)], concurrency=3)
    assert next(it) == 0
    pids = _pids(napper.marks, 3)
    assert len(pids) == 3 and all(_alive(p) for p in pids[1:])
    return it, pids


@pytest.mark.parametrize("how", ["close", "drop", "collect"])
def test_a_map_closed_or_dropped_half_way_stops_its_running_inputs(napper, how):
    it, pids = _started(napper)
    began = time.monotonic()
    if how == "close":
        it.close()
    elif how == "drop":
        del it
    else:  # only the cycle collector can free it
        cycle: list = [it]
        cycle.append(cycle)
        del it, cycle
        gc.collect()
    assert _gone(pids, within=0.5) == [] and time.monotonic() - began < 30  # stopped and waited for
    assert napper.console.infos[-1].startswith("nap.map: 1 done, 0 failed, 2 cancelled of 3")


def test_a_map_is_stopped_when_its_app_lets_the_backend_go(napper):
    it, pids = _started(napper)
    napper.app._release()  # what the CLI does when the entrypoint returns
    assert _gone(pids, within=0.5) == []
    assert any("App 'lifecycle' is done: stopping nap.map's running inputs" in w for w in napper.console.warnings)
    assert napper.console.infos[-1].startswith("nap.map: 1 done, 0 failed, 2 cancelled of 3")
    with pytest.raises(MapStopped, match=r"^nap.map was stopped: App 'lifecycle' is done; 1 of 3 results were given$"):
        next(it)  # the caller learns its results are short, and is not left with a quietly shorter list
    assert list(it) == []  # then the generator is over


def test_a_map_stopped_while_its_caller_waits_on_it_raises_to_that_caller(napper):
    import threading

    it, pids = _started(napper)
    stopper = threading.Timer(0.5, stop_maps, args=(napper.app._backend,))
    stopper.start()  # from another thread, while the caller is blocked in next()
    try:
        with pytest.raises(MapStopped, match=r"^nap.map was stopped; 1 of 3 results were given$") as raised:
            next(it)
    finally:
        stopper.join()
    assert isinstance(raised.value, RuntimeError)
    assert _gone(pids, within=0.5) == []


def test_a_map_the_caller_closes_ends_silently_even_after_a_stop(napper):
    it, pids = _started(napper)
    stop_maps(napper.app._backend)
    it.close()  # the caller's own choice: no error
    assert _gone(pids, within=0.5) == []


EXITING = '''
import sys
sys.path.insert(0, {root!r})
from runplz.adapters.stderr_console import StderrConsole
from runplz.loader import load_app
from runplz.testing import fake_container

module, app = load_app({script!r})
container = fake_container({cache!r}, console=StderrConsole())
app.bind("local", outputs_dir={out!r}, native=True, container=container)
it = module.nap.starmap([(0, 0.0, {marks!r}), (1, 300.0, {marks!r}), (2, 300.0, {marks!r})], concurrency=3)
print("first", next(it), flush=True)
import os, time
deadline = time.monotonic() + 60
while len(os.listdir({marks!r})) < 3 and time.monotonic() < deadline:  # inputs 1 and 2 are running
    time.sleep(0.05)
{ending}
'''


@pytest.mark.parametrize("ending", ["pass", "raise SystemExit(3)", "raise RuntimeError('the script broke')"])
def test_a_map_left_unfinished_when_the_program_ends_is_stopped_at_exit(tmp_path, ending):
    script = make_repo(tmp_path / "repo", NAP)
    marks = tmp_path / "marks"
    marks.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(EXITING.format(
        root=str(SRC), script=str(script), cache=str(tmp_path / "cache"), out=str(tmp_path / "out"),
        marks=str(marks), ending=ending,
    ))
    done = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=120)
    assert "first 0" in done.stdout, done.stderr
    pids = _pids(marks, 3, within=1)
    assert len(pids) == 3 and _gone(pids, within=0.5) == [], done.stderr  # gone when the driver exited
    assert "the program is ending with a map unfinished: stopping nap.map's running inputs" in done.stderr
    assert "nap.map: 1 done, 0 failed, 2 cancelled of 3" in done.stderr


COLLECTED_ELSEWHERE = """
import gc, threading
gc.disable()  # so that only the collector on the fresh thread below frees the map
cycle = [it]
cycle.append(cycle)  # only the cycle collector can free the generator now
del it, cycle
collector = threading.Thread(target=gc.collect)  # a thread that never iterated the map
collector.start()
collector.join()
print("collected", flush=True)
"""


def test_a_map_collected_on_another_thread_is_still_stopped_at_exit(tmp_path):
    """The collector's thread only cancels (it may be one of the map's own); the
    exit must still wait until the inputs are stopped, though the generator is gone."""
    script = make_repo(tmp_path / "repo", NAP)
    marks = tmp_path / "marks"
    marks.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(EXITING.format(
        root=str(SRC), script=str(script), cache=str(tmp_path / "cache"), out=str(tmp_path / "out"),
        marks=str(marks), ending=COLLECTED_ELSEWHERE,
    ))
    done = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=120)
    assert "first 0" in done.stdout and "collected" in done.stdout, done.stderr
    pids = _pids(marks, 3, within=1)
    assert len(pids) == 3 and _gone(pids, within=0.5) == [], done.stderr  # gone when the driver exited
    assert "Traceback" not in done.stderr, done.stderr


BREV_EXITING = '''
import sys
sys.path.insert(0, {src!r})
from runplz.loader import load_app

module, app = load_app({script!r})
app.bind("brev", outputs_dir={out!r})
it = module.work.starmap([(0, False, 0.0), (1, False, 300.0), (2, False, 300.0)], concurrency=3)
print("first", next(it), flush=True)
import json, subprocess, time
deadline = time.monotonic() + 120
while time.monotonic() < deadline:  # until inputs 1 and 2 have their boxes too
    listed = subprocess.run(["brev", "ls", "--json"], capture_output=True, text=True).stdout
    if len(json.loads(listed)["workspaces"] or {{}}) >= 2:
        break
    time.sleep(0.2)
'''


@pytest.mark.real
def test_a_brev_map_left_unfinished_at_exit_deletes_every_box(tmp_path, ssh_boxes):
    from .test_map_brev import Account

    account = Account(tmp_path, ssh_boxes, tmp_path / "cache")
    try:
        driver = tmp_path / "driver.py"
        driver.write_text(BREV_EXITING.format(src=str(SRC), script=str(account.script), out=str(account.repo / "out")))
        done = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, env=account.env, timeout=300)
        assert "first {'n': 0}" in done.stdout, done.stderr
        assert len(account.created()) == 3, done.stderr
        assert account.left() == {} and account.ledger() == [], done.stderr
        assert "the program is ending with a map unfinished: stopping work.map's running inputs" in done.stderr
    finally:
        account.emu.shutdown()


# ------------------------------------------------ 3. an interrupt just after the child is made


@pytest.mark.parametrize("where", ["after Popen returned", "inside Popen, after the fork"])
def test_an_interrupt_as_the_child_is_made_still_ends_it(monkeypatch, where):
    from runplz.adapters import subprocess_runner

    marker = f"born-{os.getpid()}-{time.monotonic_ns()}"
    if where == "after Popen returned":
        class Interrupted(subprocess_runner._Tail):
            def __init__(self):
                raise ItemCancelled()

        monkeypatch.setattr(subprocess_runner, "_Tail", Interrupted)
    else:
        made = subprocess.Popen._execute_child

        def interrupted(self, *args, **kwargs):
            made(self, *args, **kwargs)
            raise KeyboardInterrupt()

        monkeypatch.setattr(subprocess.Popen, "_execute_child", interrupted)
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(300)", marker])
    monkeypatch.undo()
    time.sleep(0.5)
    assert _with_marker(marker) == []
