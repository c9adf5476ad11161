"""A `CommandRunner` that runs programs on a `Transport`'s target.

Lets adapters written over CommandRunner (the Docker engine, say) drive a
remote machine unchanged.
"""

from __future__ import annotations

import sys
from typing import Callable, Mapping, Sequence

from ..domain.errors import CommandError, CommandNotFound
from ..ports.command_runner import CommandResult, Input
from ..ports.transport import Transport
from .terminal import shared_terminal

_NO_CWD = "@@runplz-no-cwd"
_NOT_FOUND = "@@runplz-not-found"
_SCRIPT = (
    'if [ -n "$1" ]; then cd "$1" 2>/dev/null || {{ echo {no_cwd} >&2; exit 1; }}; fi; shift; '
    'command -v "$1" >/dev/null 2>&1 || {{ echo {not_found} >&2; exit 127; }}; '
    'exec "$@"{merge}'
)


class _Lines:
    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._partial = b""
        self.text: list[str] = []

    def feed(self, chunk: bytes) -> None:
        self._partial += chunk
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            self._emit(line)

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        self.text.append(line + "\n")
        try:
            self._on_line(line.rstrip("\r"))
        except Exception:
            pass

    def close(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self.text[-1] = self.text[-1][:-1]
            self._partial = b""


class TransportCommandRunner:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

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
        merge = " 2>&1" if on_line is not None and on_output is None else ""
        script = _SCRIPT.format(no_cwd=_NO_CWD, not_found=_NOT_FOUND, merge=merge)
        command = ["sh", "-c", script, "sh", cwd or ""]
        if env:
            command += ["env", *(f"{k}={v}" for k, v in env.items())]
        command += list(args)
        lines = _Lines(on_line) if merge else None
        sink = on_output
        if inherit:
            def sink(chunk: bytes) -> None:
                shared_terminal().write(sys.stdout, chunk)
        elif lines is not None:
            sink = lines.feed
        result = self._transport.run(command, input=input, timeout=timeout, on_output=sink)
        if lines is not None:
            lines.close()
        stderr = result.stderr
        if _NO_CWD in stderr:
            raise CommandError(f"{args[0]}: working directory {cwd} does not exist on {self._transport.name}", args)
        if _NOT_FOUND in stderr and result.exit_code == 127:
            raise CommandNotFound(f"{args[0]}: command not found on {self._transport.name}", args)
        if inherit:
            shared_terminal().write(sys.stderr, stderr.encode("utf-8", "replace"))
            return CommandResult(args, result.exit_code, "", "")
        if lines is not None:
            return CommandResult(args, result.exit_code, "".join(lines.text)[-(1 << 20):], "")
        return CommandResult(args, result.exit_code, result.stdout, stderr)
