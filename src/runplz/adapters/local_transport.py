"""`Transport` to this same machine: a folder stands in for the remote home.

Used by the tests as a reference implementation, and by anything that wants
the remote-run machinery without a network.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from typing import Callable, Sequence

from ..domain.errors import CommandNotFound, ConnectionLost, TransportError
from ..domain.excludes import excluded
from ..ports.command_runner import CommandResult, CommandRunner, Input


def split_excludes(excludes: Sequence[str]) -> tuple[tuple[str, ...], frozenset[str]]:
    """rsync-style excludes: names at any depth, and '/'-anchored paths."""
    names = tuple(p for p in excludes if not p.startswith("/"))
    anchored = frozenset(p.strip("/") for p in excludes if p.startswith("/"))
    return names, anchored


def _tree(root: str, names: tuple[str, ...], anchored: frozenset[str]) -> tuple[set[str], set[str]]:
    files, folders = set(), set()
    for folder, dirs, entries in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        dirs[:] = [d for d in dirs if not excluded(prefix + d, anchored, names)]
        for d in dirs:
            folders.add(prefix + d)
        for entry in entries:
            if not excluded(prefix + entry, anchored, names):
                files.add(prefix + entry)
    return files, folders


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

    def push(self, local: str, remote: str, excludes: Sequence[str] = ()) -> int:
        names, anchored = split_excludes(excludes)
        target = self._path(remote)
        files, folders = _tree(local, names, anchored)
        os.makedirs(target, exist_ok=True)
        have, have_folders = _tree(target, (), frozenset())
        for rel in have - files:
            os.remove(os.path.join(target, rel))
        for rel in sorted(have_folders - folders, reverse=True):
            shutil.rmtree(os.path.join(target, rel), ignore_errors=True)
        sent = 0
        for rel in sorted(folders):
            os.makedirs(os.path.join(target, rel), exist_ok=True)
        for rel in sorted(files):
            source, dest = os.path.join(local, rel), os.path.join(target, rel)
            if os.path.isfile(dest) and filecmp.cmp(source, dest, shallow=False):
                shutil.copymode(source, dest)
                continue
            shutil.copy2(source, dest)
            sent += os.path.getsize(dest)
        return sent

    def pull(self, remote: str, local: str) -> int:
        source = self._path(remote)
        if not os.path.isdir(source):
            raise TransportError(f"downloading {self.name}:{remote} failed: no such folder")
        files, folders = _tree(source, (), frozenset())
        os.makedirs(local, exist_ok=True)
        received = 0
        for rel in sorted(folders):
            os.makedirs(os.path.join(local, rel), exist_ok=True)
        for rel in sorted(files):
            shutil.copy2(os.path.join(source, rel), os.path.join(local, rel))
            received += os.path.getsize(os.path.join(local, rel))
        return received
