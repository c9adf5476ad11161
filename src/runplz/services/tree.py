"""Walk a folder with the exclude rules: the one selection every transfer uses.

The walk never follows a link. Regular files are hashed; digests are cached
per file by (size, mtime, inode), so an unchanged repo is re-hashed from the
cache, not re-read. A link travels as a link only when it stays inside the
folder and resolves to something that travels too; FIFOs, sockets and
devices never travel.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat

import attrs

from ..domain.excludes import IGNORE_FILE, Excludes
from ..domain.hashing import FileEntry, digest, tree_digest

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@attrs.frozen
class TreeFile:
    entry: FileEntry
    source: str  # absolute path on this machine


@attrs.frozen
class TreeLink:
    path: str  # '/'-separated, relative to the scanned root
    target: str  # the link's text, as os.readlink gives it


@attrs.frozen
class Selection:
    """Everything under ``root`` that may travel: files, links and folders."""

    root: str
    files: tuple[TreeFile, ...] = ()
    links: tuple[TreeLink, ...] = ()
    folders: tuple[str, ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()  # (path, why) for links left out

    def content_digest(self) -> str:
        """One digest of everything kept: files, links (with their targets) and folders."""
        return tree_digest(
            (f.entry for f in self.files), ((l.path, l.target) for l in self.links), self.folders
        )

    def size(self) -> int:
        """Bytes of the kept files."""
        return sum(f.entry.size for f in self.files)

    def largest_folders(self, count: int = 5) -> list[tuple[str, int]]:
        """Top-level folders (or files) by bytes, biggest first."""
        totals: dict[str, int] = {}
        for f in self.files:
            top = f.entry.path.split("/", 1)[0]
            totals[top] = totals.get(top, 0) + f.entry.size
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:count]

    def paths(self) -> list[str]:
        """Folders, then files and links: everything to transfer, '/'-separated."""
        return list(self.folders) + sorted([f.entry.path for f in self.files] + [l.path for l in self.links])

    def under(self, folder: str) -> "Selection":
        """The part of this selection inside ``folder`` (paths stay relative to ``root``)."""
        if folder in ("", "."):
            return self
        prefix = folder.strip("/") + "/"
        return Selection(
            self.root,
            tuple(f for f in self.files if f.entry.path.startswith(prefix)),
            tuple(l for l in self.links if l.path.startswith(prefix)),
            tuple(d for d in self.folders if d.startswith(prefix)),
            tuple(d for d in self.dropped if d[0].startswith(prefix)),
        )


def _sha256(path: str, expected: os.stat_result) -> str | None:
    """The file's digest, or None when it is no longer the regular file that was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        now = os.fstat(handle.fileno())
        if (now.st_ino, now.st_dev) != (expected.st_ino, expected.st_dev) or not stat.S_ISREG(now.st_mode):
            return None
        h = hashlib.sha256()
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _read_ignore(repo_root: str) -> str:
    try:
        with open(os.path.join(repo_root, IGNORE_FILE), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


@attrs.define
class _Walk:
    """One walk's state: the rules, where rule paths start, and what was found."""

    root: str
    real_root: str
    rule_prefix: str  # the root's path inside the repo, '' or ending in '/'
    rules: Excludes
    cache: dict[str, list]
    fresh: dict[str, list] = attrs.field(factory=dict)
    files: list[TreeFile] = attrs.field(factory=list)
    links: list[TreeLink] = attrs.field(factory=list)
    folders: list[str] = attrs.field(factory=list)
    dropped: list[tuple[str, str]] = attrs.field(factory=list)

    def run(self) -> None:
        pending = [""]
        while pending:
            rel = pending.pop()
            path = os.path.join(self.root, *rel.split("/")) if rel else self.root
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISLNK(info.st_mode):
                    self.link(child, entry.path)
                elif stat.S_ISDIR(info.st_mode):
                    if not self.rules.reason(self.rule_prefix + child, True):
                        self.folders.append(child)
                        pending.append(child)
                elif stat.S_ISREG(info.st_mode):
                    if not self.rules.reason(self.rule_prefix + child, False):
                        self.file(child, entry.path, info)

    def file(self, rel: str, path: str, info: os.stat_result) -> None:
        key = [info.st_size, info.st_mtime_ns, info.st_ino]
        known = self.cache.get(rel)
        sha = known[3] if known and known[:3] == key else _sha256(path, info)
        if sha is None:
            return
        self.fresh[rel] = key + [sha]
        executable = bool(info.st_mode & stat.S_IXUSR)
        self.files.append(TreeFile(FileEntry(rel, executable, sha, info.st_size), path))

    def link(self, rel: str, path: str) -> None:
        if self.rules.reason(self.rule_prefix + rel, os.path.isdir(path)):
            return
        try:
            target = os.readlink(path)
        except OSError:
            return
        why = self.refusal(rel, path, target)
        if why:
            self.dropped.append((rel, why))
        else:
            self.links.append(TreeLink(rel, target))

    def refusal(self, rel: str, path: str, target: str) -> str | None:
        """Why the link at ``rel`` may not travel, or None when it may."""
        outside = "points outside the repo" if not self.rule_prefix else "points outside the folder sent"
        if posixpath.isabs(target):
            return "an absolute link"
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if lexical == ".." or lexical.startswith("../"):
            return outside
        resolved = os.path.realpath(path)
        if not _inside(resolved, self.real_root):
            return outside
        if os.path.islink(resolved):
            return "a link loop"
        inner = os.path.relpath(resolved, self.real_root).replace(os.sep, "/")
        if inner == ".":
            return None
        if self.rules.excludes(self.rule_prefix + inner, os.path.isdir(resolved)):
            return "points to an excluded path"
        return None


class TreeScanner:
    def __init__(self, cache_dir: str | None = None) -> None:
        self._cache_dir = cache_dir

    def _cache_path(self, root: str) -> str | None:
        if not self._cache_dir:
            return None
        return os.path.join(self._cache_dir, "trees", digest(root)[:24] + ".json")

    def _load_cache(self, path: str | None) -> dict[str, list]:
        if not path or not os.path.exists(path):
            return {}
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _save_cache(self, path: str | None, old: dict[str, list], fresh: dict[str, list]) -> None:
        if not path or fresh == old:
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(fresh, handle)
            os.replace(tmp, path)
        except OSError:
            pass

    def select(
        self, root: str, anchored: frozenset[str] = frozenset(), repo_root: str | None = None
    ) -> Selection:
        """What under ``root`` may travel, by the rules of ``repo_root`` (default: ``root``).

        ``repo_root`` holds the ``.runplzignore``; rule paths and ``anchored``
        (exact paths, the outputs folder say) are relative to it. ``root``
        must lie inside ``repo_root``; when ``root`` itself is excluded there,
        nothing under it travels.
        """
        root = os.path.abspath(root)
        real_root = os.path.realpath(root)
        real_repo = os.path.realpath(repo_root) if repo_root else real_root
        if not _inside(real_root, real_repo):
            raise ValueError(f"{root} is not inside {repo_root}")
        inner = os.path.relpath(real_root, real_repo).replace(os.sep, "/")
        prefix = "" if inner == "." else inner + "/"
        rules = Excludes.from_text(_read_ignore(real_repo), anchored)
        if prefix and rules.excludes(inner, True):
            return Selection(root)
        cache_path = self._cache_path(root)
        walk = _Walk(root, real_root, prefix, rules, self._load_cache(cache_path))
        walk.run()
        self._save_cache(cache_path, walk.cache, walk.fresh)
        return Selection(
            root,
            tuple(sorted(walk.files, key=lambda f: f.entry.path)),
            tuple(sorted(walk.links, key=lambda l: l.path)),
            tuple(sorted(walk.folders)),
            tuple(sorted(walk.dropped)),
        )

    def scan(
        self, root: str, anchored: frozenset[str] = frozenset(), repo_root: str | None = None
    ) -> list[TreeFile]:
        """The regular files of `select`, sorted by path."""
        return list(self.select(root, anchored, repo_root).files)


_SHOWN_DROPS = 5


def warn_dropped(console, selection: "Selection", saying: str) -> None:
    """One warning per link left out (the first few): ``saying`` with ``{path}``, then why."""
    for path, why in selection.dropped[:_SHOWN_DROPS]:
        console.warn(f"{saying.format(path=path)}: {why}")
    if len(selection.dropped) > _SHOWN_DROPS:
        console.warn(f"... and {len(selection.dropped) - _SHOWN_DROPS} more links left out")
