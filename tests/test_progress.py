"""Progress per phase: a status line updated in place on a terminal, plain lines elsewhere.

The unit tests drive `Terminal` over a real pseudo-terminal with a fake clock
(the ticker thread off, `tick` called by hand), so nothing depends on timing;
the end-to-end tests run the CLI under a pty and through pipes.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.job_output import StdoutJobOutput
from runplz.adapters.stderr_console import StderrConsole
from runplz.adapters.terminal import CLEAR, Terminal, elapsed
from runplz.domain.run_record import Phase, PhaseDone
from runplz.services.run_recorder import RunRecorder

from .jobs import make_repo

ELLIPSIS = "\u2026"


class Pty:
    """A real pseudo-terminal, 120 columns wide; a thread reads all that reaches it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.stream = os.fdopen(os.dup(self.slave), "w", encoding="utf-8")
        self.data = bytearray()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                ready = select.select([self.master], [], [], 0.05)[0]
                chunk = os.read(self.master, 1 << 16) if ready else None
            except (OSError, ValueError):
                return
            if chunk == b"":
                return
            if chunk:
                self.data += chunk

    def text(self) -> str:
        """What reached the terminal so far (raw), once nothing more arrives for a moment."""
        size = -1
        while size != len(self.data):
            size = len(self.data)
            time.sleep(0.05)
        return bytes(self.data).decode("utf-8", "replace")

    def close(self) -> None:
        self.stream.close()
        os.close(self.slave)
        self._thread.join(timeout=2)
        os.close(self.master)


def screen(raw: str) -> list[str]:
    """The lines that stay on the screen: each erased line removed."""
    text = raw.replace("\r\n", "\n")
    return re.sub(r"[^\n\r]*\r\x1b\[K", "", text).split("\n")


@pytest.fixture
def pty():
    terminal = Pty()
    yield terminal
    terminal.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def terminal(pty, clock):
    return Terminal(pty.stream, term="xterm", clock=clock, ticker=False)


# ---------------------------------------------------------------- the terminal


def test_the_status_line_ticks_at_most_once_a_second_and_the_done_line_replaces_it(pty, terminal, clock):
    console = StderrConsole(terminal=terminal)
    console.progress(f"upload{ELLIPSIS}")
    for step in (0.5, 0.6, 0.3, 0.2, 0.9, 0.1):  # 0.5 1.1 1.4 1.6 2.5 2.6 seconds up
        clock.advance(step)
        terminal.tick()
    console.info("upload: done in 2.6s, 1.2 MB")
    raw = pty.text()
    assert raw == (
        f"runplz: upload{ELLIPSIS}"
        f"{CLEAR}runplz: upload{ELLIPSIS} 1s"
        f"{CLEAR}runplz: upload{ELLIPSIS} 2s"
        f"{CLEAR}runplz: upload: done in 2.6s, 1.2 MB\r\n"
    )
    assert screen(raw) == ["runplz: upload: done in 2.6s, 1.2 MB", ""]


def test_anything_else_written_erases_it_first_and_it_stops_ticking(pty, terminal, clock):
    console = StderrConsole(terminal=terminal)
    output = StdoutJobOutput(stream=pty.stream.buffer, terminal=terminal)
    console.progress(f"run{ELLIPSIS}")
    clock.advance(1.2)
    terminal.tick()
    output.write(b"the job says hi\n")
    console.warn("careful")
    clock.advance(5)
    terminal.tick()  # someone else wrote since: no redraw
    console.info("run: done in 6.2s")
    raw = pty.text()
    assert raw.count(CLEAR) == 2 and "6s" not in raw
    assert screen(raw) == ["the job says hi", "runplz: warning: careful", "runplz: run: done in 6.2s", ""]


def test_a_job_line_left_open_is_kept_on_its_own_line(pty, terminal):
    output = StdoutJobOutput(stream=pty.stream.buffer, terminal=terminal)
    console = StderrConsole(terminal=terminal)
    output.write(b"progress 50%")
    console.progress(f"collect{ELLIPSIS}")  # would erase the job's half line without the newline
    console.info("collect: done in 0.1s")
    assert screen(pty.text()) == ["progress 50%", "runplz: collect: done in 0.1s", ""]


def test_output_to_a_pipe_leaves_the_status_line_alone(pty, terminal, clock):
    console = StderrConsole(terminal=terminal)
    piped = io.BytesIO()
    console.progress(f"run{ELLIPSIS}")
    StdoutJobOutput(stream=piped, terminal=terminal).write(b"to a file\n")
    clock.advance(1)
    terminal.tick()
    assert piped.getvalue() == b"to a file\n"
    assert pty.text().endswith(f"{CLEAR}runplz: run{ELLIPSIS} 1s")


def test_a_program_writing_to_the_terminal_itself_gets_it_clear(pty, terminal, clock):
    StderrConsole(terminal=terminal).progress(f"run{ELLIPSIS}")
    terminal.release()
    clock.advance(3)
    terminal.tick()
    assert pty.text() == f"runplz: run{ELLIPSIS}{CLEAR}"


def test_a_failed_phase_takes_its_status_line_away(pty, terminal, clock):
    recorder = RunRecorder(None, clock, None, StderrConsole(terminal=terminal))
    recording = recorder.begin("local", "native", _call(), "out")
    with pytest.raises(RuntimeError):
        with recording.phase("build"):
            raise RuntimeError("no")
    assert pty.text() == f"runplz: build{ELLIPSIS}{CLEAR}"


def test_quiet_shows_no_status_line(pty, terminal, clock):
    console = StderrConsole(quiet=True, terminal=terminal)
    console.progress(f"upload{ELLIPSIS}")
    clock.advance(2)
    terminal.tick()
    console.info("upload: done in 2.0s")
    console.warn("careful")
    assert pty.text() == "runplz: warning: careful\r\n"


@pytest.mark.parametrize("term", ["dumb"])
def test_a_dumb_terminal_gets_plain_lines(pty, clock, term):
    console = StderrConsole(terminal=Terminal(pty.stream, term=term, clock=clock, ticker=False))
    console.progress(f"upload{ELLIPSIS}")
    console.info("upload: done in 0.1s")
    assert pty.text() == "runplz: upload: done in 0.1s\r\n"


def test_a_pipe_gets_exactly_the_plain_lines(clock):
    stream = io.StringIO()
    terminal = Terminal(stream, term="xterm", clock=clock, ticker=False)
    console = StderrConsole(terminal=terminal)
    console.progress(f"upload{ELLIPSIS}")
    clock.advance(3)
    terminal.tick()
    console.info("upload: done in 3.0s")
    assert stream.getvalue() == "runplz: upload: done in 3.0s\n"


def test_an_ascii_terminal_gets_three_dots(pty, clock):
    stream = os.fdopen(os.dup(pty.slave), "w", encoding="ascii")
    try:
        Terminal(stream, term="xterm", clock=clock, ticker=False).status(f"runplz: run{ELLIPSIS}")
        assert pty.text() == "runplz: run..."
    finally:
        stream.close()


def test_the_ticker_thread_redraws_on_its_own(pty):
    terminal = Terminal(pty.stream, term="xterm")  # the real clock and thread
    terminal.status(f"runplz: run{ELLIPSIS}")
    deadline = time.monotonic() + 10
    while f"{ELLIPSIS} 1s" not in pty.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    terminal.line("runplz: run: done")
    assert f"runplz: run{ELLIPSIS} 1s" in pty.text()


@pytest.mark.parametrize("seconds, shown", [(1, "1s"), (59, "59s"), (65, "1m05s"), (3725, "1h02m")])
def test_elapsed(seconds, shown):
    assert elapsed(seconds) == shown


# ---------------------------------------------------------------- the recorder


def _call():
    from runplz.domain.call import FunctionCall
    from runplz.domain.image import Image
    from runplz.domain.spec import FunctionSpec

    return FunctionCall("app", FunctionSpec(name="work", image=Image.from_registry("python:3.11-slim")), "job.py", [], {})


def test_a_phase_shows_a_status_line_then_its_done_line_with_the_size():
    console, clock = RecordingConsole(), FakeClock()
    recording = RunRecorder(None, clock, None, console).begin("ssh", "box", _call(), "out")
    with recording.phase("collect") as collect:
        clock.advance(0.25)
        collect.size = 12_345
    assert console.events == [("progress", f"collect{ELLIPSIS}"), ("info", "collect: done in 0.2s, 12.3 KB")]


def test_a_phase_started_by_hand_ends_once():
    console, clock = RecordingConsole(), FakeClock()
    recording = RunRecorder(None, clock, None, console).begin("ssh", "box", _call(), "out")
    mark = recording.start("run")
    clock.advance(2)
    mark.end()
    mark.end()
    mark.drop()
    assert console.infos == ["run: done in 2.0s"] and console.progresses == [f"run{ELLIPSIS}"]


def test_the_record_holds_each_phase_and_its_size(tmp_path):
    from runplz.adapters.file_run_store import FileRunStore

    store, clock = FileRunStore(str(tmp_path)), FakeClock()
    recording = RunRecorder(store, clock, None, RecordingConsole()).begin("ssh", "box", _call(), "out")
    with recording.phase("collect", size=7):
        clock.advance(1)
    events = [e for e in store.events(recording.id) if isinstance(e, (Phase, PhaseDone))]
    assert [type(e).__name__ for e in events] == ["Phase", "PhaseDone"]
    assert events[1].size == 7 and events[1].seconds == 1.0


# ---------------------------------------------------------------- the CLI, end to end

JOB = '''
import os, time
from runplz import App, Image

app = App("progress")

@app.function(image=Image.from_registry("python:3.11-slim"))
def work(pause: float = 2.5) -> int:
    time.sleep(pause)
    for i in range(3):
        print(f"job line {i} " + "x" * 40, flush=True)
    return 3
'''
JOB_LINE = re.compile(r"job line (\d) x{40}")


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    make_repo(root / "repo", JOB)
    env = {**os.environ, "RUNPLZ_STATE_DIR": str(root / "state"), "RUNPLZ_CACHE_DIR": str(root / "cache"), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    return root / "repo", env


def _under_pty(repo, env, *args) -> tuple[int, str]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runplz", *args], cwd=repo, env=env,
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), data.decode("utf-8", "replace")


def _job_lines_intact(lines: list[str]) -> None:
    found = [line for line in lines if "job line" in line]
    assert [JOB_LINE.fullmatch(line) is not None for line in found] == [True] * 3, found


@pytest.mark.real
def test_on_a_terminal_the_phase_line_updates_in_place_and_the_job_output_stays_whole(cli_env):
    repo, env = cli_env
    code, raw = _under_pty(repo, env, "local", "--native", "job.py")
    assert code == 0, raw
    assert f"runplz: run{ELLIPSIS}" in raw and f"{CLEAR}runplz: run{ELLIPSIS} 1s" in raw, raw
    ticks = re.findall(rf"runplz: run{ELLIPSIS} (\d+)s", raw)
    assert ticks == sorted(set(ticks), key=int), ticks  # each second at most once, in order
    lines = screen(raw)
    _job_lines_intact(lines)
    assert not [line for line in lines if ELLIPSIS in line], lines  # every status line was erased
    assert any(re.fullmatch(r"runplz: run: done in \d+\.\ds", line) for line in lines), lines
    assert any(re.fullmatch(r"runplz: build: done in \d+\.\ds", line) for line in lines), lines
    log = re.search(r"runplz: run (\S+); log: (\S+)", raw).group(2)
    with open(log, encoding="utf-8") as handle:
        logged = handle.read()
    assert ELLIPSIS not in logged and "\x1b" not in logged and "runplz: run: done in" in logged
    assert len(re.findall(r"\] job line \d x{40}\n", logged)) == 3


@pytest.mark.real
def test_on_a_terminal_without_a_log_the_job_writes_to_it_itself(cli_env):
    repo, env = cli_env
    code, raw = _under_pty(repo, env, "local", "--native", "--no-log-file", "job.py", "--pause=1.5")
    assert code == 0, raw
    lines = screen(raw)
    _job_lines_intact(lines)
    assert not [line for line in lines if ELLIPSIS in line], lines


@pytest.mark.real
def test_quiet_on_a_terminal_shows_no_progress(cli_env):
    repo, env = cli_env
    code, raw = _under_pty(repo, env, "local", "--native", "-q", "job.py", "--pause=1.2")
    assert code == 0, raw
    assert ELLIPSIS not in raw and "\x1b[K" not in raw and "done in" not in raw
    _job_lines_intact(screen(raw))


@pytest.mark.real
def test_piped_shows_only_plain_lines(cli_env):
    repo, env = cli_env
    done = subprocess.run(
        [sys.executable, "-m", "runplz", "local", "--native", "job.py", "--pause=1.2"], cwd=repo, env=env,
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr and ELLIPSIS not in done.stderr
    assert all(line.startswith("runplz: ") for line in done.stderr.splitlines()), done.stderr
    assert re.search(r"^runplz: run: done in \d+\.\ds$", done.stderr, re.M), done.stderr
    _job_lines_intact(done.stdout.splitlines())


# ---------------------------------------------------------------- ssh: the collect phase, the image in the record

SSH_JOB = '''
import os
from runplz import App, Image, SshConfig

app = App("progress-ssh", ssh_config=SshConfig(use_docker=USE_DOCKER))

@app.function(image=Image.from_registry("python:3.11-slim"))
def work() -> str:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "data.bin"), "wb") as handle:
        handle.write(os.urandom(12_345))
    return "ok"
'''


@pytest.mark.real
@pytest.mark.parametrize("mode", ["native", "docker"])
def test_an_ssh_run_collects_its_outputs_as_a_phase_and_records_what_it_ran_in(tmp_path, ssh_boxes, request, mode):
    import json

    from runplz.domain.run_record import ImageBuilt, decode_events

    if mode == "docker":
        request.getfixturevalue("docker_engine")
    repo = tmp_path / "repo"
    make_repo(repo, SSH_JOB.replace("USE_DOCKER", str(mode == "docker")))
    state = tmp_path / "state"
    env = {**os.environ, "RUNPLZ_STATE_DIR": str(state), "RUNPLZ_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "runplz", "ssh", "--host", "runplz-near", "job.py"], cwd=repo, env=env,
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (repo / "out" / "data.bin").stat().st_size == 12_345
    assert re.search(r"^runplz: collect: done in \d+\.\ds, 1[2-9]\.\d KB$", done.stderr, re.M), done.stderr
    order = [m.group(1) for m in re.finditer(r"^runplz: (\w+): done in", done.stderr, re.M)]
    assert order == ["connect", "upload", "build", "run", "collect"], done.stderr
    run = re.search(r"runplz: run (\S+); log:", done.stderr).group(1)

    events = decode_events((state / "runs" / run / "events.jsonl").read_bytes())
    collected = [e for e in events if isinstance(e, PhaseDone) and e.name == "collect"]
    assert len(collected) == 1 and collected[0].size >= 12_345
    made = [e.hash for e in events if isinstance(e, ImageBuilt)]
    if mode == "docker":
        assert len(made) == 1 and re.fullmatch(r"runplz-progress-ssh:base-[0-9a-f]{16}", made[0]), made
    else:
        assert len(made) == 1 and re.fullmatch(r"venv:[0-9a-f]{16,}", made[0]), made
    status = subprocess.run(
        [sys.executable, "-m", "runplz", "status", run], cwd=repo, env=env, capture_output=True, text=True, timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert re.search(rf"^image\s+{re.escape(made[0])}$", status.stdout, re.M), status.stdout
    assert re.search(r"collect \S+ \(1[2-9]\.\d KB\)", status.stdout), status.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == "ok"


def test_no_status_line_when_the_jobs_output_is_piped_away_from_the_terminal(pty, clock, monkeypatch):
    """`runplz local job.py | tee log`: stderr is the terminal, stdout a pipe the
    job's lines reach the screen through without runplz seeing them."""
    read, write = os.pipe()
    piped = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stderr", pty.stream)
    monkeypatch.setattr(sys, "stdout", piped)
    shared = Terminal(term="xterm", clock=clock, ticker=False)  # the default stream: sys.stderr
    assert not shared.live
    shared.status("runplz: run…")
    shared.line("runplz: run: done in 1.0s")
    assert pty.text() == "runplz: run: done in 1.0s\r\n"  # the pty turns \n into \r\n; no status line, no erase
    monkeypatch.setattr(sys, "stdout", pty.stream)
    assert shared.live
    piped.close()
    os.close(read)
