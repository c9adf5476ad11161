"""The ``modal.Image`` chain of adapters/modal_image.py, written out as text
(``modal`` is not imported: a plan only says what the adapter would call)."""

from __future__ import annotations

from .image import AptInstall, DockerfileBase, Image, LocalDir, PipInstall, RegistryBase, RunCommands
from .layout import BUNDLE_DIR, REPO_DIR
from .modal_image_plan import local_dir_install, repo_target

KEEP_ONLY = "<keep-only: the upload's paths>"
BUNDLE = "<runplz runtime bundle>"


def _args(*values: object, **named: object) -> str:
    parts = [repr(value) for value in values]
    parts += [f"{key}={value if key == 'ignore' else repr(value)}" for key, value in named.items()]
    return ", ".join(parts)


def _local(repo_root: str, path: str) -> str:
    return repo_root if path == "." else f"{repo_root}/{path}"


def _base(image: Image, repo_root: str, add_python: str | None) -> str:
    base = image.base
    if isinstance(base, RegistryBase):
        return f"modal.Image.from_registry({_args(base.ref, add_python=add_python)})"
    if isinstance(base, DockerfileBase):
        context = _local(repo_root, base.context or ".")
        return "modal.Image.from_dockerfile(" + _args(
            _local(repo_root, base.path), context_dir=context, ignore=KEEP_ONLY, add_python=add_python
        ) + ")"
    raise TypeError(f"unknown image base {base!r}")


def _step(op: object, repo_root: str) -> list[str]:
    if isinstance(op, AptInstall):
        return [f".apt_install({_args(*op.packages)})"]
    if isinstance(op, PipInstall):
        named = {"index_url": op.index_url} if op.index_url else {}
        return [f".pip_install({_args(*op.packages, **named)})"]
    if isinstance(op, RunCommands):
        return [f".run_commands({_args(*op.commands)})"]
    if isinstance(op, LocalDir):
        local = _local(repo_root, op.path)
        return [
            f".add_local_dir({_args(local, repo_target(op.path), copy=True, ignore=KEEP_ONLY)})",
            f".run_commands({_args(local_dir_install(op.path, op.editable))})",
        ]
    raise TypeError(f"unknown image op {op!r}")


def modal_chain(image: Image, repo_root: str, add_python: str | None) -> str:
    """One call per line: the base, each step, then the repo and the bundle,
    mounted when a container starts (``copy=False``)."""
    lines = [_base(image, repo_root, add_python)]
    for op in image.ops:
        lines += ["    " + line for line in _step(op, repo_root)]
    lines.append(f"    .add_local_dir({_args(repo_root, REPO_DIR, copy=False, ignore=KEEP_ONLY)})")
    lines.append(f"    .add_local_dir({_args(BUNDLE, BUNDLE_DIR, copy=False)})")
    return "\n".join(lines) + "\n"
