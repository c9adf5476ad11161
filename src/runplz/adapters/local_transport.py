"""`Transport` to this same machine: a folder stands in for the remote home.

Used by the tests as a reference implementation, and by anything that wants
the remote-run machinery without a network.
"""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
import stat
from typing import Callable, Iterator, Sequence

from ..domain.errors import CommandNotFound, ConnectionLost, NoSpaceLeft, TransportError
from ..domain.safe_links import escapes
from ..ports.command_runner import CommandResult, CommandRunner, Input
from ..ports.transport import Pulled
from .output_sink import OutputSink


def walk_entries(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``root`` ('/'-separated, folders before what they hold), never following links."""
    for folder, dirs, names in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        dirs.sort()
        for name in sorted(dirs + names):
            yield prefix + name, os.lstat(os.path.join(folder, name))


def all_paths(root: str) -> list[str]:
    return [rel for rel, _ in walk_entries(root)]


class LocalTransport:
    def __init__(self, runner: CommandRunner, root: str, name: str = "this machine") -> None:
        self._runner = runner
        self._root = os.path.abspath(root)
        self.name = name
        self._connected = False

    def _path(self, path: str) -> str:
        return os.path.join(self._root, path)

    def connect(self, wait: float = 0) -> None:
        os.makedirs(self._root, exist_ok=True)
        self._connected = True

    def close(self) -> None:
        self._connected = False

    def run(
        self,
        argv: Sequence[str],
        *,
        input: Input = None,
        timeout: float | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult:
        if not self._connected:
            raise ConnectionLost(f"not connected to {self.name}")
        try:
            return self._runner.run(argv, cwd=self._root, input=input, timeout=timeout, on_output=on_output)
        except CommandNotFound as exc:
            return CommandResult(tuple(argv), 127, "", f"{exc}\n")

    def push(
        self, local: str, remote: str, paths: Sequence[str] | None = None, basis: str | None = None
    ) -> int:
        target = self._path(remote)
        os.makedirs(target, exist_ok=True)
        chosen = all_paths(local) if paths is None else sorted(paths)
        sent = 0
        for rel in chosen:
            source = os.path.join(local, *rel.split("/"))
            dest = os.path.join(target, *rel.split("/"))
            info = os.lstat(source)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if stat.S_ISDIR(info.st_mode):
                os.makedirs(dest, exist_ok=True)
            elif stat.S_ISLNK(info.st_mode):
                link = os.readlink(source)
                if not escapes(rel, link):
                    os.symlink(link, dest)
            elif stat.S_ISREG(info.st_mode):
                known = os.path.join(self._path(basis), *rel.split("/")) if basis else None
                same = known is not None and os.path.isfile(known) and not os.path.islink(known) and filecmp.cmp(source, known, shallow=False)
                shutil.copyfile(known if same else source, dest)
                os.chmod(dest, 0o755 if info.st_mode & stat.S_IXUSR else 0o644)
                if not same:
                    sent += info.st_size
        return sent

    def pull(self, remote: str, local: str, move: bool = False) -> Pulled:
        source = self._path(remote)
        if os.path.islink(source):
            raise TransportError(f"downloading {self.name}:{remote} failed: it is a symlink; not following it")
        if not os.path.isdir(source):
            raise TransportError(f"downloading {self.name}:{remote} failed: no such folder")
        try:
            return self._pull(source, local, move)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise NoSpaceLeft(f"downloading {self.name}:{remote} failed: no space left on this machine") from None
            raise

    def _pull(self, source: str, local: str, move: bool) -> Pulled:
        sink = OutputSink(local)
        for rel, info in walk_entries(source):
            path = os.path.join(source, *rel.split("/"))
            if stat.S_ISDIR(info.st_mode):
                sink.folder(rel)
            elif stat.S_ISLNK(info.st_mode):
                if sink.link(rel, os.readlink(path)) and move:
                    os.unlink(path)
            elif stat.S_ISREG(info.st_mode):
                try:
                    handle = open(path, "rb")
                except PermissionError as exc:
                    sink.drop(rel, f"could not be read on {self.name}: {exc.strerror}")
                    continue
                with handle:
                    arrived = sink.file(rel, handle, bool(info.st_mode & stat.S_IXUSR))
                if arrived and move:
                    os.unlink(path)
            else:
                sink.drop(rel, "not a regular file")
        return sink.result()
