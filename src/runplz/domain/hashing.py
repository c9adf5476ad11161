"""Content hashes: image tags and cache keys derive from everything that goes in."""

from __future__ import annotations

import hashlib
from typing import Iterable

import attrs


@attrs.frozen
class FileEntry:
    """One file of a tree: repo-relative path, executable bit, content digest."""

    path: str
    executable: bool
    digest: str
    size: int


def digest(*parts: str | bytes) -> str:
    """A sha256 over length-prefixed parts (so ('ab','c') != ('a','bc'))."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def tree_digest(entries: Iterable[FileEntry]) -> str:
    return digest(
        *(f"{e.path}\0{int(e.executable)}\0{e.digest}" for e in sorted(entries, key=lambda e: e.path))
    )
