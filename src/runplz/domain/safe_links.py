"""Which symlinks may travel: the lexical rule rsync's --safe-links applies."""

from __future__ import annotations

import posixpath


def escapes(link: str, target: str) -> bool:
    """True when a link at ``link`` ('/'-separated, relative to a tree's root)
    pointing at ``target`` is absolute, climbs out of that tree, or climbs after
    descending (``a/..``: ``a`` may itself be a link, so only leading ``..`` are
    judged safe, as rsync 3.4+ judges them)."""
    if not target or target.startswith("/"):
        return True
    depth = len(posixpath.dirname(link).split("/")) if posixpath.dirname(link) else 0
    descended = False
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0 or descended:
                return True
        elif part not in ("", "."):
            depth += 1
            descended = True
    return False


def clean_relpath(path: str) -> bool:
    """A '/'-separated relative path with no '..', '.' or empty parts."""
    return bool(path) and not path.startswith("/") and all(
        part not in ("", ".", "..") for part in path.split("/")
    )
