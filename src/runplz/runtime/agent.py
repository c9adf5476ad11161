"""The remote side of a detached run: start, follow, kill, and make a venv.

Invoked as ``python3 <bundle>/runplz_boot.py agent COMMAND ...`` on the target
(stdlib only, except ``venv``, which uses the shipped runplz adapters).

A run folder holds ``repo/`` (the job's working copy), ``out/``
($RUNPLZ_OUT) and ``ctl/``: payload.json, result.json, job.log, and the
supervisor's files (supervisor.pid, pgid, container, exit_code).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from ..domain.remote_layout import ENV_MARK, RESULT_MARK


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _supervise(ctl: str, spec: dict, report: int) -> None:
    """In the daemonised child: run the job in its own process group, record how it ended."""
    env = {**os.environ, **spec.get("env", {})}
    with open(os.path.join(ctl, "job.log"), "ab", buffering=0) as log:
        try:
            job = subprocess.Popen(
                spec["argv"], cwd=spec.get("cwd"), env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            log.write(f"runplz: could not start the job: {exc}\n".encode())
            _write(os.path.join(ctl, "exit_code"), "127")
            os.write(report, b"0\n")
            return
        _write(os.path.join(ctl, "pgid"), str(job.pid))
        os.write(report, f"{job.pid}\n".encode())
        os.close(report)
        code = job.wait()
    _write(os.path.join(ctl, "exit_code"), str(128 - code if code < 0 else code))


def _copy_tree(source: str, dest: str) -> None:
    """The run's own copy of the uploaded repo (so the job can write in it)."""
    if os.path.exists(dest):
        return
    copied = subprocess.run(["cp", "-a", source, dest], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if copied.returncode != 0:
        import shutil

        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(source, dest, symlinks=True)


def start(run: str) -> int:
    """Read the job spec (JSON) on stdin, detach a supervisor, print the job's pgid."""
    spec = json.loads(sys.stdin.read())
    ctl = os.path.join(run, "ctl")
    os.makedirs(ctl, exist_ok=True)
    os.makedirs(os.path.join(run, "out"), exist_ok=True)
    _write(os.path.join(ctl, "payload.json"), spec["payload"])
    if spec.get("container"):
        _write(os.path.join(ctl, "container"), spec["container"])
    if spec.get("repo_from"):
        _copy_tree(spec["repo_from"], os.path.join(run, "repo"))
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        _write(os.path.join(ctl, "supervisor.pid"), str(os.getpid()))
        try:
            _supervise(ctl, spec, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        pgid = pipe.readline().strip()
    print(pgid, flush=True)
    return 0 if pgid and pgid != "0" else 1


def follow(run: str, offset: int) -> int:
    """Stream job.log from ``offset`` until the job has ended and the log is drained;
    then one result line on stderr."""
    ctl = os.path.join(run, "ctl")
    log_path = os.path.join(ctl, "job.log")
    out = sys.stdout.buffer
    idle = 0.02
    while not os.path.exists(log_path):
        time.sleep(idle)
    with open(log_path, "rb") as log:
        log.seek(offset)
        while True:
            chunk = log.read(1 << 16)
            if chunk:
                out.write(chunk)
                out.flush()
                idle = 0.02
                continue
            code = _read(os.path.join(ctl, "exit_code"))
            if code is not None:
                rest = log.read()
                if rest:
                    out.write(rest)
                    out.flush()
                break
            supervisor = (_read(os.path.join(ctl, "supervisor.pid")) or "").strip()
            if supervisor.isdigit() and not _alive(int(supervisor)) and _read(os.path.join(ctl, "exit_code")) is None:
                _write(os.path.join(ctl, "exit_code"), "255")
                continue
            time.sleep(idle)
            idle = min(idle * 2, 0.25)
    record = {
        "exit_code": int((_read(os.path.join(ctl, "exit_code")) or "255").strip() or 255),
        "result": _read(os.path.join(ctl, "result.json")),
    }
    sys.stderr.write(RESULT_MARK + json.dumps(record) + "\n")
    sys.stderr.flush()
    return 0


def kill(run: str, grace: float) -> int:
    """Stop this run only: its process group, and its container if it has one."""
    ctl = os.path.join(run, "ctl")
    container = (_read(os.path.join(ctl, "container")) or "").strip()
    if container:
        subprocess.run(["docker", "rm", "-f", container], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pgid = (_read(os.path.join(ctl, "pgid")) or "").strip()
    if pgid.isdigit():
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0)):
            try:
                os.killpg(int(pgid), sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(int(pgid), 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
    print("killed", flush=True)
    return 0


def venv(request_json: str) -> int:
    """Make (or reuse) a venv under ~/.runplz/venvs; the last line names it."""
    from ..adapters.subprocess_runner import SubprocessRunner
    from ..adapters.venv_builder import VenvBuilder
    from ..domain.errors import BuildError
    from ..ports.python_env import EnvRequest, PipStep
    import shutil

    data = json.loads(request_json)
    request = EnvRequest(data["key"], data["python"], tuple(PipStep(tuple(s["packages"]), s.get("index_url"), s.get("editable", False)) for s in data["steps"]))
    builder = VenvBuilder(SubprocessRunner(), os.path.abspath(data["root"]), uv=shutil.which("uv"))
    try:
        env = builder.ensure(request, on_line=lambda line: print(line, flush=True))
    except BuildError as exc:
        print(ENV_MARK + json.dumps({"error": str(exc)}), flush=True)
        return 1
    print(ENV_MARK + json.dumps({"python": env.python, "created": env.created}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: agent start|follow|kill|venv ...\n")
        return 2
    command, rest = argv[0], argv[1:]
    if command == "start" and len(rest) == 1:
        return start(rest[0])
    if command == "follow" and len(rest) == 2:
        return follow(rest[0], int(rest[1]))
    if command == "kill" and len(rest) in (1, 2):
        return kill(rest[0], float(rest[1]) if len(rest) == 2 else 5.0)
    if command == "venv" and len(rest) == 1:
        return venv(rest[0])
    sys.stderr.write(f"agent: bad arguments {argv!r}\n")
    return 2
