"""Build contexts carry links as links, folders as folders, and never a secret's bytes.

The last tests build images on a real Docker engine from trees seeded with
secrets and links, export the image's file system and look for the secrets'
markers in every byte of it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from runplz.adapters.build_context import DOCKERFILE_NAME, write_context
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_engine import FakeContainerEngine
from runplz.domain.errors import BuildError, UsageError
from runplz.domain.image import Image
from runplz.ports.container_engine import ContextBytes, ContextFile, ContextFolder, ContextLink
from runplz.services.bundle import RuntimeBundle
from runplz.services.images import ImageBuilder
from runplz.services.tree import TreeScanner

from .secret_trees import MARK, Made, check_selection, make_outside, make_tree, tree_specs

IMAGE = Image.from_registry("python:3.11-slim")
_cases = itertools.count()


def builder(engine, cache: Path, console: RecordingConsole | None = None) -> ImageBuilder:
    console = console or RecordingConsole()
    return ImageBuilder(engine, console, RuntimeBundle(str(cache)), TreeScanner(cache_dir=str(cache)))


def issue_repo(base: Path) -> Made:
    """The cases from the report: `ln -s .env settings_alias`, and a link to credentials outside the repo."""
    made = Made(base / "repo", base / "home")
    root = made.root
    (root / "data").mkdir(parents=True)
    (root / "lib" / "pkg").mkdir(parents=True)
    (root / "empty" / "deeper").mkdir(parents=True)
    make_outside(made.outside, made)
    for rel in (".env", "keys/Cert.PEM", ".ENV.local", "deploy/prod.tfvars", "ci/gcp-service-account.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        marker = f"{MARK}{len(made.markers)}-{rel.replace('/', '-')}"
        (root / rel).write_text(marker)
        made.markers.append(marker)
    (root / ".env.example").write_text("TOKEN=\n")
    (root / "data" / "in.txt").write_text("data\n")
    (root / "lib" / "pkg" / "__init__.py").write_text("")
    links = {
        "settings_alias": ".env",
        "aws_creds": str(made.outside / ".aws" / "credentials"),
        "aws_creds_rel": "../home/.aws/credentials",
        "pem": "keys/Cert.PEM",
        "alias.txt": "data/in.txt",
        "libdir": "lib",
        "data/up": "../.env.example",
    }
    for path, target in links.items():
        os.symlink(target, root / path)
        made.links[path] = target
    return made


# --- the tar stream -----------------------------------------------------------------


def test_the_context_tar_has_links_as_links_and_folders_as_folders(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    (tmp_path / "tool.sh").write_text("#!/bin/sh\n")
    items = [
        ContextFolder("repo"), ContextFolder("repo/empty"), ContextLink("repo/alias", "../secret.txt"),
        ContextFile("repo/tool.sh", str(tmp_path / "tool.sh"), True), ContextBytes("repo/a/b.txt", b"b"),
    ]
    spool = write_context("FROM scratch\n", items)
    data = spool.read()
    assert b"TOP-SECRET" not in data
    spool.seek(0)
    with tarfile.open(fileobj=spool) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members[DOCKERFILE_NAME].isfile()
    assert members["repo"].isdir() and members["repo/empty"].isdir() and members["repo/a"].isdir()
    assert members["repo/alias"].issym() and members["repo/alias"].linkname == "../secret.txt"
    assert members["repo/tool.sh"].mode == 0o755 and members["repo/a/b.txt"].mode == 0o644
    assert [m.name for m in members.values()].count("repo") == 1


def test_a_file_that_became_a_link_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    os.symlink(tmp_path / "secret.txt", tmp_path / "was_a_file")
    with pytest.raises(BuildError, match="was_a_file"):
        write_context("FROM scratch\n", [ContextFile("was_a_file", str(tmp_path / "was_a_file"))])


# --- images through runplz's own builder, on the fake engine -------------------------


def test_the_run_image_carries_kept_links_and_empty_folders_and_no_secret(tmp_path):
    made = issue_repo(tmp_path)
    engine, console = FakeContainerEngine(), RecordingConsole()
    tag = builder(engine, tmp_path / "cache", console).ensure("ctx", "work", IMAGE, str(made.root), frozenset(), 0, 0)
    image = engine.images[tag]
    repo = "/runplz/repo"
    assert [m for kind, m in console.events if kind == "warn"] == [
        f"not putting the link {path} into the image: {why}"
        for path, why in [
            ("aws_creds", "an absolute link"), ("aws_creds_rel", "points outside the repo"),
            ("pem", "points to an excluded path"), ("settings_alias", "points to an excluded path"),
        ]
    ]
    assert image.links == {f"{repo}/alias.txt": "data/in.txt", f"{repo}/libdir": "lib", f"{repo}/data/up": "../.env.example"}
    assert image.folders == {repo} | {f"{repo}/{d}" for d in ("ci", "data", "deploy", "empty", "empty/deeper", "keys", "lib", "lib/pkg")}
    assert f"{repo}/data/in.txt" in image.files and f"{repo}/.env.example" in image.files
    for path, (data, _) in image.files.items():
        assert MARK.encode() not in data, path
    arcnames = {item.arcname for build in engine.builds for item in build.context}
    for left_out in ("settings_alias", "aws_creds", "aws_creds_rel", "pem", ".env", ".ENV.local", "keys/Cert.PEM"):
        assert f"repo/{left_out}" not in arcnames
    root = engine._root(image)
    assert os.readlink(root + f"{repo}/alias.txt") == "data/in.txt"
    assert Path(root + f"{repo}/alias.txt").read_text() == "data\n"
    assert os.path.isdir(root + f"{repo}/empty/deeper")


def test_image_tags_follow_links_and_folders(tmp_path):
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("a")
    (root / "data" / "b.txt").write_text("b")
    images = builder(FakeContainerEngine(), tmp_path / "cache")

    def tag() -> str:
        return images.ensure("ctx", "work", IMAGE, str(root), frozenset(), 0, 0)

    seen = [tag()]
    assert tag() == seen[0]
    os.symlink("data/a.txt", root / "ln")
    seen.append(tag())
    os.remove(root / "ln")
    os.symlink("data/b.txt", root / "ln")
    seen.append(tag())
    os.remove(root / "ln")
    assert tag() == seen[0]
    (root / "hollow").mkdir()
    seen.append(tag())
    os.symlink("/etc/passwd", root / "abs")  # dropped: changes nothing
    assert tag() == seen[-1]
    assert len(set(seen)) == len(seen)


def test_a_dsl_local_folder_brings_its_links_and_folders(tmp_path):
    root = tmp_path / "repo"
    (root / "lib" / "pkg" / "empty").mkdir(parents=True)
    (root / "lib" / "pkg" / "__init__.py").write_text("")
    (root / "lib" / ".env").write_text(MARK)
    os.symlink("pkg/__init__.py", root / "lib" / "init_alias")
    os.symlink(".env", root / "lib" / "env_alias")
    image = IMAGE.pip_install_local_dir("lib")
    request = builder(FakeContainerEngine(), tmp_path / "cache").base_request("ctx", image, str(root))
    items = set(request.context)
    assert ContextFolder("repo/lib") in items and ContextFolder("repo/lib/pkg/empty") in items
    assert ContextLink("repo/lib/init_alias", "pkg/__init__.py") in items
    assert not {i.arcname for i in items} & {"repo/lib/.env", "repo/lib/env_alias"}
    (root / "build").mkdir()
    with pytest.raises(UsageError, match="no such folder"):
        builder(FakeContainerEngine(), tmp_path / "c").base_request("ctx", IMAGE.pip_install_local_dir("build"), str(root))


def test_a_dockerfile_context_follows_the_repo_rules(tmp_path):
    root = tmp_path / "repo"
    ctx = root / "docker" / "ctx"
    ctx.mkdir(parents=True)
    (root / "docker" / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /app/\n")
    (root / ".runplzignore").write_text("/docker/ctx/big.bin\n")
    (ctx / "app.py").write_text("a")
    (ctx / "big.bin").write_text("b")
    (ctx / ".env").write_text(MARK)
    (root / "main.py").write_text("m")
    os.symlink("../../main.py", ctx / "outside_ctx")
    os.symlink("app.py", ctx / "alias")
    images = builder(FakeContainerEngine(), tmp_path / "cache")
    request = images.base_request("ctx", Image.from_dockerfile("docker/Dockerfile", context="docker/ctx"), str(root))
    assert {i.arcname for i in request.context} == {"app.py", "alias"}
    (root / ".runplzignore").write_text("docker/\n")
    with pytest.raises(UsageError, match="holds nothing"):
        images.base_request("ctx", Image.from_dockerfile("docker/Dockerfile", context="docker/ctx"), str(root))


@settings(
    max_examples=30, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=tree_specs())
def test_random_trees_on_the_fake_engine_never_carry_a_secret(tmp_path, spec):
    made = make_tree(tmp_path / f"case{next(_cases)}", spec)
    engine = FakeContainerEngine()
    images = builder(engine, tmp_path / "cache")
    tag = images.ensure("ctx", "work", IMAGE, str(made.root), spec.anchored, 0, 0)
    image = engine.images[tag]
    for data, _ in image.files.values():
        assert MARK.encode() not in data
    chosen = TreeScanner().select(str(made.root), spec.anchored)
    check_selection(made, chosen, "\n".join(spec.ignore), spec.anchored)
    assert {p[len("/runplz/repo/"):]: t for p, t in image.links.items()} == {l.path: l.target for l in chosen.links}


# --- the real Docker engine ---------------------------------------------------------


def _docker(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, timeout=300)
    assert done.returncode == 0, f"docker {args[0]}: {done.stderr.decode(errors='replace')}"
    return done


def exported(tag: str, where: Path) -> Path:
    """The image's whole file system as a tar (docker create + docker export)."""
    cid = _docker("create", tag, "true").stdout.decode().strip()
    try:
        _docker("export", "-o", str(where), cid)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=120)
    return where


def check_real_image(made: Made, tmp_path: Path, anchored: frozenset[str] = frozenset()) -> None:
    from runplz.adapters.docker_engine import DockerEngine
    from runplz.adapters.subprocess_runner import SubprocessRunner

    tmp_path.mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    tag = builder(DockerEngine(SubprocessRunner()), cache).ensure(
        "ctx-secrets", "work", IMAGE, str(made.root), anchored, os.getuid(), os.getgid()
    )
    try:
        dump = exported(tag, tmp_path / f"fs{next(_cases)}.tar")
        data = dump.read_bytes()
        assert made.markers and all(m.encode() not in data for m in made.markers)
        with tarfile.open(dump) as tar:
            members = {m.name.rstrip("/"): m for m in tar.getmembers()}
        dump.unlink()
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
    chosen = TreeScanner().select(str(made.root), anchored)
    repo = "runplz/repo"
    for link in chosen.links:
        member = members[f"{repo}/{link.path}"]
        assert member.issym() and member.linkname == link.target, link
    for folder in chosen.folders:
        assert members[f"{repo}/{folder}"].isdir(), folder
    for f in chosen.files:
        assert members[f"{repo}/{f.entry.path}"].isfile(), f.entry.path
    shipped = {name[len(repo) + 1 :] for name in members if name.startswith(repo + "/")}
    assert shipped == set(chosen.paths())
    for path, _ in chosen.dropped:
        assert f"{repo}/{path}" not in members


@pytest.mark.real
def test_real_docker_image_of_the_issue_cases(docker_engine, tmp_path):
    made = issue_repo(tmp_path)
    chosen = TreeScanner().select(str(made.root))
    assert {l.path for l in chosen.links} == {"alias.txt", "libdir", "data/up"}
    assert {p for p, _ in chosen.dropped} == {"settings_alias", "aws_creds", "aws_creds_rel", "pem"}
    check_real_image(made, tmp_path)


@pytest.mark.real
@settings(
    max_examples=5, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=tree_specs())
def test_real_docker_images_of_random_trees_hold_no_secret(docker_engine, tmp_path, spec):
    made = make_tree(tmp_path / f"case{next(_cases)}", spec)
    check_real_image(made, tmp_path / f"case{next(_cases)}", spec.anchored)
