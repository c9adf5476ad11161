"""A `Transport` with an in-memory remote filesystem and Python programs.

Programs are registered by name as in `FakeCommandRunner`; a missing one is
exit code 127. ``drop()`` breaks the connection (the next call raises
`ConnectionLost` until ``connect``); ``unreachable_until`` makes ``connect``
wait on the clock. The remote filesystem is plain data: ``files`` (path ->
(content, executable)), ``links`` (path -> target), ``folders`` and
``specials`` (path -> kind, e.g. "fifo"), which tests may fill directly.
"""

from __future__ import annotations

import io
import os
import stat
from typing import Callable, Mapping, Sequence

from ..domain.errors import CommandNotFound, ConnectionLost, TransportError, Unreachable
from ..domain.safe_links import escapes
from ..ports.clock import Clock
from ..ports.command_runner import CommandResult, Input
from ..ports.transport import Pulled
from .fake_clock import FakeClock
from .fake_runner import FakeCommandRunner, Program
from .local_transport import all_paths
from .output_sink import OutputSink


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
        self.files: dict[str, tuple[bytes, bool]] = {}
        self.links: dict[str, str] = {}
        self.folders: set[str] = set()
        self.specials: dict[str, str] = {}
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

    def _parents(self, path: str) -> None:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            self.folders.add("/".join(parts[:depth]))

    def push(
        self, local: str, remote: str, paths: Sequence[str] | None = None, basis: str | None = None
    ) -> int:
        self._require(f"uploading {local}")
        target = self._norm(remote)
        self._parents(target + "/x")
        sent = 0
        for rel in all_paths(local) if paths is None else sorted(paths):
            source = os.path.join(local, *rel.split("/"))
            info = os.lstat(source)
            dest = f"{target}/{rel}"
            self._parents(dest)
            if stat.S_ISDIR(info.st_mode):
                self.folders.add(dest)
            elif stat.S_ISLNK(info.st_mode):
                link = os.readlink(source)
                if not escapes(rel, link):
                    self.links[dest] = link
            elif stat.S_ISREG(info.st_mode):
                with open(source, "rb") as handle:
                    data = handle.read()
                known = self.files.get(f"{self._norm(basis)}/{rel}") if basis else None
                if known is None or known[0] != data:
                    sent += len(data)
                self.files[dest] = (data, bool(info.st_mode & stat.S_IXUSR))
        return sent

    def pull(self, remote: str, local: str, move: bool = False) -> Pulled:
        self._require(f"downloading {remote}")
        source = self._norm(remote)
        if source in self.links:
            raise TransportError(f"downloading {self.name}:{remote} failed: it is a symlink; not following it")
        prefix = source + "/"
        entries: list[tuple[str, str]] = []
        for kind, table in (("file", self.files), ("link", self.links), ("special", self.specials)):
            entries += [(p[len(prefix):], kind) for p in table if p.startswith(prefix)]
        folders = {p[len(prefix):] for p in self.folders if p.startswith(prefix)}
        for rel, _ in entries:
            parts = rel.split("/")
            folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        if source not in self.folders and not entries and not folders:
            raise TransportError(f"downloading {self.name}:{remote} failed: no such folder")
        sink = OutputSink(local)
        entries += [(rel, "folder") for rel in folders]
        for rel, kind in sorted(entries, key=lambda e: (e[0].count("/"), e[0])):
            if kind == "folder":
                sink.folder(rel)
            elif kind == "file":
                data, executable = self.files[prefix + rel]
                if sink.file(rel, io.BytesIO(data), executable) and move:
                    del self.files[prefix + rel]
            elif kind == "link":
                if sink.link(rel, self.links[prefix + rel]) and move:
                    del self.links[prefix + rel]
            else:
                sink.drop(rel, "not a regular file")
        return sink.result()
