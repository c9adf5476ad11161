"""The function Modal runs: loaded in the container from ``/root/runplz_modal_entry.py``.

Stdlib only, imports nothing of runplz: the container has no runplz
installed. ``run`` starts the shipped runtime (``/runplz/bundle``) on the
dispatch in a child process, so the job's output goes straight to the
container's stdout and stderr, stops it itself past ``deadline`` (leaving
Modal's own timeout as the backstop), and returns its exit code, its result
record and ``/out`` as a gzip'd tar archive.

The paths here mirror ``runplz.domain.layout`` (a test keeps them equal).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

REPO_DIR = "/runplz/repo"
BUNDLE_DIR = "/runplz/bundle"
OUT_DIR = "/out"
BOOT_SCRIPT = "runplz_boot.py"
PAYLOAD_FILE = "payload.json"
RESULT_FILE = "result.json"
EXIT_TIMED_OUT = 124
EXIT_CANCELLED = 130


def run(payload: str, deadline: float, grace: float = 10.0, index: int | None = None) -> dict:
    """Modal's entry: run the dispatch in this container's fixed places.

    ``index`` (one input of a map) comes back in the reply, so the driver knows
    which input a result is for when Modal gives them as they finish."""
    reply = execute(payload, deadline, REPO_DIR, BUNDLE_DIR, OUT_DIR, sys.executable, grace=grace)
    reply["index"] = index
    return reply


def execute(
    payload: str,
    deadline: float,
    repo: str,
    bundle: str,
    out: str,
    python: str,
    env: dict | None = None,
    grace: float = 10.0,
    cancel=None,
) -> dict:
    """Run one dispatch: ``{"exit_code", "result" (text or None), "outputs"
    (tar.gz bytes of ``out``), "timed_out", "notes"}``. ``deadline`` 0 means
    none; past it the job's group gets SIGTERM, and SIGKILL ``grace`` s later.
    ``cancel`` (a `threading.Event`, used on this machine only): once set, the
    job is stopped the same way and the exit code is 130."""
    # Modal hands a warm container the next input of a map: each input starts
    # with an empty outputs folder, so its archive holds its own files only.
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="runplz-run-")
    try:
        payload_path = os.path.join(folder, PAYLOAD_FILE)
        with open(payload_path, "w", encoding="utf-8") as handle:
            handle.write(payload)
        environ = dict(os.environ if env is None else env)
        environ["RUNPLZ_OUT"] = out
        sys.stdout.flush()
        sys.stderr.flush()
        child = subprocess.Popen(
            [python, os.path.join(bundle, BOOT_SCRIPT), payload_path],
            cwd=repo,
            env=environ,
            start_new_session=True,
        )
        exit_code, timed_out = _wait(child, deadline, grace) if cancel is None else _watch(child, deadline, grace, cancel)
        notes: list = []
        return {
            "exit_code": exit_code,
            "result": _read(os.path.join(folder, RESULT_FILE)),
            "outputs": pack(out, notes),
            "timed_out": timed_out,
            "notes": notes,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait(child: subprocess.Popen, deadline: float, grace: float) -> tuple[int, bool]:
    try:
        code = child.wait(timeout=deadline if deadline > 0 else None)
    except subprocess.TimeoutExpired:
        _stop(child, grace)
        return EXIT_TIMED_OUT, True
    except BaseException:  # interrupted in here: leave no job running
        _stop(child, grace)
        raise
    _kill_group(child)  # what the job left running must not write /out while it is packed
    return (128 - code if code < 0 else code), False


def _watch(child: subprocess.Popen, deadline: float, grace: float, cancel) -> tuple[int, bool]:
    """`_wait`, also stopping the job once ``cancel`` is set (exit code 130)."""
    limit = time.monotonic() + deadline if deadline > 0 else None
    while True:
        try:
            code = child.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            if cancel.is_set():
                _stop(child, grace)
                return EXIT_CANCELLED, False
            if limit is not None and time.monotonic() >= limit:
                _stop(child, grace)
                return EXIT_TIMED_OUT, True
            continue
        except BaseException:
            _stop(child, grace)
            raise
        _kill_group(child)
        return (128 - code if code < 0 else code), False


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(child: subprocess.Popen, grace: float) -> None:
    """SIGTERM the job's whole process group, SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def pack(folder: str, notes: list | None = None) -> bytes:
    """``folder``'s files, folders and links (never followed) as tar.gz bytes.
    A member that cannot be read is left out, with a line in ``notes``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for top, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(dirs) + sorted(names):
                path = os.path.join(top, name)
                arcname = os.path.relpath(path, folder)
                try:
                    archive.add(path, arcname=arcname, recursive=False)  # links stay links
                except (OSError, tarfile.TarError) as exc:
                    if notes is not None:
                        notes.append(f"{arcname}: not brought back ({exc})")
    return buffer.getvalue()
