"""Small files written whole or not at all (stdlib only; the job's runtime uses it too)."""

from __future__ import annotations

import os


def write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError:
        unlink(tmp)
        raise


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
