"""Random trees on disk, seeded with secrets and links, and the checks every selection must pass.

A secret file holds a unique marker (``SECRET-MARK-...``); so does every file
outside the repo. Nothing that travels may ever carry one.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from pathlib import Path

import attrs
from hypothesis import strategies as st

from runplz.domain.excludes import Excludes

MARK = "SECRET-MARK-"

NORMAL = [
    "src", "data", "lib", "a", "b", "main.py", "notes.md", "keep.txt", "build", "out", "dist",
    "x.egg-info", "outputs", "config.json", ".env.example", ".env.sample", "settings_alias",
]
SECRET = [
    ".env", ".env.local", ".envrc", "cert.pem", "server.key", "id_rsa", "id_ed25519.pub", ".aws",
    ".ssh", ".gnupg", "credentials.json", ".npmrc", ".netrc", ".pgpass", "terraform.tfstate",
    "prod.tfvars", "gcp-service-account.json", "store.p12", "token.pfx",
]
_SECRET_LOWER = {name.lower() for name in SECRET}
IGNORE_LINES = [
    "!build/", "!.env", "*.md", "data/", "!*.pem", "/src", "a/**/b", "!out/", "# comment", "!.ssh/",
    "lib/", "*.txt", "!keep.txt", "!.aws/", "!credentials.json", "b", "!dist/", "**/a", "",
]
LINK_KINDS = [
    "inside", "inside", "chain", "chain", "chain", "outside", "outside", "outside_secret", "absolute_in",
    "absolute_out", "dangling", "reentry", "self",
]


def is_secret(path: str) -> bool:
    """The oracle: a path with a secret name anywhere in it (independent of runplz's rules)."""
    return any(part.lower() in _SECRET_LOWER for part in path.split("/"))


@st.composite
def names(draw) -> str:
    pool = draw(st.sampled_from([NORMAL, NORMAL, NORMAL, SECRET]))
    base = draw(st.sampled_from(pool))
    if base in NORMAL and draw(st.booleans()):
        base = f"{base}{draw(st.integers(1, 9))}"
    case = draw(st.sampled_from(["same", "same", "upper", "title", "mixed"]))
    if case == "upper":
        return base.upper()
    if case == "title":
        return base.title()
    if case == "mixed":
        return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(base))
    return base


@attrs.frozen
class Entry:
    parent: int  # index into the folders made so far
    name: str
    kind: str  # "file", "dir" or "link"
    link_kind: str = "inside"
    pick: int = 0  # which path an "inside" link points at


@attrs.frozen
class TreeSpec:
    entries: tuple[Entry, ...]
    ignore: tuple[str, ...]
    anchored: frozenset[str]


@st.composite
def tree_specs(draw) -> TreeSpec:
    entries = draw(
        st.lists(
            st.builds(
                Entry,
                st.integers(0, 50),
                names(),
                st.sampled_from(["file", "file", "dir", "dir", "link", "link"]),
                st.sampled_from(LINK_KINDS),
                st.integers(0, 50),
            ),
            min_size=4,
            max_size=30,
        )
    )
    ignore = tuple(draw(st.lists(st.sampled_from(IGNORE_LINES), max_size=5)))
    anchored = frozenset({"outputs"}) if draw(st.booleans()) else frozenset()
    return TreeSpec(tuple(entries), ignore, anchored)


@attrs.define
class Made:
    root: Path
    outside: Path
    markers: list[str] = attrs.field(factory=list)
    links: dict[str, str] = attrs.field(factory=dict)  # path -> target as written


def _marker() -> str:
    return MARK + uuid.uuid4().hex


def make_outside(outside: Path, made: Made) -> None:
    (outside / ".aws").mkdir(parents=True, exist_ok=True)
    (outside / "plain").mkdir(exist_ok=True)
    for rel in (".aws/credentials", "plain/creds.txt"):
        marker = _marker()
        (outside / rel).write_text(marker)
        made.markers.append(marker)


def make_tree(base: Path, spec: TreeSpec) -> Made:
    """Lay ``spec`` out under ``base/repo``, with ``base/outside`` beside it."""
    made = Made(base / "repo", base / "outside")
    made.root.mkdir(parents=True)
    make_outside(made.outside, made)
    folders, taken, pending = [""], {""}, []
    for entry in spec.entries:
        parent = folders[entry.parent % len(folders)]
        path = f"{parent}/{entry.name}" if parent else entry.name
        if path.lower() in taken:  # stay clear of case-folding file systems
            continue
        taken.add(path.lower())
        full = made.root / path
        if entry.kind == "dir":
            full.mkdir()
            folders.append(path)
        elif entry.kind == "file":
            if is_secret(path):
                content = _marker()
                made.markers.append(content)
            else:
                content = f"plain {path}\n"
            full.write_text(content)
        else:
            pending.append((path, entry))
    every = sorted(taken - {""})
    link_paths = [path for path, _ in pending]
    for path, entry in pending:
        target = link_target(made, path, entry, link_paths if entry.link_kind == "chain" else every)
        os.symlink(target, made.root / path)
        made.links[path] = target
    if spec.ignore:
        (made.root / ".runplzignore").write_text("\n".join(spec.ignore) + "\n")
    return made


def link_target(made: Made, path: str, entry: Entry, every: list[str]) -> str:
    here = posixpath.dirname(path)
    depth = len(here.split("/")) if here else 0
    chosen = every[entry.pick % len(every)] if every else "nothing"
    if entry.link_kind in ("inside", "chain"):
        return posixpath.relpath(chosen, here or ".")
    if entry.link_kind == "outside":
        return "../" * (depth + 1) + "outside/plain" + ("/creds.txt" if entry.pick % 2 else "")
    if entry.link_kind == "outside_secret":
        return "../" * (depth + 1) + "outside/.aws/credentials"
    if entry.link_kind == "absolute_in":
        return str(made.root / chosen)
    if entry.link_kind == "absolute_out":
        return str(made.outside / ".aws" / "credentials")
    if entry.link_kind == "dangling":
        return "no/such/thing"
    if entry.link_kind == "reentry":
        return "../" * (depth + 1) + "repo/" + chosen
    return "."


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def check_selection(made: Made, selection, ignore_text: str, anchored: frozenset[str]) -> None:
    """Every promise of `TreeScanner.select`, checked against the disk."""
    rules = Excludes.from_text(ignore_text, anchored)
    root = str(made.root)
    real_root = os.path.realpath(root)
    folders = set(selection.folders)
    files = {f.entry.path: f for f in selection.files}
    links = {l.path: l for l in selection.links}
    kept = folders | set(files) | set(links)
    assert len(kept) == len(selection.folders) + len(selection.files) + len(selection.links)
    assert "." not in folders and "" not in folders
    dropped = {path for path, _ in selection.dropped}
    assert not dropped & kept
    for path in kept:
        assert not is_secret(path), path
        assert not rules.excludes(path, path in folders), path
        parts = path.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            assert above in folders, f"{path} lies under {above}, which does not travel"
            assert above not in dropped
    for path, item in files.items():
        assert os.path.isfile(item.source) and not os.path.islink(item.source)
        data = Path(item.source).read_bytes()
        assert MARK.encode() not in data, path
        assert item.entry.size == len(data)
    for path, link in links.items():
        assert not link.target.startswith("/"), path
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(path), link.target))
        assert lexical != ".." and not lexical.startswith("../"), path
        assert link.target == made.links[path]
        full = os.path.join(root, *path.split("/"))
        resolved = os.path.realpath(full)
        assert _inside(resolved, real_root), path
        inner = os.path.relpath(resolved, real_root).replace(os.sep, "/")
        if inner != ".":
            assert not is_secret(inner), (path, inner)
            assert not rules.excludes(inner, os.path.isdir(resolved)), (path, inner)
        if os.path.isfile(resolved):
            assert MARK.encode() not in Path(resolved).read_bytes(), path
    for path in made.links:
        parts = path.split("/")
        reachable = all("/".join(parts[:d]) in folders for d in range(1, len(parts)))
        named_out = rules.excludes(path, os.path.isdir(made.root / path))
        if reachable and not named_out:
            assert path in links or path in dropped, f"the link {path} is neither kept nor dropped"
    for folder, dirs, entries in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        if rel != "." and rel not in folders:
            dirs[:] = []
            continue
        for name in entries:
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full) and not rules.excludes(prefix + name, False):
                assert prefix + name in files, f"{prefix}{name} was left out"
