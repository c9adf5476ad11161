"""A `Transport` with an in-memory remote filesystem and Python programs.

Programs are registered by name as in `FakeCommandRunner`; a missing one is
exit code 127. ``drop()`` breaks the connection (the next call raises
`ConnectionLost` until ``connect``); ``unreachable_until`` makes ``connect``
wait on the clock.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Mapping, Sequence

from ..domain.errors import CommandNotFound, ConnectionLost, TransportError, Unreachable
from ..ports.clock import Clock
from ..ports.command_runner import CommandResult, Input
from .fake_clock import FakeClock
from .fake_runner import FakeCommandRunner, Program
from .local_transport import _tree, split_excludes


class FakeTransport:
    def __init__(
        self,
        programs: Mapping[str, Program] | None = None,
        *,
        clock: Clock | None = None,
        name: str = "fake-box",
    ) -> None:
        self.clock = clock or FakeClock()
        self.runner = FakeCommandRunner(programs, clock=self.clock, environ={})
        self.name = name
        self.files: dict[str, tuple[bytes, bool]] = {}  # remote path -> (content, executable)
        self.folders: set[str] = set()
        self.connections = 0
        self.unreachable_until: float | None = None
        self._connected = False

    def connect(self, wait: float = 0) -> None:
        if self._connected:
            return
        if self.unreachable_until is not None:
            deadline = self.clock.monotonic() + wait
            while self.clock.monotonic() < self.unreachable_until:
                if self.clock.monotonic() >= deadline:
                    raise Unreachable(f"{self.name} did not answer within {wait:g}s")
                self.clock.sleep(min(1.0, deadline - self.clock.monotonic()) or 1.0)
        self._connected = True
        self.connections += 1

    def drop(self) -> None:
        self._connected = False

    def close(self) -> None:
        self._connected = False

    def _require(self, what: str) -> None:
        if not self._connected:
            raise ConnectionLost(f"lost the connection to {self.name} during {what}")

    def run(
        self,
        argv: Sequence[str],
        *,
        input: Input = None,
        timeout: float | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult:
        what = f"`{' '.join(argv)[:60]}`"
        self._require(what)
        try:
            result = self.runner.run(argv, input=input, timeout=timeout, on_output=on_output)
        except CommandNotFound as exc:
            return CommandResult(tuple(argv), 127, "", f"{exc}\n")
        self._require(what)  # a program may drop() the connection while it runs
        return result

    @staticmethod
    def _norm(path: str) -> str:
        return path.strip("/")

    def _under(self, folder: str) -> list[str]:
        prefix = self._norm(folder) + "/"
        return [p for p in self.files if p.startswith(prefix)]

    def push(self, local: str, remote: str, excludes: Sequence[str] = ()) -> int:
        self._require(f"uploading {local}")
        names, anchored = split_excludes(excludes)
        files, folders = _tree(local, names, anchored)
        target = self._norm(remote)
        before = {path[len(target) + 1:]: self.files.pop(path)[0] for path in self._under(target)}
        self.folders = {f for f in self.folders if not f.startswith(target + "/")}
        self.folders.add(target)
        sent = 0
        for rel in folders:
            self.folders.add(f"{target}/{rel}")
        for rel in files:
            source = os.path.join(local, rel)
            with open(source, "rb") as handle:
                data = handle.read()
            executable = bool(os.stat(source).st_mode & stat.S_IXUSR)
            if before.get(rel) != data:
                sent += len(data)
            self.files[f"{target}/{rel}"] = (data, executable)
        return sent

    def pull(self, remote: str, local: str) -> int:
        self._require(f"downloading {remote}")
        source = self._norm(remote)
        if source not in self.folders and not self._under(source):
            raise TransportError(f"downloading {self.name}:{remote} failed: no such folder")
        os.makedirs(local, exist_ok=True)
        received = 0
        for folder in self.folders:
            if folder.startswith(source + "/"):
                os.makedirs(os.path.join(local, folder[len(source) + 1:]), exist_ok=True)
        for path in self._under(source):
            data, executable = self.files[path]
            dest = os.path.join(local, path[len(source) + 1:])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as handle:
                handle.write(data)
            os.chmod(dest, 0o755 if executable else 0o644)
            received += len(data)
        return received
