"""The Image DSL as a real ``modal.Image`` chain.

``modal`` is imported inside the functions only: importing this module must not
import it (``runplz --help`` never pays for modal).

The chain, in order:

1. the base: ``Image.from_registry(ref, add_python=...)`` or
   ``Image.from_dockerfile(<repo>/<path>, context_dir=<repo>/<context or root>,
   ignore=<keep-only>, add_python=...)``. The context defaults to the repo root,
   as on the Docker backend and as ``Image.from_dockerfile`` documents.
2. each step: ``apt_install``, ``pip_install(index_url=...)``, ``run_commands``;
   a ``pip_install_local_dir`` step copies the folder in (``copy=True``, a real
   layer, since a build step follows) and pip-installs it with the Docker
   backend's flags (see `domain.modal_image_plan.local_dir_install`).
3. always last: the repo at ``REPO_DIR`` and the runtime bundle at
   ``BUNDLE_DIR`` with ``copy=False``: mounted when a container starts, so code
   changes never rebuild a layer. Modal refuses build steps after a
   ``copy=False`` add, which is why they close the chain.

Every repo folder that travels is filtered keep-only: a file goes only if its
repo-relative path is in `ModalPlaces.repo_keep`. Modal 1.6.4 calls an
``ignore`` callable with each *file's* path relative to the folder added (for a
Dockerfile context: relative to the context folder, after keeping only what
its COPY/ADD lines name); True leaves the file out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ..domain.image import AptInstall, DockerfileBase, Image, LocalDir, PipInstall, RegistryBase, RunCommands
from ..domain.layout import BUNDLE_DIR, REPO_DIR
from ..domain.modal_image_plan import keeps, local_dir_install, repo_target

if TYPE_CHECKING:  # pragma: no cover
    import modal


@attrs.frozen
class ModalPlaces:
    """Where the image's local inputs are.

    ``repo_root``: absolute path of the user's repo. ``repo_keep``: '/'-separated
    repo-relative paths that may travel (files and their parent folders; secrets
    such as ``.env`` are simply not in it). ``bundle_dir``: the local folder
    holding runplz's runtime bundle (sent whole). ``add_python``: e.g. "3.11",
    passed to Modal as is (the backend decides, see `needs_python`)."""

    repo_root: str
    repo_keep: frozenset[str]
    bundle_dir: str
    add_python: str | None = None


@attrs.frozen
class KeepOnly:
    """A Modal ``ignore`` predicate: True (leave out) for every path under
    ``base`` (the local folder, repo folder ``prefix``) not in ``keep``, and for
    links that lead outside ``base``."""

    base: str
    prefix: str
    keep: frozenset[str]

    def __call__(self, path: Path) -> bool:
        path = Path(path)
        if path.is_absolute():
            try:
                path = path.relative_to(self.base)
            except ValueError:
                return True
        if not keeps(self.keep, self.prefix, path.as_posix()):
            return True
        return self._leaves_base(Path(self.base) / path)

    def _leaves_base(self, local: Path) -> bool:
        if not local.is_symlink():
            return False
        try:
            return not local.resolve().is_relative_to(Path(self.base).resolve())
        except OSError:
            return True


def _local(root: str, repo_path: str) -> str:
    return root if repo_path == "." else os.path.join(root, *repo_path.split("/"))


def _base(image: Image, places: ModalPlaces) -> "modal.Image":
    import modal

    base = image.base
    if isinstance(base, RegistryBase):
        return modal.Image.from_registry(base.ref, add_python=places.add_python)
    if isinstance(base, DockerfileBase):
        context = base.context or "."
        context_dir = _local(places.repo_root, context)
        return modal.Image.from_dockerfile(
            _local(places.repo_root, base.path),
            context_dir=context_dir,
            ignore=KeepOnly(context_dir, context, places.repo_keep),
            add_python=places.add_python,
        )
    raise TypeError(f"unknown image base {base!r}")


def _step(built: "modal.Image", op: object, places: ModalPlaces) -> "modal.Image":
    if isinstance(op, AptInstall):
        return built.apt_install(*op.packages)
    if isinstance(op, PipInstall):
        return built.pip_install(*op.packages, index_url=op.index_url)
    if isinstance(op, RunCommands):
        return built.run_commands(*op.commands)
    if isinstance(op, LocalDir):
        local = _local(places.repo_root, op.path)
        copied = built.add_local_dir(
            local, repo_target(op.path), copy=True, ignore=KeepOnly(local, op.path, places.repo_keep)
        )
        return copied.run_commands(local_dir_install(op.path, op.editable))
    raise TypeError(f"unknown image op {op!r}")


def modal_image(image: Image, places: ModalPlaces) -> "modal.Image":
    """The ``modal.Image`` for ``image``: base, steps, then the repo (keep-only)
    at ``REPO_DIR`` and the bundle at ``BUNDLE_DIR``, both mounted at start.
    Builds nothing and needs no token: Modal resolves the chain when an app runs."""
    built = _base(image, places)
    for op in image.ops:
        built = _step(built, op, places)
    repo = built.add_local_dir(
        places.repo_root, REPO_DIR, copy=False, ignore=KeepOnly(places.repo_root, ".", places.repo_keep)
    )
    return repo.add_local_dir(places.bundle_dir, BUNDLE_DIR, copy=False)
