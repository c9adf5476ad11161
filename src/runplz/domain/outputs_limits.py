"""What may come back from Modal's outputs archive: its size, and each member.

Modal returns the job's ``/out`` as one gzip'd tar, and a return value has a
cap of about 256 MB. The seed README says "warns at 200 MB, raises
`RuntimeError` at 256 MB", in MB: decimal megabytes (10**6 bytes) are taken
here. They are the stricter reading (256 MB is below 256 MiB), so an archive
Modal may already have cut is never unpacked.

Member names are judged lexically, without looking at any disk; links follow
the project's one rule for links (`safe_links.escapes`).
"""

from __future__ import annotations

import math
from typing import Collection

from .errors import RunplzError
from .safe_links import escapes

MB = 10**6
WARN_BYTES = 200 * MB
REFUSE_BYTES = 256 * MB

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
CHARDEV, BLOCKDEV, FIFO, OTHER = "chardev", "blockdev", "fifo", "other"

_VOLUME_HINT = (
    "write big outputs to a modal.Volume instead (modal.Volume.from_name(\"...\", "
    "create_if_missing=True) mounted at /out) and download them after the run"
)


class OutputsTooLarge(RunplzError, RuntimeError):
    """The outputs archive reached Modal's cap, so nothing of it was unpacked.

    ``size`` and ``limit`` are in bytes; ``kept_at`` is where the raw archive
    was saved, when it was.
    """

    def __init__(self, message: str, size: int, limit: int, kept_at: str | None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit
        self.kept_at = kept_at


class DamagedOutputs(RunplzError, RuntimeError):
    """The outputs archive is corrupt or cut short; what came before the damage was kept."""


def megabytes(size: int) -> str:
    """``size`` bytes as decimal MB with one decimal, rounded down ('255.9 MB')."""
    return f"{math.floor(size / (MB / 10)) / 10:.1f} MB"


def check_archive_size(size: int, kept_at: str | None = None) -> str | None:
    """None under `WARN_BYTES`; a one-line warning from `WARN_BYTES` on.

    Raises `OutputsTooLarge` from `REFUSE_BYTES` on; its message names
    ``kept_at`` (where the raw archive was saved) when given.
    """
    if size >= REFUSE_BYTES:
        kept = f"; the raw archive is kept at {kept_at}" if kept_at else ""
        raise OutputsTooLarge(
            f"the outputs archive is {megabytes(size)}, at or over Modal's "
            f"{REFUSE_BYTES // MB} MB return cap: it may be truncated, so runplz "
            f"unpacked none of it{kept}. To fix: {_VOLUME_HINT}",
            size, REFUSE_BYTES, kept_at,
        )
    if size >= WARN_BYTES:
        return (
            f"the outputs archive is {megabytes(size)} (over {WARN_BYTES // MB} MB); at {REFUSE_BYTES // MB} MB "
            f"Modal's return cap is reached and runplz will refuse it: {_VOLUME_HINT}"
        )
    return None


def member_parts(name: str) -> tuple[str, ...]:
    """The path segments of a member name, without '' and '.' segments
    ('./a//b/' -> ('a', 'b'); '.' -> (), the destination itself)."""
    return tuple(part for part in name.split("/") if part not in ("", "."))


def _path_verdict(name: str) -> str | None:
    if not name:
        return "empty name"
    if name.startswith("/"):
        return "absolute path"
    if ".." in name.split("/"):
        # refused even when it stays inside ('a/../b'): 'a' may be a link
        return "'..' in the path"
    return None


def member_verdict(
    name: str, kind: str, link_target: str | None, *, earlier_files: Collection[str] = ()
) -> str | None:
    """None when a member may be unpacked, else the reason it may not.

    ``kind`` is one of FILE, DIR, SYMLINK, HARDLINK, CHARDEV, BLOCKDEV, FIFO,
    OTHER; ``link_target`` is a link's target as the archive holds it.
    A hardlink is only allowed to a regular file unpacked before it, named in
    ``earlier_files`` by its '/'-joined `member_parts`.
    """
    reason = _path_verdict(name)
    if reason:
        return reason
    parts = member_parts(name)
    if not parts and kind != DIR:
        return "names the destination folder itself"
    if kind in (FILE, DIR):
        return None
    if kind == SYMLINK:
        if escapes("/".join(parts), link_target or ""):
            return f"a link pointing outside the outputs folder ({link_target!r})"
        return None
    if kind == HARDLINK:
        reason = _path_verdict(link_target or "")
        target = "/".join(member_parts(link_target or ""))
        if reason or not target:
            return f"a hard link to {link_target!r}, outside the outputs folder"
        if target == "/".join(parts):
            return "a hard link to itself"
        if target not in earlier_files:
            return f"a hard link to {link_target!r}, which is no earlier file of the archive"
        return None
    if kind in (CHARDEV, BLOCKDEV, FIFO):
        return f"a {'device' if kind != FIFO else 'fifo'}, not a file"
    return "an unsupported member type"
