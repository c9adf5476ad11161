"""The gitignore matcher agrees with git itself (`git check-ignore --no-index`) on random rules and paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runplz.domain.ignore_rules import parse_rules

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

NAMES = ["a", "b", "ab", "foo", "x.txt", "y.md", "A", "Foo", "a b", "[x]", "#h", "!n"]
PIECES = ["a", "b", "ab", "foo", "*", "?", "*.txt", "[ab]", "[!a]*", "f*o", "**", "x.txt", "A", "\\#h", "\\!n", "\\[x]"]


@st.composite
def rules(draw) -> str:
    segments = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=3))
    line = "/".join(segments)
    if draw(st.booleans()):
        line = "/" + line
    if draw(st.booleans()):
        line += "/"
    if draw(st.integers(0, 3)) == 0:
        line = "!" + line
    if draw(st.integers(0, 5)) == 0:
        line += "  "
    return line


paths = st.tuples(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map("/".join), st.booleans())


def excluded(rule_set, path: str, is_dir: bool) -> bool:
    parts = path.split("/")
    for depth in range(1, len(parts)):
        if rule_set.decide("/".join(parts[:depth]), True):
            return True
    return bool(rule_set.decide(path, is_dir))


def consistent(queries: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Queries that can all exist on disk at once (a parent is a folder, a path has one kind)."""
    kinds: dict[str, bool] = {}
    for path, is_dir in queries:
        parts = path.split("/")
        above = ["/".join(parts[:d]) for d in range(1, len(parts))]
        if kinds.get(path, is_dir) != is_dir or any(not kinds.get(a, True) for a in above):
            continue
        if not is_dir and any(k.startswith(path + "/") for k in kinds):
            continue
        kinds.update({a: True for a in above})
        kinds[path] = is_dir
    return [(p, d) for p, d in queries if kinds.get(p) is d]


def git_ignored(lines: list[str], queries: list[tuple[str, bool]]) -> list[bool]:
    """git's verdict on paths made on disk (so git itself sees files and folders)."""
    with tempfile.TemporaryDirectory() as repo:
        subprocess.run(["git", "init", "-q", repo], check=True)
        with open(f"{repo}/.gitignore", "w") as handle:
            handle.write("\n".join(lines) + "\n")
        for path, is_dir in queries:
            if is_dir:
                os.makedirs(f"{repo}/{path}", exist_ok=True)
            else:
                os.makedirs(os.path.dirname(f"{repo}/{path}"), exist_ok=True)
                open(f"{repo}/{path}", "w").close()
        asked = "".join(p + "\0" for p, _ in queries)
        done = subprocess.run(
            ["git", "-c", "core.ignorecase=false", "check-ignore", "--no-index", "-v", "-n", "-z", "--stdin"],
            cwd=repo, input=asked.encode(), capture_output=True, check=False,
        )
    fields = done.stdout.decode().split("\0")
    answers = []
    for index in range(len(queries)):
        source, _line, pattern, _path = fields[index * 4 : index * 4 + 4]
        answers.append(bool(source) and not pattern.startswith("!"))
    return answers


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(rules(), min_size=1, max_size=4), queries=st.lists(paths, min_size=1, max_size=12))
def test_the_matcher_agrees_with_git(lines, queries):
    queries = consistent(queries)
    rule_set = parse_rules("\n".join(lines))
    ours = [excluded(rule_set, p, d) for p, d in queries]
    assert ours == git_ignored(lines, queries), (lines, queries)
