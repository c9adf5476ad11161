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


def tree_digest(
    entries: Iterable[FileEntry],
    links: Iterable[tuple[str, str]] = (),
    folders: Iterable[str] = (),
) -> str:
    """One digest for a tree: its files, its links (path, target) and its folders.

    A tree of files alone digests as it always has.
    """
    files = (f"{e.path}\0{int(e.executable)}\0{e.digest}" for e in sorted(entries, key=lambda e: e.path))
    pointers = (f"{path}\0L\0{target}" for path, target in sorted(links))
    dirs = (f"{path}\0D" for path in sorted(folders))
    return digest(*files, *pointers, *dirs)
