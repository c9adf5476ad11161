"""A `CommandRunner` whose programs are Python callables.

Register programs by name; each receives a `FakeInvocation` (argv, cwd, env,
stdin, a clock, stdout/stderr writers) and returns its exit code:

    runner = FakeCommandRunner({"docker": lambda inv: inv.out("ok") or 0})
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

import attrs

from ..domain.errors import CommandError, CommandNotFound, CommandTimeout
from ..ports.clock import Clock
from ..ports.command_runner import CommandResult, Input
from .fake_clock import FakeClock

_TAIL = 1 << 20

Program = Callable[["FakeInvocation"], int]


class _Deadline(Exception):
    pass


class _Stream:
    def __init__(self, sink: list[str], on_line: Callable[[str], None] | None, echo, raw=None) -> None:
        self._sink = sink
        self._on_line = on_line
        self._echo = echo
        self._raw = raw
        self._partial = ""

    def write(self, text: str) -> None:
        if self._raw is not None:
            try:
                self._raw(text.encode())
            except Exception:
                pass
            return
        if self._echo is not None:
            self._echo.write(text)
            self._echo.flush()
            return
        self._sink.append(text)
        if self._on_line is None:
            return
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            try:
                self._on_line(line.rstrip("\r"))
            except Exception:
                pass

    def close(self) -> None:
        if self._on_line is not None and self._partial:
            line, self._partial = self._partial, ""
            try:
                self._on_line(line.rstrip("\r"))
            except Exception:
                pass


@attrs.define
class FakeInvocation:
    """What a fake program sees."""

    argv: tuple[str, ...]
    cwd: str | None
    env: dict[str, str]
    stdin: bytes
    clock: Clock
    _stdout: _Stream
    _stderr: _Stream
    _deadline: float | None

    def out(self, text: str = "", end: str = "\n") -> None:
        self._stdout.write(text + end)

    def err(self, text: str = "", end: str = "\n") -> None:
        self._stderr.write(text + end)

    def sleep(self, seconds: float) -> None:
        """Wait on the runner's clock; past the run's timeout the program ends."""
        if self._deadline is not None and self.clock.monotonic() + seconds > self._deadline:
            self.clock.sleep(max(0.0, self._deadline - self.clock.monotonic()))
            raise _Deadline()
        self.clock.sleep(seconds)


@attrs.frozen
class FakeCall:
    argv: tuple[str, ...]
    cwd: str | None
    env: Mapping[str, str]
    input: bytes
    timeout: float | None
    inherit: bool
    exit_code: int | None


def respond(stdout: str = "", stderr: str = "", exit_code: int = 0) -> Program:
    """A program that prints fixed text and exits."""

    def program(inv: FakeInvocation) -> int:
        if stdout:
            inv.out(stdout, end="")
        if stderr:
            inv.err(stderr, end="")
        return exit_code

    return program


class FakeCommandRunner:
    def __init__(
        self,
        programs: Mapping[str, Program] | None = None,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.programs: dict[str, Program] = dict(programs or {})
        self.clock = clock or FakeClock()
        self.environ = dict(os.environ if environ is None else environ)
        self.calls: list[FakeCall] = []

    def program(self, name: str, program: Program) -> None:
        self.programs[name] = program

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
        program = self.programs.get(args[0]) or self.programs.get(os.path.basename(args[0]))
        if program is None:
            self.calls.append(FakeCall(args, cwd, dict(env or {}), b"", timeout, inherit, None))
            raise CommandNotFound(f"{args[0]}: command not found", args)
        if cwd is not None and not os.path.isdir(cwd):
            raise CommandError(f"{args[0]}: working directory {cwd} does not exist", args)
        data = input if isinstance(input, (bytes, bytearray)) else (input.read() if input is not None else b"")
        out: list[str] = []
        merged = on_line is not None and on_output is None
        err: list[str] = out if merged else []
        stdout = _Stream(out, on_line, sys.stdout if inherit else None, on_output)
        stderr = _Stream(err, on_line if merged else None, sys.stderr if inherit else None)
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        inv = FakeInvocation(args, cwd, {**self.environ, **(env or {})}, bytes(data), self.clock, stdout, stderr, deadline)
        try:
            code = program(inv)
        except _Deadline:
            self.calls.append(FakeCall(args, cwd, dict(env or {}), bytes(data), timeout, inherit, None))
            raise CommandTimeout(f"{args[0]}: still running after {timeout:g}s; stopped", args) from None
        finally:
            stdout.close()
            stderr.close()
        code = int(code or 0) & 0xFF
        self.calls.append(FakeCall(args, cwd, dict(env or {}), bytes(data), timeout, inherit, code))
        return CommandResult(args, code, "".join(out)[-_TAIL:], "" if merged else "".join(err)[-_TAIL:])
