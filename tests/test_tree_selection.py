"""`TreeScanner.select`: the one selection every transfer and build context uses."""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from runplz.services.tree import Selection, TreeLink, TreeScanner

from .secret_trees import check_selection, make_tree, tree_specs

_cases = itertools.count()


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    write(root, {
        "main.py": "print(1)\n", "data/in.txt": "data\n", "lib/pkg/__init__.py": "", ".env": "SECRET=1\n",
        ".env.example": "SECRET=\n", "keys/Cert.PEM": "pem", "build/out.o": "o", "src/out/gen.py": "g",
        ".git/HEAD": "ref", "docs/build": "a file named build", "outputs/old.txt": "old",
    })
    (root / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "home" / ".aws").mkdir(parents=True)
    (tmp_path / "home" / ".aws" / "credentials").write_text("aws_secret_access_key=x")
    return root


def link(root: Path, path: str, target: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / path)


def test_files_folders_and_what_is_left_out(repo):
    chosen = TreeScanner().select(str(repo), frozenset({"outputs"}))
    assert [f.entry.path for f in chosen.files] == [
        ".env.example", "data/in.txt", "docs/build", "lib/pkg/__init__.py", "main.py"
    ]
    assert chosen.folders == ("data", "docs", "empty", "empty/deeper", "keys", "lib", "lib/pkg", "src")
    assert chosen.links == () and chosen.dropped == ()
    assert chosen.root == str(repo)
    assert chosen.paths() == list(chosen.folders) + [f.entry.path for f in chosen.files]


def test_the_issue_cases_a_link_to_a_secret_inside_and_a_credentials_file_outside(repo, tmp_path):
    link(repo, "settings_alias", ".env")
    link(repo, "creds", str(tmp_path / "home" / ".aws" / "credentials"))
    link(repo, "creds_rel", "../home/.aws/credentials")
    link(repo, "pem_alias", "keys/Cert.PEM")
    chosen = TreeScanner().select(str(repo))
    assert chosen.links == ()
    assert dict(chosen.dropped) == {
        "settings_alias": "points to an excluded path",
        "creds": "an absolute link",
        "creds_rel": "points outside the repo",
        "pem_alias": "points to an excluded path",
    }
    assert "settings_alias" not in chosen.paths()


def test_safe_links_travel_as_links(repo):
    link(repo, "alias.txt", "data/in.txt")
    link(repo, "libdir", "lib")
    link(repo, "data/up", "../main.py")
    link(repo, "chain", "alias.txt")
    link(repo, "dangling", "not/there")
    link(repo, "here", ".")
    chosen = TreeScanner().select(str(repo))
    assert chosen.links == (
        TreeLink("alias.txt", "data/in.txt"), TreeLink("chain", "alias.txt"), TreeLink("dangling", "not/there"),
        TreeLink("data/up", "../main.py"), TreeLink("here", "."), TreeLink("libdir", "lib"),
    )
    assert "libdir/pkg/__init__.py" not in chosen.paths()  # never walked through
    assert chosen.dropped == ()


def test_links_that_escape_resolve_to_excluded_paths_or_loop_are_dropped(repo, tmp_path):
    link(repo, "chain_a", "chain_b")
    link(repo, "chain_b", ".env")
    link(repo, "to_git", ".git/HEAD")
    link(repo, "to_build", "build")
    link(repo, "to_keys_dir", "keys")  # a kept folder: fine
    link(repo, "reentry", "../repo/main.py")
    link(repo, "out_dir", str(tmp_path / "home"))
    link(repo, "via_out_dir", "out_dir/.aws/credentials")
    link(repo, "loop_a", "loop_b")
    link(repo, "loop_b", "loop_a")
    link(repo, "deep/climb", "../../home/.aws")
    link(repo, "absolute_inside", str(repo / "main.py"))
    chosen = TreeScanner().select(str(repo))
    assert [l.path for l in chosen.links] == ["to_keys_dir"]
    assert dict(chosen.dropped) == {
        "absolute_inside": "an absolute link",
        "chain_a": "points to an excluded path",
        "chain_b": "points to an excluded path",
        "deep/climb": "points outside the repo",
        "loop_a": "a link loop",
        "loop_b": "a link loop",
        "out_dir": "an absolute link",
        "reentry": "points outside the repo",
        "to_build": "points to an excluded path",
        "to_git": "points to an excluded path",
        "via_out_dir": "points outside the repo",
    }


def test_a_link_with_a_secret_name_is_simply_excluded(repo):
    link(repo, ".ENV", "main.py")
    chosen = TreeScanner().select(str(repo))
    assert chosen.links == () and chosen.dropped == ()


def test_fifos_and_sockets_never_travel(repo):
    os.mkfifo(repo / "pipe")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(repo / "sock"))
        paths = TreeScanner().select(str(repo)).paths()
    finally:
        server.close()
    assert "pipe" not in paths and "sock" not in paths


def test_runplzignore_reincludes_noise_adds_rules_and_cannot_free_secrets(repo):
    (repo / ".runplzignore").write_text("!build/\ndata/\n!.env\n!*.pem\n# note\n")
    link(repo, "to_data", "data/in.txt")
    chosen = TreeScanner().select(str(repo))
    paths = chosen.paths()
    assert "build/out.o" in paths and ".runplzignore" in paths
    assert "data" not in paths and "data/in.txt" not in paths
    assert ".env" not in paths and "keys/Cert.PEM" not in paths
    assert dict(chosen.dropped) == {"to_data": "points to an excluded path"}


def test_a_subfolder_is_judged_by_the_repo_rules_and_links_must_stay_inside_it(repo):
    write(repo, {"docker/ctx/app.py": "a", "docker/ctx/.env": "s", "docker/ctx/skip.log": "l"})
    (repo / ".runplzignore").write_text("/docker/ctx/skip.log\n")
    link(repo, "docker/ctx/main", "../../main.py")
    link(repo, "docker/ctx/own", "app.py")
    chosen = TreeScanner().select(str(repo / "docker" / "ctx"), repo_root=str(repo))
    assert [f.entry.path for f in chosen.files] == ["app.py"]
    assert [l.path for l in chosen.links] == ["own"]
    assert dict(chosen.dropped) == {"main": "points outside the folder sent"}


def test_a_subfolder_that_is_excluded_sends_nothing(repo):
    assert TreeScanner().select(str(repo / "build"), repo_root=str(repo)) == Selection(str(repo / "build"))
    link(repo, "ctx", ".git")
    assert TreeScanner().select(str(repo / "ctx"), repo_root=str(repo)).paths() == []


def test_a_subfolder_outside_the_repo_is_refused(repo, tmp_path):
    link(repo, "ctx", str(tmp_path / "home"))
    with pytest.raises(ValueError):
        TreeScanner().select(str(repo / "ctx"), repo_root=str(repo))


def test_anchored_paths_are_repo_relative(repo):
    write(repo, {"runs/o/x.bin": "x", "sub/runs/o/y.bin": "y"})
    chosen = TreeScanner().select(str(repo / "sub"), frozenset({"runs/o"}), repo_root=str(repo))
    assert "runs/o/y.bin" in chosen.paths()
    assert "runs/o/x.bin" not in TreeScanner().select(str(repo), frozenset({"runs/o"})).paths()


def test_size_largest_folders_and_paths(tmp_path):
    root = tmp_path / "r"
    write(root, {"big/a": "x" * 300, "big/b/c": "x" * 200, "mid/a": "x" * 400, "top.txt": "x" * 50})
    (root / "hollow").mkdir()
    link(root, "ln", "top.txt")
    chosen = TreeScanner().select(str(root))
    assert chosen.size() == 950
    assert chosen.largest_folders() == [("big", 500), ("mid", 400), ("top.txt", 50)]
    assert chosen.largest_folders(1) == [("big", 500)]
    assert chosen.paths() == ["big", "big/b", "hollow", "mid", "big/a", "big/b/c", "ln", "mid/a", "top.txt"]


def test_digests_come_from_the_cache_while_size_mtime_and_inode_hold(tmp_path):
    root = tmp_path / "r"
    write(root, {"f.txt": "one"})
    scanner = TreeScanner(cache_dir=str(tmp_path / "cache"))
    first = scanner.select(str(root)).files[0].entry.digest
    stamp = os.stat(root / "f.txt")
    with open(root / "f.txt", "r+") as handle:
        handle.write("two")
    os.utime(root / "f.txt", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert scanner.select(str(root)).files[0].entry.digest == first
    assert TreeScanner().select(str(root)).files[0].entry.digest != first
    assert scanner.scan(str(root))[0].entry.path == "f.txt"


def test_an_executable_bit_is_kept(tmp_path):
    root = tmp_path / "r"
    write(root, {"run.sh": "#!/bin/sh\n"})
    os.chmod(root / "run.sh", 0o755)
    assert TreeScanner().select(str(root)).files[0].entry.executable


@settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=tree_specs())
def test_random_trees_never_select_a_secret_an_escaping_link_or_anything_under_a_dropped_path(tmp_path, spec):
    made = make_tree(tmp_path / f"case{next(_cases)}", spec)
    chosen = TreeScanner().select(str(made.root), spec.anchored)
    check_selection(made, chosen, "\n".join(spec.ignore), spec.anchored)
