"""The driver log: whole stamped lines, early lines kept, never an error in the run."""

from __future__ import annotations

import re
import threading

from runplz.adapters.driver_log import DriverLog, stamp
from runplz.adapters.job_output import StdoutJobOutput
from runplz.adapters.stderr_console import StderrConsole

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[([^\]]+)\] (.*)$")


def lines(path) -> list[tuple[str, str]]:
    return [LINE.match(line).groups() for line in path.read_text().splitlines()]


def test_stamp_is_utc_to_the_millisecond():
    assert stamp(0.25) == "1970-01-01T00:00:00.250Z"


def test_lines_before_a_file_is_chosen_are_written_first(tmp_path):
    log = DriverLog()
    log.record("runplz", b"early\n")
    log.attach(str(tmp_path / "a" / "driver.log"))
    log.record("job", b"later\n")
    assert lines(tmp_path / "a" / "driver.log") == [("runplz", "early"), ("job", "later")]
    assert (tmp_path / "a" / "driver.log").stat().st_mode & 0o777 == 0o600


def test_partial_lines_join_per_source_and_flush_at_the_end(tmp_path):
    log = DriverLog()
    log.attach(str(tmp_path / "d.log"))
    log.record("job", b"hel")
    log.record("cmd rsync", b"sent 3 bytes\n")
    log.record("job", b"lo\r\nwor")
    log.close()
    assert lines(tmp_path / "d.log") == [("cmd rsync", "sent 3 bytes"), ("job", "hello"), ("job", "wor")]


def test_threads_never_interleave_inside_a_line(tmp_path):
    log = DriverLog()
    log.attach(str(tmp_path / "d.log"))

    def write(source: str) -> None:
        for _ in range(300):
            log.record(source, f"{source}-start ".encode())
            log.record(source, f"{source}-end\n".encode())

    threads = [threading.Thread(target=write, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = lines(tmp_path / "d.log")
    assert len(found) == 1200
    assert all(text == f"{source}-start {source}-end" for source, text in found)


def test_an_unwritable_log_turns_itself_off_with_one_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    warned = []
    log = DriverLog()
    log.on_error = warned.append
    log.attach(str(blocker / "driver.log"))
    log.record("runplz", b"still fine\n")
    assert len(warned) == 1 and "no driver log" in warned[0]
    assert log.path is None and not log.enabled


def test_disabled_keeps_nothing(tmp_path):
    log = DriverLog(enabled=False)
    log.attach(str(tmp_path / "d.log"))
    log.record("runplz", b"x\n")
    assert not (tmp_path / "d.log").exists()


def test_the_console_and_the_job_output_tee_into_the_log(tmp_path, capsys):
    log = DriverLog()
    log.attach(str(tmp_path / "d.log"))
    quiet = StderrConsole(quiet=True, log=log)
    quiet.info("hidden on the terminal")
    quiet.warn("careful")
    StdoutJobOutput(log=log).write(b"job says hi\n")
    shown = capsys.readouterr()
    assert "hidden" not in shown.err and "careful" in shown.err and "job says hi" in shown.out
    assert lines(tmp_path / "d.log") == [
        ("runplz", "runplz: hidden on the terminal"),
        ("runplz", "runplz: warning: careful"),
        ("job", "job says hi"),
    ]


def test_a_pinned_file_takes_every_run(tmp_path):
    log = DriverLog()
    log.pin(str(tmp_path / "all.log"))
    log.attach(str(tmp_path / "run1.log"))
    log.record("runplz", b"x\n")
    assert log.path == str(tmp_path / "all.log") and not (tmp_path / "run1.log").exists()


def test_a_status_line_on_a_terminal_never_reaches_the_log(tmp_path):
    """The status line and its ticks are for the terminal only; the log keeps the
    lines that stay, even when the terminal's stream copies what it is given
    to the log (as stderr does while the modal client runs)."""
    import os

    from runplz.adapters.fake_clock import FakeClock
    from runplz.adapters.stream_tee import TeeText
    from runplz.adapters.terminal import Terminal

    log = DriverLog()
    log.attach(str(tmp_path / "d.log"))
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        clock = FakeClock()
        terminal = Terminal(TeeText(stream, log, "modal"), term="xterm", clock=clock, ticker=False)
        console = StderrConsole(log=log, terminal=terminal)
        console.progress("upload\u2026")
        for _ in range(3):
            clock.advance(1)
            terminal.tick()
        console.info("upload: done in 3.0s, 1.2 MB")
        shown = os.read(master, 1 << 16).decode()
    finally:
        stream.close()
        os.close(master)
    assert "upload\u2026 3s" in shown and "\r\x1b[K" in shown
    assert lines(tmp_path / "d.log") == [("runplz", "runplz: upload: done in 3.0s, 1.2 MB")]
