"""Which folder is the user's repo: what ships, what paths are relative to."""

from __future__ import annotations

import os

from ..domain.errors import ConfigError


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


def anchored_outputs(outputs: str, repo_root: str) -> frozenset[str]:
    """The outputs folder as a repo path to leave out of every transfer, when it
    lies inside the repo."""
    return frozenset({relative_posix(outputs, repo_root)}) if inside(outputs, repo_root) else frozenset()


_PRIVATE = (".ssh", ".aws", ".gnupg", ".kube", ".docker", ".config/gcloud")


def check_outputs_dir(outputs_dir: str, script: str | None, home: str | None = None) -> None:
    """Refuse an outputs folder whose files could overwrite the user's own: the
    repo root, a folder above it, the repo's ``.git``, the home folder, or a
    folder of keys in it (real paths compared)."""
    real = os.path.realpath(os.path.expanduser(outputs_dir))
    shown = repr(outputs_dir) if real == os.path.abspath(outputs_dir) else f"{outputs_dir!r} ({real})"
    prefix = f"outputs_dir (--outputs-dir) {shown}"
    advice = "(use a folder such as ./out)"
    if script is not None:
        root = os.path.realpath(find_repo_root(script))
        if real == root:
            raise ConfigError(f"{prefix} is the repo root; outputs would overwrite your source {advice}")
        if os.path.commonpath([real, root]) == real:
            raise ConfigError(
                f"{prefix} holds the repo root {root}; outputs would overwrite your source {advice}"
            )
        if inside(real, os.path.join(root, ".git")):
            raise ConfigError(f"{prefix} is inside the repo's .git; outputs could plant hooks there {advice}")
    home_real = os.path.realpath(home or os.path.expanduser("~"))
    if real == home_real:
        raise ConfigError(f"{prefix} is your home folder; outputs would overwrite your files {advice}")
    for private in _PRIVATE:
        if inside(real, os.path.join(home_real, private)):
            raise ConfigError(f"{prefix} is inside ~/{private}; outputs would land among your keys {advice}")
