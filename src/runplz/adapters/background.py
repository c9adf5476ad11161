"""``--detach``: run the same command as a driver in the background.

The background driver runs in its own session, with no terminal: it lives on
when this terminal closes, and does all a driver does (the run, the outputs,
an ephemeral box's deletion). It reports its run id through a file the moment
its run is recorded; until then its output goes to a file, so a mistake that
stops it early is shown here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from ..ports.launcher import Detached

REPORT_ENV = "RUNPLZ_DETACH_REPORT"  # where a background driver writes its run id


def report_run(run_id: str) -> None:
    """In the background driver: tell the launcher the run id (once)."""
    path = os.environ.pop(REPORT_ENV, None)
    if not path:
        return
    for stream in (sys.stdout, sys.stderr):  # what was said so far reaches the launcher first
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(run_id)
        os.replace(path + ".tmp", path)
    except OSError:
        return
    # From here on the driver log has it all; the launcher's output file is let go.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 1)
    os.dup2(nowhere, 2)
    os.close(nowhere)


class BackgroundLauncher:
    """The `Launcher` port: ``python -m runplz ARGS`` in a new session."""

    def start(self, args: Sequence[str], cwd: str, wait_seconds: float = 600.0) -> Detached:
        return start_in_background(args, cwd, wait_seconds)


def start_in_background(args: Sequence[str], cwd: str, wait_seconds: float = 600.0) -> Detached:
    """Start ``runplz ARGS`` in the background and wait for its run id (or its end)."""
    folder = tempfile.mkdtemp(prefix="runplz-detach-")
    report = os.path.join(folder, "run")
    early = os.path.join(folder, "output")
    errors = os.path.join(folder, "errors")
    with open(early, "wb") as output, open(errors, "wb") as error, open(os.devnull, "rb") as nothing:
        child = subprocess.Popen(
            [sys.executable, "-m", "runplz", *args], cwd=cwd, env={**os.environ, REPORT_ENV: report},
            stdin=nothing, stdout=output, stderr=error, start_new_session=True,
        )
    give_up = time.monotonic() + wait_seconds
    try:
        while True:
            if os.path.exists(report):
                with open(report, encoding="utf-8") as handle:
                    return Detached(handle.read().strip(), None, _read(early), _read(errors), child.pid)
            code = child.poll()
            if code is not None or time.monotonic() > give_up:
                code = None if code is None else (128 - code if code < 0 else code)
                return Detached(None, code, _read(early), _read(errors), child.pid)
            time.sleep(0.05)
    finally:
        for name in (report, early, errors):
            try:
                os.unlink(name)
            except OSError:
                pass
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""
