"""Which symlinks may travel: the lexical rule rsync's --safe-links applies."""

from __future__ import annotations

import posixpath


def escapes(link: str, target: str) -> bool:
    """True when a link at ``link`` ('/'-separated, relative to a tree's root)
    pointing at ``target`` is absolute or climbs out of that tree."""
    if not target or target.startswith("/"):
        return True
    depth = len(posixpath.dirname(link).split("/")) if posixpath.dirname(link) else 0
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def clean_relpath(path: str) -> bool:
    """A '/'-separated relative path with no '..', '.' or empty parts."""
    return bool(path) and not path.startswith("/") and all(
        part not in ("", ".", "..") for part in path.split("/")
    )
