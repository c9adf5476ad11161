"""What never leaves the user's machine, and what is not worth shipping."""

from __future__ import annotations

from fnmatch import fnmatchcase

SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.local",
    ".env.*.local",
    ".env.production",
    ".env.development",
    "*.pem",
    "*.key",
    "id_rsa",
    "id_rsa.*",
    "id_ed25519",
    "id_ed25519.*",
    "credentials.json",
    ".aws",
    ".ssh",
    ".netrc",
    ".git-credentials",
)

JUNK_PATTERNS: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".tox",
    ".nox",
    ".venv",
    ".ipynb_checkpoints",
    ".DS_Store",
)

DEFAULT_PATTERNS = SECRET_PATTERNS + JUNK_PATTERNS


def excluded(relpath: str, anchored: frozenset[str] = frozenset(), patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> bool:
    """True when a '/'-separated repo path, or any folder above it, is excluded.

    ``patterns`` match a single path component at any depth (like rsync
    patterns without a slash); ``anchored`` are exact repo-relative paths
    (the outputs folder, say).
    """
    parts = relpath.split("/")
    for depth, part in enumerate(parts):
        if any(fnmatchcase(part, pattern) for pattern in patterns):
            return True
        if anchored and "/".join(parts[: depth + 1]) in anchored:
            return True
    return False
