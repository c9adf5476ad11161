"""The edges of a map's job array follower (services/slurm_array.py): finished
work is never lost on cancel, a lagging shared file system is read again
before Slurm's end stands, and a requeued task is followed to its real end.

The fast tests run `ArrayJobs` against the shipped `FakeSlurm` (real batch
scripts in their own processes, the real runplz entry in each task) and a
`LocalTransport` whose folder stands in for the cluster's shared file system;
the follower's clock is a `FakeClock` that each poll's wait moves on. The
tests marked ``real`` run the same against the real single-node cluster.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from runplz import Image, RemoteError, SlurmConfig
from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_slurm import FakeSlurm
from runplz.adapters.job_output import RecordingJobOutput
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.call import FunctionCall
from runplz.domain.errors import ItemCancelled
from runplz.domain.spec import function_spec
from runplz.services.remote_run import RemoteJob
from runplz.services.slurm_array import ArrayJobs
from runplz.domain.slurm_state import REQUEUE_GRACE, SETTLE_GRACE

JOB = '''
import os, time
from runplz import App, Image

app = App("edges")


@app.function(image=Image.from_registry("python:3.11-slim"))
def work(x, how="return", gate=""):
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, f"item-{x}.txt"), "w") as handle:
        handle.write(str(x))
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if how == "fifo":
        os.mkfifo(os.path.join(out, "pipe"))
    if how == "once":  # idempotent: the first run waits to be requeued, a rerun returns
        with open(gate, "a") as handle:
            handle.write(f"{restarts}\\n")
        while not restarts:
            time.sleep(0.05)
    while gate and how != "once" and not os.path.exists(gate):
        time.sleep(0.02)
    if how == "raise":
        raise ValueError(f"input {x} is bad")
    if how == "block":
        time.sleep(600)
    return {"x": x, "restarts": restarts}
'''
ENTRY = "import sys; from runplz.runtime.entry import main; sys.exit(main(sys.argv[1:]))"
RUN_DIR = ".runplz/slurm-runs/map-1"


class Sink:
    """An `ItemSink` that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, object]] = []
        self.times: list[float] = []  # `clock`'s time of each event
        self.clock: FakeClock | None = None

    def _add(self, kind: str, index: int, value: object) -> None:
        self.events.append((kind, index, value))
        self.times.append(self.clock.monotonic() if self.clock else 0.0)

    def started(self, index):
        self._add("started", index, None)

    def finished(self, index, value):
        self._add("finished", index, value)

    def failed(self, index, error):
        self._add("failed", index, error)

    def ends(self) -> dict[int, tuple[str, object]]:
        return {index: (kind, value) for kind, index, value in self.events if kind != "started"}

    def started_ones(self) -> list[int]:
        return [index for kind, index, _ in self.events if kind == "started"]


class Ticks:
    """The map's `Cancel`: each wait moves the fake clock by its timeout (real jobs
    get a moment to run) after calling ``hook`` (what a test does between polls)."""

    def __init__(self, clock: FakeClock) -> None:
        self._event = threading.Event()
        self.clock = clock
        self.hook = None
        self.waits = 0

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout=None) -> bool:
        self.waits += 1
        if self.hook is not None:
            self.hook(self)
        time.sleep(0.02)
        self.clock.advance(timeout or 0)
        return self.is_set()


class Rig:
    def __init__(self, tmp_path, requeue: bool = False, transport=None, slurm=None, poll: float = 1) -> None:
        self.home = tmp_path / "home"
        self.repo = self.home / RUN_DIR / "repo"
        (self.repo / ".git").mkdir(parents=True)
        (self.repo / "job.py").write_text(JOB)
        self.outputs = tmp_path / "out"
        self.gates = tmp_path / "gates"
        self.gates.mkdir()
        self.slurm = slurm or FakeSlurm(cpus=8, folder=str(tmp_path / "slurm"))
        self.clock = FakeClock()
        self.console = RecordingConsole()
        self.output = RecordingJobOutput()
        self.sink = Sink()
        self.cancel = Ticks(self.clock)
        self.notes: list[str] = []
        self.config = SlurmConfig(requeue=requeue, poll_seconds=poll, max_poll_seconds=2 * poll)
        self.transport = transport or LocalTransport(SubprocessRunner(), str(self.home), name="login")
        self.transport.connect()

    def gate(self, name: str) -> str:
        return str(self.gates / name)

    def jobs(self, inputs: list[dict], concurrency: int) -> tuple[ArrayJobs, RemoteJob]:
        spec = function_spec("work", image=Image.from_registry("python:3.11-slim"))
        calls = [
            FunctionCall("edges", spec, str(self.repo / "job.py"), [index], kwargs,
                         outputs=str(self.outputs / str(index)), run_id=f"map-1-{index}", map_id="map-1", index=index)
            for index, kwargs in enumerate(inputs)
        ]
        jobs = ArrayJobs(
            self.transport, self.clock, self.console, self.output, f"{RUN_DIR}/bundle", 30.0,
            scheduler=self.slurm, config=self.config, spec=spec, app="edges",
            calls=calls, concurrency=concurrency, sink=self.sink, cancel=self.cancel, on_task=self.notes.append,
        )
        job = RemoteJob(RUN_DIR, (sys.executable, "-c", ENTRY, "PAYLOAD"), str(self.repo), {}, "", limit=600)
        return jobs, job

    def run(self, inputs: list[dict], concurrency: int) -> tuple[ArrayJobs, str]:
        jobs, job = self.jobs(inputs, concurrency)
        jobs.start(job)
        try:
            jobs.follow(job, None)
        except ItemCancelled:
            pass
        return jobs, jobs.job_ids[RUN_DIR]

    def task_folder(self, index: int):
        return self.home / RUN_DIR / "tasks" / str(index)


def until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def rig(tmp_path):
    made = Rig(tmp_path)
    yield made
    for job in made.slurm.queue():
        made.slurm.cancel(job)


# ------------------------------------------------------------- 1. nothing finished is lost on cancel


def test_tasks_that_started_and_ended_between_two_polls_keep_their_outcome_on_cancel(rig):
    """%1: at the first poll input 0 runs; before the next, input 0 ends, input 1 runs
    and returns, input 2 runs and raises, input 3 starts; then the map is cancelled."""
    inputs = [
        {"gate": rig.gate("g0")}, {}, {"how": "raise"}, {"how": "block"}, {},
    ]
    state: dict = {}

    def between(cancel):
        if cancel.waits != 1:
            return
        job = state["job"]
        assert [s.state for s in rig.slurm.tasks(job, 5)][:2] == ["RUNNING", "PENDING"]
        open(rig.gate("g0"), "w").close()
        until(lambda: [s.state for s in rig.slurm.tasks(job, 5)][:4] == ["COMPLETED", "COMPLETED", "FAILED", "RUNNING"])
        until(lambda: (rig.task_folder(3) / "out" / "item-3.txt").exists())
        cancel.set()

    original = rig.slurm.submit

    def submit(script):
        state["job"] = original(script)
        return state["job"]

    rig.slurm.submit = submit
    rig.cancel.hook = between
    jobs, job = rig.run(inputs, concurrency=1)
    ends = rig.sink.ends()
    assert ends[0] == ("finished", {"x": 0, "restarts": 0})
    assert ends[1] == ("finished", {"x": 1, "restarts": 0})
    assert ends[2][0] == "failed" and isinstance(ends[2][1], RemoteError)
    assert ends[2][1].remote_type == "ValueError" and "input 2 is bad" in str(ends[2][1])
    assert ends[3][0] == "failed" and isinstance(ends[3][1], ItemCancelled)
    assert 4 not in ends and 4 not in rig.sink.started_ones()  # never started: not reported
    assert sorted(rig.sink.started_ones()) == [0, 1, 2, 3]
    for index in range(4):  # every started input's outputs came home, and left the cluster
        assert (rig.outputs / str(index) / f"item-{index}.txt").read_text() == str(index)
        assert list((rig.task_folder(index) / "out").iterdir()) == []
    assert not (rig.outputs / "4").exists()
    assert rig.console.warnings == []
    assert any(n.startswith("input 4 ") and n.endswith("cancelled before it started") for n in rig.notes), rig.notes
    assert any(n.startswith("input 1 ") and "returned (exit code 0)" in n for n in rig.notes), rig.notes
    assert rig.slurm.queue() == []


def test_outputs_that_cannot_come_home_on_cancel_are_named_in_one_warning(rig):
    inputs = [{"how": "fifo"}, {"how": "fifo", "gate": rig.gate("never")}, {"how": "block"}]

    def between(cancel):
        until(lambda: all((rig.task_folder(i) / "out" / "pipe").exists() for i in range(2)))
        until(lambda: (rig.task_folder(2) / "out" / "item-2.txt").exists())
        cancel.set()

    rig.cancel.hook = between
    jobs, job = rig.run(inputs, concurrency=3)
    ends = rig.sink.ends()
    assert ends[0][0] == "finished" or ends[0][0] == "failed"
    assert isinstance(ends[1][1], ItemCancelled) and isinstance(ends[2][1], ItemCancelled)
    (warning,) = [w for w in rig.console.warnings if "may be left" in w]
    folder = f"{rig.home}/{RUN_DIR}/tasks"
    assert f"in {folder}/<index>/out" in warning, warning
    assert "inputs 0, 1 " in warning or "input 1 " in warning, warning
    assert (rig.outputs / "2" / "item-2.txt").read_text() == "2"


# ------------------------------------------------------------- 2. a lagging shared file system


class LaggingTransport(LocalTransport):
    """A login node whose view of the shared file system shows each task's new
    ``exit_code`` and ``result.json`` ``lag[index]`` seconds (of ``clock``) after
    it first looked: until then they are moved out of sight, as NFS's cached
    directory entries hide them."""

    NAMES = ("exit_code", "result.json")

    def __init__(self, root: str, clock: FakeClock, lag: dict[int, float]) -> None:
        super().__init__(SubprocessRunner(), root, name="login")
        self._tasks = os.path.join(root, RUN_DIR, "tasks")
        self._clock = clock
        self._lag = lag
        self._hidden: dict[str, float] = {}  # path -> when it shows

    def _view(self) -> None:
        now = self._clock.monotonic()
        for index, lag in self._lag.items():
            for name in self.NAMES:
                path = os.path.join(self._tasks, str(index), name)
                hidden = os.path.join(self._tasks, str(index), f".hidden-{name}")
                if path not in self._hidden and os.path.exists(path):
                    self._hidden[path] = now + lag
                    os.replace(path, hidden)
                if path in self._hidden and now >= self._hidden[path] and os.path.exists(hidden):
                    os.replace(hidden, path)

    def run(self, argv, **kwargs):
        self._view()
        return super().run(argv, **kwargs)


def lagging_rig(tmp_path, lag: dict[int, float], ended_at_submit: tuple[int, ...]) -> Rig:
    """A rig on a `LaggingTransport`; submitting returns once the tasks
    ``ended_at_submit`` ended (so the login node's first look already lags)."""
    clock = FakeClock()
    rig = Rig(tmp_path, transport=LaggingTransport(str(tmp_path / "home"), clock, lag))
    rig.clock = rig.cancel.clock = clock
    rig.sink.clock = clock
    submit = rig.slurm.submit

    def submitted(script):
        job = submit(script)
        until(lambda: all(rig.slurm.tasks(job, max(ended_at_submit) + 1)[i].ended for i in ended_at_submit))
        return job

    rig.slurm.submit = submitted
    return rig


def test_a_task_slurm_says_ended_waits_for_its_late_exit_code_and_result_within_the_grace(tmp_path):
    lag = SETTLE_GRACE * 0.6
    rig = lagging_rig(tmp_path, {0: lag, 1: lag}, (0, 1))
    rig.run([{}, {"how": "raise"}], concurrency=2)
    ends = rig.sink.ends()
    assert ends[0] == ("finished", {"x": 0, "restarts": 0})
    assert ends[1][0] == "failed" and ends[1][1].remote_type == "ValueError"
    assert lag <= rig.clock.monotonic() < SETTLE_GRACE  # it read again until the files showed
    assert any(n.startswith("input 1 ") and "(exit code 1)" in n for n in rig.notes), rig.notes
    assert (rig.outputs / "0" / "item-0.txt").read_text() == "0"


def test_a_result_that_never_shows_is_settled_from_slurm_after_the_grace(tmp_path):
    rig = lagging_rig(tmp_path, {0: 10 * SETTLE_GRACE}, (0,))
    rig.run([{}], concurrency=1)
    ((kind, error),) = rig.sink.ends().values()
    assert kind == "failed" and error.remote_type == "RunplzSupervisorLost"
    assert "(sacct: COMPLETED" in str(error)
    assert SETTLE_GRACE <= rig.clock.monotonic() < SETTLE_GRACE + 3


def test_a_lagging_task_does_not_hold_up_the_others(tmp_path):
    """Input 0's files show late; input 1 (gated until input 0 is held) ends and is
    reported while input 0 is still held; then input 0 with its real result."""
    rig = lagging_rig(tmp_path, {0: SETTLE_GRACE * 0.8}, (0,))
    gate = rig.gate("g1")
    rig.cancel.hook = lambda cancel: open(gate, "w").close()
    rig.run([{}, {"gate": gate}], concurrency=2)
    finished = [(index, at) for (kind, index, _), at in zip(rig.sink.events, rig.sink.times) if kind == "finished"]
    assert [index for index, _ in finished] == [1, 0]
    assert finished[0][1] < SETTLE_GRACE * 0.8 <= finished[1][1]


# ------------------------------------------------------------- 3. requeue (FakeSlurm)


def requeue_rig(tmp_path, requeue: bool, poll: float = 1) -> Rig:
    slurm = FakeSlurm(cpus=8, folder=str(tmp_path / "slurm"), requeue_delay=1.0)
    return Rig(tmp_path, requeue=requeue, slurm=slurm, poll=poll)


def array_of(rig: Rig) -> str:
    return next(m for m in rig.console.infos if "as job array" in m).split("as job array ")[1].split()[0]


def test_a_requeued_task_is_followed_to_its_real_end(tmp_path):
    rig = requeue_rig(tmp_path, requeue=True)
    runs = rig.gate("runs-1")
    seen: list[str] = []

    def between(cancel):
        job = array_of(rig)
        seen.append(rig.slurm.tasks(job, 2)[1].state)
        if os.path.exists(runs) and not any("requeued" in n for n in rig.notes) and "requeue" not in seen:
            if rig.slurm.tasks(job, 2)[1].state == "RUNNING":
                rig.slurm.requeue(f"{job}_1")
                seen.append("requeue")

    rig.cancel.hook = between
    rig.run([{}, {"how": "once", "gate": runs}], concurrency=2)
    assert rig.sink.ends() == {0: ("finished", {"x": 0, "restarts": 0}), 1: ("finished", {"x": 1, "restarts": 1})}
    assert rig.sink.started_ones() == [0, 1] or sorted(rig.sink.started_ones()) == [0, 1]
    assert open(runs).read() == "0\n1\n"  # its first run was stopped, and it ran again from its start
    assert "PENDING" in seen[seen.index("requeue"):]  # the follower saw it wait again
    (said,) = [m for m in rig.console.infos if "requeued" in m]
    assert said.startswith("Slurm requeued input 1 (job ") and "PENDING, BeginTime" in said, said
    assert any(n.endswith("requeued by Slurm") for n in rig.notes)
    assert (rig.outputs / "1" / "item-1.txt").read_text() == "1"


@pytest.mark.parametrize("shown_for", [0.0, 0.5])
def test_a_preempted_task_of_a_requeue_array_is_not_a_failure(tmp_path, shown_for):
    """PREEMPTED (sacct, squeue listing it nowhere) for a moment, then queued again:
    with SlurmConfig(requeue=True) the follower waits for it."""
    rig = requeue_rig(tmp_path, requeue=True)
    runs = rig.gate("runs-0")
    done: list[bool] = []

    def between(cancel):
        job = array_of(rig)
        if os.path.exists(runs) and not done and rig.slurm.tasks(job, 1)[0].state == "RUNNING":
            rig.slurm.preempt(f"{job}_0", shown_for=shown_for)
            done.append(True)

    rig.cancel.hook = between
    rig.run([{"how": "once", "gate": runs}], concurrency=1)
    assert rig.sink.ends() == {0: ("finished", {"x": 0, "restarts": 1})}
    assert open(runs).read() == "0\n1\n"


def test_a_preempted_task_without_requeue_is_a_failure(tmp_path):
    rig = requeue_rig(tmp_path, requeue=False)
    runs = rig.gate("runs-0")

    def between(cancel):
        job = array_of(rig)
        if os.path.exists(runs) and rig.slurm.tasks(job, 1)[0].state == "RUNNING":
            rig.slurm.preempt(f"{job}_0")

    rig.cancel.hook = between
    rig.run([{"how": "once", "gate": runs}], concurrency=1)
    ((kind, error),) = rig.sink.ends().values()
    assert kind == "failed" and error.remote_type == "RunplzSupervisorLost"
    assert "was preempted (sacct: PREEMPTED" in str(error)
    assert rig.clock.monotonic() < SETTLE_GRACE  # Slurm stopped it: no grace


def test_a_final_preempted_of_a_requeue_array_is_a_failure_after_the_requeue_grace(tmp_path):
    """The cluster preempted it and never queued it again (a partition whose
    PreemptMode cancels): PREEMPTED stays, so it fails once `REQUEUE_GRACE` passed."""
    rig = requeue_rig(tmp_path, requeue=True, poll=5)
    runs = rig.gate("runs-0")

    def between(cancel):
        job = array_of(rig)
        if os.path.exists(runs) and rig.slurm.tasks(job, 1)[0].state == "RUNNING":
            rig.slurm.preempt(f"{job}_0", shown_for=1e9)

    rig.cancel.hook = between
    rig.run([{"how": "once", "gate": runs}], concurrency=1)
    ((kind, error),) = rig.sink.ends().values()
    assert kind == "failed" and "was preempted" in str(error)
    assert REQUEUE_GRACE <= rig.clock.monotonic() < REQUEUE_GRACE + 10


# ------------------------------------------------------------- the real cluster

REAL_JOB = '''
import os, time
from runplz import App, Image, SlurmConfig

app = App("slurm-edges", slurm_config=SlurmConfig(account="runplz", requeue=True, poll_seconds=POLL,
                                                  max_poll_seconds=POLL))
image = Image.from_registry("python:3.11-slim")


@app.function(image=image, min_memory=0.1, timeout=600)
def work(x, how="return", marker="", pause=0.0, gate=""):
    with open(os.path.join(os.environ["RUNPLZ_OUT"], f"item-{x}.txt"), "w") as handle:
        handle.write(str(x))
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if marker:
        with open(marker, "a") as handle:
            handle.write(f"{restarts}\\n")
    time.sleep(pause)
    while gate and not os.path.exists(gate):
        time.sleep(0.1)
    if how == "raise":
        raise ValueError(f"input {x} is bad")
    if how == "block" or (how == "once" and not restarts):
        time.sleep(300)
    return {"x": x, "restarts": restarts}
'''


def real_bound(tmp_path, cache, poll: float):
    from .jobs import make_repo
    from .test_slurm_backend import Bound

    return Bound(make_repo(tmp_path / "repo", REAL_JOB.replace("POLL", repr(poll))), tmp_path / "out", cache)


def real_array(bound) -> str:
    line = next(m for m in reversed(bound.console.infos) if "as job array" in m)
    return line.split("as job array ")[1].split()[0]


def in_background(work):
    """Run ``work`` on a thread; its exception (if any) comes back from the returned join."""
    failed: list[BaseException] = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join():
        thread.join(timeout=300)
        if failed:
            raise failed[0]

    return join


@pytest.mark.real
def test_real_cluster_cancel_between_two_polls_keeps_what_ended(tmp_path, slurm_queue_emptied, slurm_login, slurm_cache):
    """No poll after the first (600 s apart); %1. Input 0 runs 5 s (the first poll sees
    it wait or run) and returns, input 1 fails at once, input 2 starts and blocks,
    input 3 waits; then Ctrl-C, before any later poll saw any of it, however long
    Slurm takes to go from one task to the next. The queue starts empty: a job an
    earlier test left would hold the node's CPUs."""
    slurm_cluster = slurm_queue_emptied
    import _thread

    bound = real_bound(tmp_path, slurm_cache, 600.0)
    marker = os.path.join(slurm_cluster.shared, f"edges-{os.getpid()}-{time.monotonic_ns()}")
    inputs = [{"pause": 5.0}, {"how": "raise"}, {"how": "block", "marker": marker}, {}]

    def interrupt():
        until(lambda: os.path.exists(marker), timeout=400)
        _thread.interrupt_main()

    join = in_background(interrupt)
    began = time.monotonic()
    # Ctrl-C is simulated with interrupt_main, which needs Python's own SIGINT handler
    # (an earlier test in this process may have left another one in place).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _map_each(bound.module.work, inputs, concurrency=1)
    finally:
        signal.signal(signal.SIGINT, before)
    join()
    assert time.monotonic() - began < 600
    array = real_array(bound)
    assert slurm_cluster.queue() == []
    for index in range(3):  # input 0 returned, 1 failed, 2 was stopped: all their outputs came home
        assert (bound.outputs / str(index) / f"item-{index}.txt").read_text() == str(index)
    assert not (bound.outputs / "3").exists()
    assert not [w for w in bound.console.warnings if "may be left" in w], bound.console.warnings
    assert any(m.startswith("work.map: 1 done") for m in bound.console.infos), bound.console.infos
    rows = _sacct(slurm_cluster, array, 4)
    assert rows[f"{array}_0"] == "COMPLETED" and rows[f"{array}_1"] == "FAILED", rows
    assert rows[f"{array}_2"].startswith("CANCELLED"), rows


@pytest.mark.real
def test_real_cluster_a_requeued_task_is_followed_to_its_real_end(tmp_path, slurm_queue_emptied, slurm_login, slurm_cache):
    slurm_cluster = slurm_queue_emptied
    bound = real_bound(tmp_path, slurm_cache, 1.0)
    marker = os.path.join(slurm_cluster.shared, f"edges-{os.getpid()}-{time.monotonic_ns()}")

    def requeue():
        until(lambda: os.path.exists(marker), timeout=180)
        # the follower saw input 1 start (both inputs started)
        until(lambda: any("running 2" in p or "done 1, running 1" in p for p in bound.console.progresses), 60)
        task = f"{real_array(bound)}_1"
        slurm_cluster.run("scontrol", "requeue", task, check=True)
        # Slurm holds a requeued job back (BeginTime, about two minutes); the admin starts it now
        until(lambda: slurm_cluster.run("squeue", "-h", "-j", task, "-o", "%T").stdout.strip() == "PENDING", 60)
        time.sleep(3)  # the follower sees it wait
        slurm_cluster.run("scontrol", "update", f"JobId={task}", "StartTime=now", check=True)

    join = in_background(requeue)
    results = _map_each(bound.module.work, [{}, {"how": "once", "marker": marker}], concurrency=2)
    join()
    assert results == [{"x": 0, "restarts": 0}, {"x": 1, "restarts": 1}]
    with open(marker) as handle:
        assert handle.read() == "0\n1\n"
    assert any(m.startswith("Slurm requeued input 1 (job ") for m in bound.console.infos), bound.console.infos
    assert slurm_cluster.queue() == []


def _map_each(function, inputs: list[dict], concurrency: int) -> list:
    """``function.map``: input ``i`` is ``work(i, **inputs[i])`` (by position)."""
    columns = [[item.get(name, default) for item in inputs]
               for name, default in (("how", "return"), ("marker", ""), ("pause", 0.0), ("gate", ""))]
    return list(function.map(range(len(inputs)), *columns, concurrency=concurrency))


def _sacct(cluster, job: str, count: int, timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        text = cluster.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State").stdout
        rows = dict(line.split("|")[:2] for line in text.splitlines() if "|" in line)
        live = any(state in ("PENDING", "RUNNING", "COMPLETING") for state in rows.values())
        if (len(rows) >= count and not live) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


# ------------------------------------------------------------- a job whose id cannot be recorded


def test_a_job_whose_id_cannot_be_put_on_record_is_cancelled_at_once(rig):
    """Once sbatch answered, the job's id goes to the run's record; if that fails
    (say a local error writing it), nothing could find the job to stop it later:
    it is cancelled there and then, and the error goes on."""
    jobs, job = rig.jobs([{}, {}], 1)

    def lost(job_id: str) -> None:
        raise OSError("the record could not be written")

    jobs._notify = lost
    with pytest.raises(OSError, match="could not be written"):
        jobs.start(job)
    job_id = jobs.job_ids[RUN_DIR]
    until(lambda: all(state.ended for state in rig.slurm.tasks(job_id, 2)))
    assert [state.state for state in rig.slurm.tasks(job_id, 2)] == ["CANCELLED", "CANCELLED"]
