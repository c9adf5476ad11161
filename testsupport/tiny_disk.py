"""A small tmpfs for full-disk tests (needs root), and a way to fill it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

from .real import unavailable


@contextlib.contextmanager
def mounted_tmpfs(where, size: str = "64k") -> Iterator[Path]:
    """``where`` (made here) as a tmpfs of ``size``, unmounted afterwards."""
    os.makedirs(where, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield Path(where)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where) -> None:
    """Fill the file system of ``where`` to the last byte."""
    with open(os.path.join(where, "filler"), "wb", buffering=0) as handle:
        for size in (4096, 512, 1):
            try:
                while True:
                    handle.write(b"f" * size)
            except OSError:
                continue
