"""`.map()` on the brev backend: a box per input, up to K at once, every box
deleted however the map ends.

Fast tests run the generic fan-out over FakeBrev (a stand-in run path that
checks it was handed a usable box); the real ones (marked) run `runplz brev`
and `App.bind("brev")` over the emulator of the `brev` CLI, whose instances are
real sshd boxes reached with real ssh.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import types

import attrs
import pytest

from runplz import BrevConfig, RemoteError
from runplz.adapters.brev_cli import BrevCli
from runplz.adapters.fake_brev import FakeBrev
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_ledger import FakeLedger
from runplz.adapters.file_ledger import FileLedger
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.system_clock import SystemClock
from runplz.domain.fan_out import MapOptions
from runplz.services.fan_out import default_concurrency, fan_out, item_calls
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator

from .brev_stubs import StubRuns, backend, ephemeral, spec_call, verbs

# ---------------------------------------------------------------- fast: FakeBrev


class MapRuns(StubRuns):
    """`StubRuns` that also notes, per run, the input, its run id, its box, its
    outputs folder, and how many ephemeral boxes existed while it ran."""

    def __init__(self, brev, behaviour=None):
        super().__init__(brev, behaviour)
        self.seen: list[tuple[int, str, str, str]] = []
        self.most_boxes = 0

    def paths(self, transport, settings):
        path = super().paths(transport, settings)

        def call(function_call, record=None):
            self.seen.append((function_call.index, function_call.run_id, transport.name, settings.outputs_dir))
            self.most_boxes = max(self.most_boxes, len(ephemeral(self.brev)))
            return path.call(function_call, record)

        return types.SimpleNamespace(call=call)


def run_map(brev_backend, clock, outputs, count, concurrency=2, return_exceptions=False, name="train"):
    """The map as `Function.map` runs it: each call its folder and run id, then the fan-out."""
    calls = [attrs.evolve(spec_call(name, gpu="T4"), args=[index]) for index in range(count)]
    map_id, items = item_calls(calls, str(outputs), clock)
    options = MapOptions(True, return_exceptions, concurrency)
    return fan_out(brev_backend, items, options, RecordingConsole(), clock, name)


def creates(brev: FakeBrev) -> list[str]:
    return [detail.name for verb, detail in brev.calls if verb == "create"]


def blocking(until: threading.Event, limit: float = 30.0):
    """A job that runs until the fan-out stops it (an interrupt lands in its sleep)."""
    until.set()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.01)
    raise AssertionError("the input was never stopped")


def test_each_input_gets_a_box_of_its_own_at_most_k_at_once_one_pick(tmp_path):
    brev, ledger = FakeBrev(CATALOG), FakeLedger()
    runs = MapRuns(brev, lambda call, box: {"n": call.args[0], "on": box})
    ran = backend(brev, ledger, runs=runs)
    assert default_concurrency(ran) == 4
    results = list(run_map(ran, brev.clock, tmp_path / "out", 4, concurrency=2))
    assert [result["n"] for result in results] == [0, 1, 2, 3]
    by_input = {index: (run_id, box, outputs) for index, run_id, box, outputs in runs.seen}
    assert sorted(by_input) == [0, 1, 2, 3]
    for index, (run_id, box, outputs) in by_input.items():
        assert box.endswith(run_id.lower()) and outputs == str(tmp_path / "out" / str(index))
    assert len({box for _, box, _ in by_input.values()}) == 4 == len(creates(brev))
    assert runs.most_boxes <= 2
    assert verbs(brev).count("search") == 1  # one pick serves the map's boxes
    assert len({detail.types for verb, detail in brev.calls if verb == "create"}) == 1
    assert ephemeral(brev) == [] and ledger.records() == ()


def test_first_failure_stops_the_running_input_and_deletes_its_box_queued_ones_never_create(tmp_path):
    brev, ledger = FakeBrev(CATALOG), FakeLedger()
    first_running = threading.Event()

    def behaviour(call, box):
        if call.args[0] == 0:
            blocking(first_running)
        assert first_running.wait(30)
        raise RemoteError("RuntimeError", f"asked to fail at {call.args[0]}", "tb", 1)

    ran = backend(brev, ledger, runs=MapRuns(brev, behaviour))
    with pytest.raises(RemoteError) as caught:
        list(run_map(ran, brev.clock, tmp_path / "out", 5, concurrency=2))
    assert caught.value.index == 1
    assert len(creates(brev)) == 2  # inputs 2, 3 and 4 never made a box
    assert verbs(brev).count("delete") == 2
    assert ephemeral(brev) == [] and ledger.records() == ()


def test_return_exceptions_gives_failures_in_place_and_deletes_every_box(tmp_path):
    brev, ledger = FakeBrev(CATALOG), FakeLedger()

    def behaviour(call, box):
        if call.args[0] % 2:
            raise RemoteError("ValueError", "odd", "tb", 1)
        return call.args[0]

    ran = backend(brev, ledger, runs=MapRuns(brev, behaviour))
    results = list(run_map(ran, brev.clock, tmp_path / "out", 5, concurrency=3, return_exceptions=True))
    assert [r if isinstance(r, int) else r.index for r in results] == [0, 1, 2, 3, 4]
    assert all(isinstance(results[i], RemoteError) for i in (1, 3))
    assert len(creates(brev)) == 5 and ephemeral(brev) == [] and ledger.records() == ()


def test_leaving_the_map_early_stops_what_runs_and_creates_nothing_more(tmp_path):
    brev, ledger = FakeBrev(CATALOG), FakeLedger()
    one_running = threading.Event()

    def behaviour(call, box):
        if call.args[0] == 0:
            assert one_running.wait(30)
            return 0
        blocking(one_running)

    ran = backend(brev, ledger, runs=MapRuns(brev, behaviour))
    results = run_map(ran, brev.clock, tmp_path / "out", 6, concurrency=2)
    assert next(results) == 0
    results.close()  # what Ctrl-C in the driver does to the map: leave it, cancelling the rest
    assert len(creates(brev)) <= 3  # input 0, input 1, and at most input 2 once 0 was done
    assert ephemeral(brev) == [] and ledger.records() == ()


def test_a_named_box_takes_the_inputs_in_turn_and_is_stopped_once_at_the_end(tmp_path):
    brev, ledger = FakeBrev(CATALOG), FakeLedger()
    brev.create("my-box", ["g5.xlarge"])
    active, most = [0], [0]
    lock = threading.Lock()

    def behaviour(call, box):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return box

    runs = MapRuns(brev, behaviour)
    ran = backend(brev, ledger, config=BrevConfig(mode="vm"), instance="my-box", runs=runs)
    assert default_concurrency(ran) == 1
    results = list(run_map(ran, brev.clock, tmp_path / "out", 3, concurrency=3))
    assert results == ["my-box"] * 3 and most[0] == 1
    assert sorted(outputs for _, _, _, outputs in runs.seen) == [str(tmp_path / "out" / str(i)) for i in range(3)]
    assert creates(brev) == ["my-box"] and "stop" not in verbs(brev)
    ran.close()
    assert verbs(brev).count("stop") == 1 and brev.boxes["my-box"].status == "STOPPED"


def test_fake_brev_and_ledgers_hold_up_under_threads(tmp_path):
    brev = FakeBrev(CATALOG)
    ledgers = [FakeLedger(), FileLedger(str(tmp_path / "boxes"))]
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for round_ in range(15):
                name = f"box-{worker}-{round_}"
                for ledger in ledgers:
                    ledger.record(name, "brev")
                    ledger.records()
                brev.create(name, ["cpu-4x16"])
                brev.list()
                brev.delete(name)
                for ledger in ledgers:
                    ledger.forget(name)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and brev.boxes == {}
    assert [ledger.records() for ledger in ledgers] == [(), ()]


def test_brev_cli_runs_its_short_calls_one_at_a_time_from_many_threads(tmp_path, monkeypatch):
    """Over the emulator: no two short `brev` calls of one adapter overlap, however many threads call."""
    emu = BrevEmulator.make(tmp_path / "brev", CATALOG)
    monkeypatch.setenv("PATH", emu.bin_dir + os.pathsep + os.environ["PATH"])
    live, most, lock = [0], [0], threading.Lock()

    class Watched(SubprocessRunner):
        def run(self, argv, **kwargs):
            short = argv[1] != "create"
            with lock:
                live[0] += short
                most[0] = max(most[0], live[0])
            try:
                return super().run(argv, **kwargs)
            finally:
                with lock:
                    live[0] -= short

    cli = BrevCli(Watched(), SystemClock())
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            cli.create(f"t-{n}", ["cpu-4x16"])
            cli.list()
            cli.refresh()
            cli.delete(f"t-{n}")
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and most[0] == 1
    assert emu.instances() == {} and emu.count("search --help") == 1


# ---------------------------------------------------------------- real: the emulator, sshd boxes

JOB = '''
import json, os, time
from runplz import App, BrevConfig, Image

app = App("brev-map", brev_config=BrevConfig(mode="vm", use_docker=False, ssh_ready_wait_seconds=60))
image = Image.from_registry("python:3.11-slim")


@app.function(image=image, min_cpu=2)
def work(n: int, fail: bool = False, nap: float = 0.0, flag: str = "", wait_for: str = "") -> dict:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "n.txt"), "w") as handle:
        handle.write(str(n))
    print(f"job-started {n}", flush=True)
    flag, wait_for = os.path.expanduser(flag), os.path.expanduser(wait_for)
    if flag:
        open(flag, "w").close()
    deadline = time.time() + 120
    while wait_for and not os.path.exists(wait_for) and time.time() < deadline:
        time.sleep(0.05)
    if wait_for and os.path.exists(wait_for):
        os.remove(wait_for)
    time.sleep(nap)
    if fail:
        raise RuntimeError(f"asked to fail at {n}")
    return {"n": n}


@app.local_entrypoint()
def main(count: int = 4, nap: float = 300.0):
    for value in work.map(range(count), kwargs={"nap": nap}, concurrency=2):
        print(json.dumps(value), flush=True)
'''


class Account:
    """An emulated Brev account with real sshd boxes, a job repo, and a state folder."""

    def __init__(self, root, ssh_boxes, cache):
        from .jobs import make_repo

        self.script = make_repo(root / "repo", JOB)
        self.repo = self.script.parent
        self.emu = BrevEmulator.make(root / "brev", CATALOG, boxes=ssh_boxes)
        self.state = root / "state"
        self.cache = cache
        self.env = {
            **os.environ, "PATH": self.emu.bin_dir + os.pathsep + os.environ["PATH"],
            "RUNPLZ_STATE_DIR": str(self.state), "RUNPLZ_CACHE_DIR": str(cache),
        }

    def bind(self, monkeypatch):
        """The job's module, bound to brev in this process (outputs in the repo's out/)."""
        from runplz.container import make_container
        from runplz.loader import load_app

        monkeypatch.setenv("PATH", self.env["PATH"])
        container = make_container(str(self.cache), str(self.state))
        self.console = RecordingConsole()
        container.console.override(self.console)
        module, app = load_app(str(self.script))
        app.bind("brev", outputs_dir=str(self.repo / "out"), container=container)
        return module

    def created(self) -> list[str]:
        return [argv[1] for argv in self.emu.argvs() if argv[:1] == ["create"]]

    def most_at_once(self) -> int:
        """The most boxes that existed at once, from the order of creates and deletes."""
        live = most = 0
        for argv in self.emu.argvs():
            live += {"create": 1, "delete": -1}.get(argv[0] if argv else "", 0)
            most = max(most, live)
        return most

    def left(self) -> dict:
        listed = subprocess.run([self.emu.brev, "ls", "--json"], capture_output=True, text=True, env=self.env,
                                timeout=60, check=True)
        return json.loads(listed.stdout)["workspaces"] or {}

    def ledger(self) -> list[str]:
        folder = self.state / "boxes"
        return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("brev-map-cache")


@pytest.fixture
def account(tmp_path, ssh_boxes, cache):
    made = Account(tmp_path, ssh_boxes, cache)
    yield made
    made.emu.shutdown()


@pytest.mark.real
def test_brev_map_k2_in_order_a_box_per_input_own_folders_none_left(account, monkeypatch):
    module = account.bind(monkeypatch)
    results = list(module.work.map([3, 1, 2, 0], concurrency=2))
    assert results == [{"n": 3}, {"n": 1}, {"n": 2}, {"n": 0}]
    assert [(account.repo / "out" / str(i) / "n.txt").read_text() for i in range(4)] == ["3", "1", "2", "0"]
    assert len(set(account.created())) == 4 and account.most_at_once() <= 2
    assert account.emu.count("search") == 1  # one pick for the map's four boxes
    assert len({tuple(argv[2:]) for argv in account.emu.argvs() if argv[:1] == ["create"]}) == 1
    assert account.left() == {} and account.ledger() == []


@pytest.mark.real
def test_brev_map_failure_at_index_1_of_5_stops_input_0_deletes_both_boxes_creates_no_more(account, monkeypatch):
    module = account.bind(monkeypatch)
    flag = f"~/.runplz-brev-map-{secrets.token_hex(5)}"  # the boxes share one home: input 1 waits for 0's job
    inputs = [(0, False, 300.0, flag, ""), (1, True, 0.0, "", flag)] + [(n, False, 0.0, "", "") for n in (2, 3, 4)]
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        list(module.work.starmap(inputs, concurrency=2))
    assert caught.value.index == 1 and caught.value.remote_type == "RuntimeError"
    assert time.monotonic() - started < 120  # input 0 (a 300 s nap) was stopped, not waited for
    assert len(account.created()) == 2  # inputs 2, 3 and 4 never created a box
    assert account.emu.count("delete") == 2
    assert account.left() == {} and account.ledger() == []
    assert not (account.repo / "out" / "2").exists()
    said = " | ".join(account.console.infos)
    assert all(f"deleting Brev box {name}" in said for name in account.created())


@pytest.mark.real
def test_brev_map_return_exceptions_in_place_none_left(account, monkeypatch):
    module = account.bind(monkeypatch)
    results = list(module.work.map([0, 1, 2], [False, True, False], return_exceptions=True, concurrency=2))
    assert results[0] == {"n": 0} and results[2] == {"n": 2}
    assert isinstance(results[1], RemoteError) and results[1].index == 1
    assert len(account.created()) == 3 and account.left() == {} and account.ledger() == []


@pytest.mark.real
def test_sigint_to_a_brev_driver_mid_map_deletes_every_box(account):
    out = open(account.repo.parent / "stdout", "w+")
    err = open(account.repo.parent / "stderr", "w+")
    from testsupport.signals import default_signals

    driver = subprocess.Popen(
        [sys.executable, "-m", "runplz", "brev", "job.py", "--count", "5", "--nap", "300"], cwd=account.repo,
        env=account.env, text=True, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + 180
        while open(out.name).read().count("job-started") < 2 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert driver.poll() is None, open(err.name).read()
        assert open(out.name).read().count("job-started") == 2, open(err.name).read()
        assert len(account.left()) == 2
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=90) == 130, open(err.name).read()
    finally:
        if driver.poll() is None:
            driver.kill()
    said = open(err.name).read()
    assert said.splitlines()[-1] == "runplz: interrupted" and "Traceback" not in said, said
    assert all(f"deleting Brev box {name}" in said for name in account.created()), said
    assert len(account.created()) == 2 and account.left() == {} and account.ledger() == []
