"""Writes a downloaded tree into a local folder so that nothing reaches past it.

The one rule every in-process transport applies when outputs come home:
folders, regular files (owner read/write, executable bit kept, nothing
set-id) and links that stay inside; never following a link already there;
never changing the destination folder's own mode or owner.
"""

from __future__ import annotations

import os
import shutil
from typing import BinaryIO

from ..domain.safe_links import clean_relpath, escapes
from ..ports.transport import Pulled


class OutputSink:
    def __init__(self, local: str) -> None:
        self._local = os.path.abspath(local)
        os.makedirs(self._local, exist_ok=True)
        self.received = 0
        self._dropped: list[tuple[str, str]] = []

    def _path(self, rel: str) -> str | None:
        if not clean_relpath(rel):
            self.drop(rel, "not a plain relative path")
            return None
        return os.path.join(self._local, *rel.split("/"))

    def _clear(self, path: str, rel: str) -> bool:
        """Make room at ``path`` for a file or link; a folder in the way stays."""
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            os.unlink(path)
        elif os.path.isdir(path):
            self.drop(rel, "a folder of that name is already there")
            return False
        return True

    def folder(self, rel: str) -> None:
        path = self._path(rel)
        if path is None:
            return
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            os.unlink(path)
        if not os.path.isdir(path):
            os.mkdir(path)

    def file(self, rel: str, source: BinaryIO, executable: bool) -> bool:
        """Whether the file arrived."""
        path = self._path(rel)
        if path is None or not self._clear(path, rel):
            return False
        tmp = os.path.join(os.path.dirname(path), f".runplz-part-{os.getpid()}-{os.path.basename(path)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if executable else 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                shutil.copyfileobj(source, handle)
                self.received += handle.tell()
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
        return True

    def link(self, rel: str, target: str) -> bool:
        """Whether the link arrived."""
        if escapes(rel, target):
            self.drop(rel, "a link that points outside the outputs")
            return False
        path = self._path(rel)
        if path is None or not self._clear(path, rel):
            return False
        os.symlink(target, path)
        return True

    def drop(self, rel: str, why: str) -> None:
        self._dropped.append((rel, why))

    def result(self) -> Pulled:
        return Pulled(self.received, tuple(self._dropped))
