"""One small program, run for real (as a subprocess) or inside the fake runner.

Both receive an ``io`` with out/err/sleep/env/cwd/stdin and return the exit
code, so a contract test can say "run helper X" to either runner.
"""

from __future__ import annotations

import os
import sys


def behave(args: list[str], io) -> int:
    command, rest = args[0], args[1:]
    if command == "exit":
        return int(rest[0])
    if command == "echo":
        io.out(" ".join(rest))
        return 0
    if command == "both":
        io.out("to-out")
        io.err("to-err")
        return 0
    if command == "interleave":
        for index in range(int(rest[0])):
            (io.out if index % 2 == 0 else io.err)(f"line {index}")
        return 0
    if command == "cat":
        io.out(io.stdin.decode("utf-8", "replace"), end="")
        return 0
    if command == "env":
        io.out(io.env.get(rest[0], "<unset>"))
        return 0
    if command == "cwd":
        io.out(io.cwd or os.getcwd())
        return 0
    if command == "sleep":
        io.sleep(float(rest[0]))
        io.out("woke")
        return 0
    if command == "big":
        line = "x" * 1023
        for index in range(int(rest[0])):
            io.out(f"{line}")
        io.out("last line")
        return 0
    if command == "badbytes":
        io.out_bytes(b"ok \xff\xfe end\n")
        return 0
    if command == "noeol":
        io.out("partial", end="")
        return 0
    raise SystemExit(f"unknown helper command {command}")


class RealIO:
    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.cwd = os.getcwd()
        self.stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""

    def out(self, text: str = "", end: str = "\n") -> None:
        sys.stdout.write(text + end)
        sys.stdout.flush()

    def err(self, text: str = "", end: str = "\n") -> None:
        sys.stderr.write(text + end)
        sys.stderr.flush()

    def out_bytes(self, data: bytes) -> None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)


class FakeIO:
    """Adapts a `FakeInvocation` to the helper's io."""

    def __init__(self, inv) -> None:
        self._inv = inv
        self.env = inv.env
        self.cwd = inv.cwd
        self.stdin = inv.stdin

    def out(self, text: str = "", end: str = "\n") -> None:
        self._inv.out(text, end=end)

    def err(self, text: str = "", end: str = "\n") -> None:
        self._inv.err(text, end=end)

    def out_bytes(self, data: bytes) -> None:
        self._inv.out(data.decode("utf-8", "replace"), end="")

    def sleep(self, seconds: float) -> None:
        self._inv.sleep(seconds)


def fake_program(inv) -> int:
    return behave(list(inv.argv[1:]), FakeIO(inv))


if __name__ == "__main__":
    sys.exit(behave(sys.argv[1:], RealIO()))
