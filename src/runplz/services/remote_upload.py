"""What goes up to a box before a run: the runtime bundle, once, and the
repo, into the run's own folder, fixed at the moment of its upload."""

from __future__ import annotations

from ..domain.errors import NoSpaceLeft
from ..ports.console import Console
from ..ports.transport import Transport
from typing import TYPE_CHECKING

from .tree import warn_dropped

if TYPE_CHECKING:
    from .tree import Selection, TreeScanner

WARN_BYTES = 100 << 20
# Free KiB on the file system holding ~/.runplz (or the home folder before it exists).
FREE_KB = "{ df -Pk .runplz 2>/dev/null || df -Pk .; } | awk 'NR==2 {print $4}'"

# Moves a finished upload into place, or drops it when another run got there first.
# Also clears the half-made uploads of drivers that died more than a day ago.
_SETTLE = (
    "import glob, os, shutil, sys, time\n"
    "tmp, final = sys.argv[1:]\n"
    "try:\n    os.rename(tmp, final)\n"
    "except OSError:\n    shutil.rmtree(tmp, ignore_errors=True)\n"
    "for old in glob.glob(os.path.join(os.path.dirname(final), '*.part-*')):\n"
    "    try:\n"
    "        if time.time() - os.lstat(old).st_mtime > 86400:\n"
    "            shutil.rmtree(old, ignore_errors=True)\n"
    "    except OSError:\n"
    "        pass\n"
)


def size_text(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


class Uploader:
    def __init__(self, transport: Transport, trees: TreeScanner, console: Console) -> None:
        self._transport = transport
        self._trees = trees
        self._console = console

    def bundle(self, local: str, remote: str, run: str) -> None:
        """Upload the bundle under a temporary name and rename it into place, so a
        half-made bundle (a driver killed mid-upload) is never taken for a whole one."""
        staging = f"{remote}.part-{run}"
        self._transport.push(local, staging)
        self._transport.run(["python3", "-c", _SETTLE, staging, remote], timeout=300)

    def select(self, repo_root: str, anchored: frozenset[str]) -> Selection:
        """The repo as it will travel, with a word about links left out and big uploads."""
        chosen = self._trees.select(repo_root, anchored)
        warn_dropped(self._console, chosen, "not uploading the link {path}")
        total = chosen.size()
        if total > WARN_BYTES:
            biggest = ", ".join(f"{name} ({size_text(size)})" for name, size in chosen.largest_folders(3))
            self._console.warn(
                f"the upload holds {size_text(total)} (largest: {biggest}); list what the job does not "
                "need in .runplzignore at the repo root (gitignore syntax)"
            )
        return chosen

    def repo(self, chosen: Selection, dest: str, basis: str) -> int:
        """Send the selection into ``dest``; files the basis already holds are copied there."""
        return self._transport.push(chosen.root, dest, chosen.paths(), basis=basis)



def free_mb(transport: Transport) -> int | None:
    """Free MB where runplz keeps its folders on the target (None if it cannot tell)."""
    try:
        result = transport.run(["sh", "-c", FREE_KB], timeout=60)
    except Exception:  # noqa: BLE001 - only used to word an error
        return None
    text = result.stdout.strip()
    return int(text) // 1024 if text.isdigit() else None


def no_space(where: str, free_mb: int | None, what: str, cleanup: str = "") -> NoSpaceLeft:
    free = f"{free_mb} MB" if free_mb is not None else "almost nothing"
    return NoSpaceLeft(f"no space left on {where} ({free} free in ~/.runplz) while {what}{cleanup}")
