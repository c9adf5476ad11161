"""`CommandRunner` over `subprocess`, in its own process group."""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import IO, Any, Callable, Mapping, Sequence

from ..domain.errors import CommandError, CommandNotFound, CommandTimeout
from ..ports.command_runner import CommandResult, Input
from ..ports.log_sink import LogSink
from .terminal import Terminal, shared_terminal

_TAIL = 1 << 20
_GRACE = 5.0


class _Tail:
    """Keeps the last MiB of text."""

    def __init__(self) -> None:
        self._chunks: deque[str] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        with self._lock:
            self._chunks.append(text)
            self._size += len(text)
            while self._size > _TAIL and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        with self._lock:
            return "".join(self._chunks)[-_TAIL:]


def _pump(stream: IO[bytes], tail: _Tail, on_line: Callable[[str], None] | None, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        tail.add(line)
        if on_line is not None:
            with lock:
                try:
                    on_line(line.rstrip("\r\n"))
                except Exception:
                    pass
    stream.close()


def _relay(stream: IO[bytes], on_output: Callable[[bytes], None]) -> None:
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        try:
            on_output(chunk)
        except Exception:
            pass
    stream.close()


def _tee(stream: IO[bytes], terminal: str, log: LogSink, source: str, shown: Terminal) -> None:
    """Pass a child's output to our ``terminal`` ("stdout"/"stderr") as it
    comes (through ``shown``, which takes the status line away first), and to the log."""

    def show(chunk: bytes) -> None:
        shown.write(getattr(sys, terminal), chunk)
        log.record(source, chunk)

    _relay(stream, show)


_USERINFO = re.compile(r"://[^/@\s]+@")


def shown_command(args: Sequence[str]) -> str:
    """The command as the log shows it: credentials in URLs hidden."""
    return _USERINFO.sub("://***@", shlex.join(args))


def _feed(stream: IO[bytes], data: Input) -> None:
    try:
        if isinstance(data, (bytes, bytearray)):
            stream.write(data)
        elif data is not None:
            for chunk in iter(lambda: data.read(1 << 16), b""):
                stream.write(chunk)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:  # no group yet: a child interrupted before its setsid
        if proc.returncode is None:  # not reaped, so the pid is still the child's
            try:
                os.kill(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
    except PermissionError:
        pass


def _stop(proc: subprocess.Popen, first: int) -> None:
    """Signal the child's group, give it a grace, then kill what is left
    (even when another interrupt arrives during the grace)."""
    try:
        _signal_group(proc, first)
        proc.wait(timeout=_GRACE)
    except subprocess.TimeoutExpired:
        pass
    finally:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


_NO_LIMIT = 10 * 365 * 24 * 3600.0  # "no timeout", as a wait that still polls
_TICK = 0.05  # the longest a signal waits for the main thread to run its handler


def _wait(proc: subprocess.Popen, timeout: float | None) -> None:
    """Wait for ``proc`` to end; `subprocess.TimeoutExpired` after ``timeout`` seconds.

    Never a blocking wait: with no timeout, Popen.wait() blocks in waitpid(),
    and a signal delivered to one of our reader threads would then never reach
    the main thread (Ctrl-C, SIGTERM and SIGHUP would hang). Popen's timed
    wait polls with a growing sleep, so it sees the end up to 50 ms late (on
    every command: ssh sessions, rsync); the child's pidfd wakes this wait the
    moment it ends, and it still wakes every `_TICK` for the handlers.
    """
    try:
        handle = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfds here (not Linux >= 5.3): Popen's polling wait
        proc.wait(timeout=timeout if timeout is not None else _NO_LIMIT)
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        waiter = select.poll()  # not select.select: that refuses descriptors past 1023
        waiter.register(handle, select.POLLIN)
        while proc.poll() is None:
            left = _TICK if deadline is None else min(_TICK, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            waiter.poll(left * 1000)
    finally:
        os.close(handle)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class _Child(subprocess.Popen):
    """`subprocess.Popen` that hands itself to ``born`` before it forks, so an
    interrupt landing inside Popen (after the fork) or just after it returns
    still finds the child to stop."""

    def __init__(self, born: list, *args: Any, **kwargs: Any) -> None:
        self._born = born
        super().__init__(*args, **kwargs)

    def _execute_child(self, *args: Any, **kwargs: Any) -> None:
        self._born.append(self)
        super()._execute_child(*args, **kwargs)  # type: ignore[misc]


def _stop_born(born: list, first: int) -> None:
    """`_stop` the child if it was started (its pid known) and not already reaped."""
    if born and getattr(born[0], "pid", None) is not None and born[0].returncode is None:
        _stop(born[0], first)


class SubprocessRunner:
    """Runs programs as children in a new session, so a timeout or an
    interrupt can end the program and everything it started.

    With a ``log`` (the driver log), every command is written there, and the
    output of ``inherit=True`` commands passes through runplz to the terminal,
    so the log holds it too: the program then writes to pipes, not the
    terminal (Python children get PYTHONUNBUFFERED=1 so nothing is held back).
    What reaches the terminal goes through ``terminal`` (default: the shared
    one), so runplz's status line never garbles it.
    """

    def __init__(self, log: LogSink | None = None, verbose: bool = False, terminal: Terminal | None = None) -> None:
        self._log = log
        self._verbose = verbose  # also show each command on stderr
        self._terminal = terminal or shared_terminal()

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        input: Input = None,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
        inherit: bool = False,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult:
        args = tuple(str(a) for a in argv)
        if not args:
            raise CommandError("empty command", args)
        full_env = None if env is None else {**os.environ, **env}
        tee = inherit and self._log is not None and getattr(self._log, "enabled", True)
        if tee:  # its output now goes through a pipe: keep Python children from holding it back
            full_env = {"PYTHONUNBUFFERED": "1", **(full_env or os.environ)}
        search = (full_env or os.environ).get("PATH")
        if os.path.sep not in args[0] and shutil.which(args[0], path=search) is None:
            raise CommandNotFound(f"{args[0]}: command not found", args)
        if cwd is not None and not os.path.isdir(cwd):
            raise CommandError(f"{args[0]}: working directory {cwd} does not exist", args)
        if self._log is not None or self._verbose:
            line = f"$ {shown_command(args)}\n"
            if self._log is not None:
                self._log.record("runplz", line.encode("utf-8", "replace"))
            if self._verbose:
                self._terminal.line(f"runplz: {line}")
        pipe = subprocess.PIPE if tee or not inherit else None
        if inherit and not tee:
            self._terminal.release()  # the program writes to the terminal itself
        born: list[subprocess.Popen] = []  # the child, the moment it exists (before Popen returns)
        try:  # from the fork on: an interrupt anywhere below ends the child with us
            try:
                proc = _Child(
                    born,
                    args,
                    cwd=cwd,
                    env=full_env,
                    stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                    stdout=pipe,
                    stderr=subprocess.PIPE if tee else None if inherit else (
                        subprocess.STDOUT if on_line and not on_output else subprocess.PIPE
                    ),
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise CommandNotFound(f"{args[0]}: command not found", args) from None
            except PermissionError as exc:
                raise CommandError(f"{args[0]}: {exc.strerror}", args) from None
            out, err = _Tail(), _Tail()
            threads = self._readers(proc, tee, args, input, on_line, on_output, out, err)
            for thread in threads:
                thread.start()
            _wait(proc, timeout)
        except subprocess.TimeoutExpired:
            _stop(born[0], signal.SIGTERM)
            raise CommandTimeout(f"{args[0]}: still running after {timeout:g}s; stopped", args) from None
        except KeyboardInterrupt:
            _stop_born(born, signal.SIGINT)
            raise
        except BaseException:  # anything else: the program never outlives its runner
            _stop_born(born, signal.SIGTERM)
            raise
        for thread in threads:
            thread.join(timeout=_GRACE)
        return CommandResult(args, _exit_code(proc.returncode), out.text(), err.text())

    def _readers(
        self, proc: subprocess.Popen, tee: bool, args: tuple[str, ...], input: Input,
        on_line: Callable[[str], None] | None, on_output: Callable[[bytes], None] | None, out: _Tail, err: _Tail,
    ) -> list[threading.Thread]:
        """The threads that move the child's output and input (not started yet)."""
        lock = threading.Lock()
        threads = []
        if tee:
            source = f"cmd {os.path.basename(args[0])}"
            threads += [
                threading.Thread(
                    target=_tee, args=(proc.stdout, "stdout", self._log, source, self._terminal), daemon=True
                ),
                threading.Thread(
                    target=_tee, args=(proc.stderr, "stderr", self._log, source + " stderr", self._terminal),
                    daemon=True,
                ),
            ]
        elif proc.stdout is not None and on_output is not None:
            threads.append(threading.Thread(target=_relay, args=(proc.stdout, on_output), daemon=True))
        elif proc.stdout is not None:
            threads.append(threading.Thread(target=_pump, args=(proc.stdout, out, on_line, lock), daemon=True))
        if proc.stderr is not None and not tee:
            threads.append(threading.Thread(
                target=_pump, args=(proc.stderr, err, None if on_output else on_line, lock), daemon=True
            ))
        if proc.stdin is not None:
            threads.append(threading.Thread(target=_feed, args=(proc.stdin, input), daemon=True))
        return threads
