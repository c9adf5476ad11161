"""Docker images for a function: the base (DSL or Dockerfile) and the run layer.

Tags derive from content hashes of everything that goes in, so an unchanged
image is never rebuilt.
"""

from __future__ import annotations

import os

from ..domain.dockerfile import local_dirs, render_base, render_run_layer
from ..domain.errors import UsageError
from ..domain.excludes import DEFAULT_PATTERNS
from ..domain.hashing import digest, tree_digest
from ..domain.image import DockerfileBase, Image
from ..domain.layout import CONTEXT_BUNDLE, CONTEXT_REPO
from ..domain.naming import base_tag, run_tag
from ..ports.console import Console
from ..ports.container_engine import BuildRequest, ContainerEngine, ContextFile
from .bundle import RuntimeBundle
from .tree import TreeFile, TreeScanner


def _under(files: list[TreeFile], folder: str) -> list[TreeFile]:
    if folder == ".":
        return files
    prefix = folder + "/"
    return [f for f in files if f.entry.path.startswith(prefix)]


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

    def base_request(self, app: str, image: Image, repo_root: str) -> BuildRequest:
        """What the base image is made of (and so its tag), without building it."""
        return self._base(app, image, repo_root, self._trees.scan(repo_root))

    def build(self, request: BuildRequest, what: str = "base") -> None:
        """Build ``request`` unless the engine has it."""
        self._ensure(request, what)

    def _base(self, app: str, image: Image, repo_root: str, repo: list[TreeFile]) -> BuildRequest:
        labels = {"runplz.app": app, "runplz.kind": "base"}
        if isinstance(image.base, DockerfileBase):
            dockerfile_path = os.path.join(repo_root, *image.base.path.split("/"))
            try:
                with open(dockerfile_path, encoding="utf-8") as handle:
                    dockerfile = handle.read()
            except OSError as exc:
                raise UsageError(f"cannot read Dockerfile {image.base.path}: {exc.strerror}") from None
            context_root = os.path.join(repo_root, *(image.base.context or ".").split("/"))
            files = self._trees.scan(context_root, patterns=DEFAULT_PATTERNS)
            context = tuple(ContextFile(f.entry.path, f.source, f.entry.executable) for f in files)
            content = digest("dockerfile", dockerfile, tree_digest(f.entry for f in files))
            return BuildRequest(base_tag(app, content), dockerfile, context, labels)
        dockerfile = render_base(image)
        chosen: dict[str, TreeFile] = {}
        for folder in local_dirs(image):
            found = _under(repo, folder)
            if not found:
                raise UsageError(f"pip_install_local_dir({folder!r}): no such folder in the repo")
            for f in found:
                chosen[f.entry.path] = f
        files = sorted(chosen.values(), key=lambda f: f.entry.path)
        context = tuple(
            ContextFile(f"{CONTEXT_REPO}/{f.entry.path}", f.source, f.entry.executable) for f in files
        )
        content = digest("dsl", dockerfile, tree_digest(f.entry for f in files))
        return BuildRequest(base_tag(app, content), dockerfile, context, labels)

    def ensure(
        self, app: str, function: str, image: Image, repo_root: str, anchored: frozenset[str], uid: int, gid: int
    ) -> str:
        """Build what is missing; return the run image's tag."""
        repo = self._trees.scan(repo_root, anchored)
        base = self._base(app, image, repo_root, repo)
        bundle_files = self._bundle.materialized_files()
        dockerfile = render_run_layer(base.tag, uid, gid)
        content = digest(
            function, base.tag, dockerfile, tree_digest(f.entry for f in repo), self._bundle.digest()
        )
        context = tuple(
            ContextFile(f"{CONTEXT_REPO}/{f.entry.path}", f.source, f.entry.executable) for f in repo
        ) + tuple(ContextFile(f"{CONTEXT_BUNDLE}/{f.path}", f.source, f.executable) for f in bundle_files)
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
