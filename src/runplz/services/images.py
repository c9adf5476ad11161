"""Docker images for a function: the base (DSL or Dockerfile) and the run layer.

Tags derive from content hashes of everything that goes in, so an unchanged
image is never rebuilt.
"""

from __future__ import annotations

import os

import attrs

from ..domain.dockerfile import local_dirs, render_base, render_run_layer
from ..domain.errors import UsageError
from ..domain.hashing import digest
from ..domain.image import DockerfileBase, Image
from ..domain.layout import CONTEXT_BUNDLE, CONTEXT_REPO
from ..domain.naming import base_tag, run_tag
from ..ports.console import Console
from ..ports.container_engine import (
    BuildRequest,
    ContainerEngine,
    ContextFile,
    ContextFolder,
    ContextItem,
    ContextLink,
)
from .bundle import RuntimeBundle
from .tree import Selection, TreeScanner, warn_dropped




def context_items(selection: Selection, prefix: str = "") -> tuple[ContextItem, ...]:
    """A selection as build context items, under ``prefix`` (a folder item of its own)."""

    def name(path: str) -> str:
        return f"{prefix}/{path}" if prefix else path

    return (
        ((ContextFolder(prefix),) if prefix else ())
        + tuple(ContextFolder(name(d)) for d in selection.folders)
        + tuple(ContextFile(name(f.entry.path), f.source, f.entry.executable) for f in selection.files)
        + tuple(ContextLink(name(l.path), l.target) for l in selection.links)
    )


def _merge(root: str, parts: list[Selection]) -> Selection:
    files = {f.entry.path: f for part in parts for f in part.files}
    links = {l.path: l for part in parts for l in part.links}
    folders = {d for part in parts for d in part.folders}
    return Selection(
        root,
        tuple(files[p] for p in sorted(files)),
        tuple(links[p] for p in sorted(links)),
        tuple(sorted(folders)),
    )


def _local_dirs(image: Image, repo: Selection) -> Selection:
    parts = []
    for folder in local_dirs(image):
        if folder != "." and folder not in repo.folders:
            raise UsageError(
                f"pip_install_local_dir({folder!r}): no such folder in the repo (or runplz's rules exclude it)"
            )
        part = repo.under(folder)
        parts.append(part if folder == "." else attrs.evolve(part, folders=(folder,) + part.folders))
    return _merge(repo.root, parts)


class ImageBuilder:
    def __init__(
        self, engine: ContainerEngine, console: Console, bundle: RuntimeBundle, trees: TreeScanner
    ) -> None:
        self._engine = engine
        self._console = console
        self._bundle = bundle
        self._trees = trees

    def _ensure(self, request: BuildRequest, what: str) -> None:
        if self._engine.has_image(request.tag):
            return
        self._engine.check()
        self._console.info(f"building {what} image {request.tag}")
        self._engine.build(request, on_line=self._console.output)

    def base_request(
        self, app: str, image: Image, repo_root: str, anchored: frozenset[str] = frozenset()
    ) -> BuildRequest:
        """What the base image is made of (and so its tag), without building it."""
        repo = self._trees.select(repo_root, anchored) if local_dirs(image) else Selection(repo_root)
        return self._base(app, image, repo_root, repo, anchored)

    def build(self, request: BuildRequest, what: str = "base") -> None:
        """Build ``request`` unless the engine has it."""
        self._ensure(request, what)

    def _dockerfile_context(self, base: DockerfileBase, repo_root: str, anchored: frozenset[str]) -> Selection:
        where = base.context or "."
        context_root = os.path.join(repo_root, *where.split("/"))
        if not os.path.isdir(context_root):
            raise UsageError(f"Image.from_dockerfile context {where!r} is not a folder in the repo")
        try:
            selection = self._trees.select(context_root, anchored, repo_root=repo_root)
        except ValueError:
            raise UsageError(f"Image.from_dockerfile context {where!r} lies outside the repo") from None
        if not (selection.files or selection.links or selection.folders):
            raise UsageError(
                f"Image.from_dockerfile context {where!r} holds nothing runplz may send "
                "(its default rules or .runplzignore exclude it all)"
            )
        return selection

    def _base(
        self, app: str, image: Image, repo_root: str, repo: Selection, anchored: frozenset[str] = frozenset()
    ) -> BuildRequest:
        labels = {"runplz.app": app, "runplz.kind": "base"}
        if isinstance(image.base, DockerfileBase):
            dockerfile_path = os.path.join(repo_root, *image.base.path.split("/"))
            try:
                with open(dockerfile_path, encoding="utf-8") as handle:
                    dockerfile = handle.read()
            except OSError as exc:
                raise UsageError(f"cannot read Dockerfile {image.base.path}: {exc.strerror}") from None
            selection = self._dockerfile_context(image.base, repo_root, anchored)
            content = digest("dockerfile", dockerfile, selection.content_digest())
            return BuildRequest(base_tag(app, content), dockerfile, context_items(selection), labels)
        dockerfile = render_base(image)
        chosen = _local_dirs(image, repo)
        content = digest("dsl", dockerfile, chosen.content_digest())
        context = context_items(chosen, CONTEXT_REPO) if local_dirs(image) else ()
        return BuildRequest(base_tag(app, content), dockerfile, context, labels)

    def ensure(
        self, app: str, function: str, image: Image, repo_root: str, anchored: frozenset[str], uid: int, gid: int
    ) -> str:
        """Build what is missing; return the run image's tag."""
        repo = self._trees.select(repo_root, anchored)
        warn_dropped(self._console, repo, "not putting the link {path} into the image")
        base = self._base(app, image, repo_root, repo, anchored)
        bundle_files = self._bundle.materialized_files()
        dockerfile = render_run_layer(base.tag, uid, gid)
        content = digest(function, base.tag, dockerfile, repo.content_digest(), self._bundle.digest())
        context = context_items(repo, CONTEXT_REPO) + tuple(
            ContextFile(f"{CONTEXT_BUNDLE}/{f.path}", f.source, f.executable) for f in bundle_files
        )
        labels = {"runplz.app": app, "runplz.function": function, "runplz.kind": "run"}
        request = BuildRequest(run_tag(app, content), dockerfile, context, labels)
        if not self._engine.has_image(request.tag):
            self._ensure(base, "base")
            self._ensure(request, "run")
        return request.tag

    def latest(self, app: str, function: str) -> str:
        tag = self._engine.latest_image(
            {"runplz.app": app, "runplz.function": function, "runplz.kind": "run"}
        )
        if tag is None:
            self._engine.check()
            raise UsageError(
                f"no image has been built for {function} yet; run once without --no-build"
            )
        return tag
