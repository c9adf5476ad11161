"""Walk a folder with the exclude rules and hash what is left.

Digests are cached per file by (size, mtime, inode), so an unchanged repo is
re-hashed from the cache, not re-read.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

import attrs

from ..domain.excludes import DEFAULT_PATTERNS, excluded
from ..domain.hashing import FileEntry, digest


@attrs.frozen
class TreeFile:
    entry: FileEntry
    source: str  # absolute path on this machine


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class TreeScanner:
    def __init__(self, cache_dir: str | None = None) -> None:
        self._cache_dir = cache_dir

    def _cache_path(self, root: str) -> str | None:
        if not self._cache_dir:
            return None
        return os.path.join(self._cache_dir, "trees", digest(root)[:24] + ".json")

    def scan(
        self,
        root: str,
        anchored: frozenset[str] = frozenset(),
        patterns: tuple[str, ...] = DEFAULT_PATTERNS,
    ) -> list[TreeFile]:
        """Every regular file under ``root`` not excluded, sorted by path."""
        root = os.path.abspath(root)
        cache_path = self._cache_path(root)
        cache: dict[str, list] = {}
        if cache_path and os.path.exists(cache_path):
            try:
                with open(cache_path, encoding="utf-8") as handle:
                    cache = json.load(handle)
            except (OSError, ValueError):
                cache = {}
        fresh: dict[str, list] = {}
        files: list[TreeFile] = []
        for folder, dirs, names in os.walk(root):
            rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
            prefix = "" if rel_folder == "." else rel_folder + "/"
            dirs[:] = sorted(d for d in dirs if not excluded(prefix + d, anchored, patterns))
            for name in names:
                rel = prefix + name
                if excluded(rel, anchored, patterns):
                    continue
                path = os.path.join(folder, name)
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode):
                    continue
                key = [info.st_size, info.st_mtime_ns, info.st_ino]
                known = cache.get(rel)
                if known and known[:3] == key:
                    sha = known[3]
                else:
                    try:
                        sha = _sha256(path)
                    except OSError:
                        continue
                fresh[rel] = key + [sha]
                executable = bool(info.st_mode & stat.S_IXUSR)
                files.append(TreeFile(FileEntry(rel, executable, sha, info.st_size), path))
        if cache_path and fresh != cache:
            try:
                os.makedirs(os.path.dirname(cache_path), exist_ok=True)
                tmp = f"{cache_path}.{os.getpid()}"
                with open(tmp, "w", encoding="utf-8") as handle:
                    json.dump(fresh, handle)
                os.replace(tmp, cache_path)
            except OSError:
                pass
        files.sort(key=lambda f: f.entry.path)
        return files
