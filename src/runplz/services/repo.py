"""Which folder is the user's repo: what ships, what paths are relative to."""

from __future__ import annotations

import os


def find_repo_root(script: str, cwd: str | None = None) -> str:
    """The nearest folder above the script holding ``.git``; else the current
    folder when the script lies inside it; else the script's folder."""
    folder = os.path.dirname(os.path.abspath(script))
    probe = folder
    while True:
        if os.path.exists(os.path.join(probe, ".git")):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    here = os.path.abspath(cwd or os.getcwd())
    if os.path.commonpath([here, folder]) == here:
        return here
    return folder


def relative_posix(path: str, root: str) -> str:
    return os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")


def inside(path: str, root: str) -> bool:
    path, root = os.path.abspath(path), os.path.abspath(root)
    return os.path.commonpath([path, root]) == root
