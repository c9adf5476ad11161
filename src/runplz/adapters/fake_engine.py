"""A `ContainerEngine` with no Docker.

Images are kept in memory: ``FROM`` (any registry image, or only ``base_images`` when given, or an image built here),
``COPY``, ``WORKDIR`` and ``ENV`` are applied to an in-memory file tree (files, links and folders); ``RUN``
steps are recorded, not executed. A container is a process on this machine
(through the given `CommandRunner`): the image's files are laid out in a
folder, and absolute paths in argv, env values and the working dir are mapped
to that folder or to the bind mounts' sources. ``python``/``python3`` is this
interpreter. Good enough to run a runplz function through the real protocol.
``present`` holds the containers that exist: a run's while it runs (tests may
add others, e.g. one left behind by a driver killed with -9).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import shutil
import tempfile
import threading
import weakref
from typing import Callable, Iterable, Mapping

import attrs

from ..domain.errors import BuildError, CommandTimeout, ContainerError, EngineUnavailable, GpuUnavailable
from ..ports.command_runner import CommandRunner
from ..ports.container_engine import (
    BuildRequest,
    ContainerInfo,
    ContainerRun,
    ContextBytes,
    ContextFile,
    ContextFolder,
    ContextItem,
    ContextLink,
)
from .build_context import open_regular
from .subprocess_runner import SubprocessRunner


@attrs.define
class FakeImage:
    tag: str
    dockerfile: str
    files: dict[str, tuple[bytes, bool]]  # container path -> (content, executable)
    workdir: str
    env: dict[str, str]
    labels: dict[str, str]
    steps: list[str]
    sequence: int
    links: dict[str, str] = attrs.field(factory=dict)  # container path -> link target
    folders: set[str] = attrs.field(factory=set)  # container paths of folders copied in


def _words(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        return list(json.loads(rest))
    return shlex.split(rest)


def _entry(item: ContextItem) -> tuple:
    """("file", bytes, executable), ("link", target) or ("dir",)."""
    if isinstance(item, ContextFolder):
        return ("dir",)
    if isinstance(item, ContextLink):
        return ("link", item.target)
    if isinstance(item, ContextBytes):
        return ("file", item.data, item.executable)
    assert isinstance(item, ContextFile)
    with open_regular(item.source, item.arcname) as handle:
        return ("file", handle.read(), item.executable)


@attrs.define
class _Tree:
    files: dict[str, tuple[bytes, bool]] = attrs.field(factory=dict)
    links: dict[str, str] = attrs.field(factory=dict)
    folders: set[str] = attrs.field(factory=set)

    def put(self, path: str, entry: tuple) -> None:
        for table in (self.files, self.links):
            table.pop(path, None)
        self.folders.discard(path)
        if entry[0] == "file":
            self.files[path] = (entry[1], entry[2])
        elif entry[0] == "link":
            self.links[path] = entry[1]
        else:
            self.folders.add(path)


class FakeContainerEngine:
    def __init__(
        self,
        runner: CommandRunner | None = None,
        *,
        base_images: Iterable[str] | None = None,
        gpus: bool = False,
        available: bool = True,
    ) -> None:
        self._runner = runner or SubprocessRunner()
        self.base_images = None if base_images is None else set(base_images)
        self.gpus = gpus
        self.available = available
        self.images: dict[str, FakeImage] = {}
        self.builds: list[BuildRequest] = []
        self.runs: list[ContainerRun] = []
        self.removed: list[str] = []
        self.present: dict[str, ContainerInfo] = {}  # containers that exist (a run's while it runs); tests may add
        self._lock = threading.Lock()
        self._roots: dict[str, str] = {}
        self._sequence = 0

    def check(self) -> None:
        if not self.available:
            raise EngineUnavailable("the fake Docker engine is switched off")

    def has_image(self, tag: str) -> bool:
        return tag in self.images

    def _copy(self, words: list[str], context: dict[str, tuple], tree: _Tree, workdir: str) -> None:
        words = [w for w in words if not w.startswith("--")]
        *sources, dest = words
        if not dest.startswith("/"):
            dest = workdir.rstrip("/") + "/" + dest
        for source in sources:
            prefix = source.strip("/")
            matched = False
            for arcname, entry in context.items():
                if prefix in ("", ".") or arcname.startswith(prefix + "/"):
                    rest = arcname if prefix in ("", ".") else arcname[len(prefix) + 1 :]
                    tree.put(dest.rstrip("/") + "/" + rest, entry)
                    matched = True
                elif arcname == prefix:
                    if entry[0] == "dir":
                        tree.put(dest.rstrip("/") or "/", entry)
                        matched = True
                        continue
                    target = dest + os.path.basename(arcname) if dest.endswith("/") else dest
                    tree.put(target, entry)
                    matched = True
            if not matched:
                raise BuildError(f"COPY failed: {source} is not in the build context")

    def build(self, request: BuildRequest, on_line: Callable[[str], None] | None = None) -> None:
        self.builds.append(request)
        say = on_line or (lambda line: None)
        context = {item.arcname: _entry(item) for item in request.context}
        tree = _Tree()
        workdir, env, steps, labels = "/", {}, [], {}
        for number, line in enumerate(l for l in request.dockerfile.splitlines() if l.strip() and not l.lstrip().startswith("#")):
            keyword, _, rest = line.strip().partition(" ")
            keyword = keyword.upper()
            say(f"Step {number + 1} : {line.strip()}")
            if keyword == "FROM":
                ref = rest.split()[0]
                if ref in self.images:
                    parent = self.images[ref]
                    tree = _Tree(dict(parent.files), dict(parent.links), set(parent.folders))
                    workdir, env = parent.workdir, dict(parent.env)
                    labels = dict(parent.labels)  # like Docker, an image inherits its parent's labels
                elif self.base_images is not None and ref not in self.base_images:
                    raise BuildError(f"docker build of {request.tag} failed: pull access denied for {ref}")
            elif keyword in ("COPY", "ADD"):
                self._copy(_words(rest), context, tree, workdir)
            elif keyword == "WORKDIR":
                workdir = rest.strip() if rest.strip().startswith("/") else workdir.rstrip("/") + "/" + rest.strip()
            elif keyword == "ENV":
                key, _, value = rest.strip().partition("=")
                env[key.strip()] = value.strip()
            else:
                steps.append(line.strip())
        self._sequence += 1
        self.images[request.tag] = FakeImage(
            request.tag, request.dockerfile, tree.files, workdir, env, {**labels, **request.labels}, steps,
            self._sequence, tree.links, tree.folders,
        )

    def latest_image(self, labels: Mapping[str, str]) -> str | None:
        matching = [
            image for image in self.images.values()
            if all(image.labels.get(k) == v for k, v in labels.items())
        ]
        return max(matching, key=lambda image: image.sequence).tag if matching else None

    def supports_gpus(self) -> bool:
        return self.gpus

    def _root(self, image: FakeImage) -> str:
        root = self._roots.get(image.tag)
        if root is None:
            root = tempfile.mkdtemp(prefix="runplz-fake-image-")
            weakref.finalize(self, shutil.rmtree, root, True)
            for path in sorted(image.folders):
                os.makedirs(root + path, exist_ok=True)
            for path, (data, executable) in image.files.items():
                target = root + path
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(data)
                os.chmod(target, 0o755 if executable else 0o644)
            for path, link in image.links.items():
                os.makedirs(os.path.dirname(root + path), exist_ok=True)
                os.symlink(root + link if link.startswith("/") else link, root + path)
            os.makedirs(root + image.workdir, exist_ok=True)
            self._roots[image.tag] = root
        return root

    def run(self, run: ContainerRun) -> int:
        image = self.images.get(run.image)
        if image is None:
            raise ContainerError(f"no such image {run.image}")
        if run.gpus and not self.gpus:
            raise GpuUnavailable("the fake engine has no GPUs")
        self.runs.append(run)
        root = self._root(image)
        mounts = sorted(run.mounts, key=lambda m: len(m.target), reverse=True)

        def host(path: str) -> str:
            if not path.startswith("/"):
                return path
            for mount in mounts:
                if path == mount.target or path.startswith(mount.target.rstrip("/") + "/"):
                    return mount.source + path[len(mount.target):]
            if os.path.exists(root + path):
                return root + path
            return path

        argv = [host(a) for a in run.argv]
        if os.path.basename(argv[0]) in ("python", "python3"):
            argv[0] = sys.executable
        env = {k: host(v) for k, v in {**image.env, **run.env}.items()}
        if run.gpus:
            env["NVIDIA_VISIBLE_DEVICES"] = "all" if run.gpus == "all" else run.gpus.split("=", 1)[-1]
        with self._lock:
            self.present[run.name] = ContainerInfo(run.name, "running", dict(run.labels))
        try:
            result = self._runner.run(
                argv, cwd=host(run.workdir or image.workdir), env=env, timeout=run.timeout, inherit=True
            )
        except (CommandTimeout, KeyboardInterrupt):
            self.remove(run.name)
            raise
        finally:
            with self._lock:
                self.present.pop(run.name, None)  # --rm
        return result.exit_code

    def remove(self, name: str) -> None:
        self.removed.append(name)
        with self._lock:
            self.present.pop(name, None)

    def containers(self, label: str) -> tuple[ContainerInfo, ...]:
        self.check()
        with self._lock:
            found = [info for info in self.present.values() if label in info.labels]
        return tuple(sorted(found, key=lambda info: info.name))
