"""Container file layout: turn a function's image chain and mounts into files under a root dir.

What a Modal container would see, minus the base image itself:
- every image layer, base first, whose Dockerfile has `COPY` lines fed from its context mount
  (`add_local_dir(..., copy=True)`, `from_dockerfile` contexts) or inline context files;
- every mount attached to the function (`add_local_dir/add_local_file` with copy=False, the
  automount that puts a FILE-type function's script at `/root/<module>.py`).
Files are copied (never linked) so a container cannot change the fake's store.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil

from modal_proto import api_pb2

from .state import ImageRecord, State


def image_chain(state: State, image_id: str) -> list[ImageRecord]:
    """The image layers ending at `image_id`, base first."""
    chain: list[ImageRecord] = []
    seen: set[str] = set()

    def visit(iid: str) -> None:
        record = state.images.get(iid)
        if record is None or iid in seen:
            return
        seen.add(iid)
        for base in record.base_images:
            visit(base)
        chain.append(record)

    visit(image_id)
    return chain


def _context_sources(state: State, record: ImageRecord) -> dict[str, str]:
    """Context-relative path -> host file, from the layer's context mount and inline files."""
    sources: dict[str, str] = {}
    mount = state.mounts.get(record.context_mount_id) if record.context_mount_id else None
    if mount is not None:
        for name, sha in mount.files.items():
            sources[name.lstrip("/")] = os.path.join(state.root, "files", sha)
    for name, path in record.context_files.items():
        sources[name.lstrip("/")] = path
    return sources


def _copy_targets(command: str, sources: dict[str, str], workdir: str) -> list[tuple[str, str]]:
    """(container path, host file) pairs for one `COPY` line; `COPY --from=...` copies nothing."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    if len(words) < 3 or words[0].upper() not in ("COPY", "ADD"):
        return []
    args = [w for w in words[1:] if not w.startswith("--")]
    if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
        return []
    *srcs, dest = args
    dest = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    pairs: list[tuple[str, str]] = []
    for src in srcs:
        src_rel = posixpath.normpath(src.lstrip("/")) if src.strip("/") not in ("", ".") else "."
        exact = sources.get(src_rel)
        if exact is not None and src_rel != ".":
            into_dir = dest.endswith("/") or len(srcs) > 1
            target = posixpath.join(dest, posixpath.basename(src_rel)) if into_dir else dest
            pairs.append((target, exact))
            continue
        prefix = "" if src_rel == "." else src_rel + "/"
        for name, host in sources.items():
            if name.startswith(prefix):
                pairs.append((posixpath.join(dest, name[len(prefix):]), host))
    return pairs


def container_files(state: State, function_def: api_pb2.Function) -> list[tuple[str, str, int]]:
    """(container path, host file, mode) for everything the function's container should hold."""
    files: list[tuple[str, str, int]] = []
    workdir = "/"  # WORKDIR carries over from layer to layer, as in Docker
    for record in image_chain(state, function_def.image_id):
        sources = _context_sources(state, record)
        for command in record.dockerfile_commands:
            head = command.split(None, 1)
            if head and head[0].upper() == "WORKDIR" and len(head) == 2:
                workdir = posixpath.join(workdir, head[1].strip())
            for target, host in _copy_targets(command, sources, workdir):
                files.append((target, host, 0o644))
    for mount_id in sorted(function_def.mount_ids):
        mount = state.mounts.get(mount_id)
        if mount is None:
            continue
        for name, sha in mount.files.items():
            target = name if name.startswith("/") else posixpath.join("/root", name)
            files.append((target, os.path.join(state.root, "files", sha), mount.modes.get(name) or 0o644))
    return files


def workdir(state: State, function_def: api_pb2.Function) -> str:
    """The container's cwd: the last `WORKDIR` of the image chain (`Image.workdir`), else /root."""
    current = ""
    for record in image_chain(state, function_def.image_id):
        for command in record.dockerfile_commands:
            head = command.split(None, 1)
            if head and head[0].upper() == "WORKDIR" and len(head) == 2:
                current = posixpath.join(current or "/", head[1].strip())
    return current or "/root"


def materialise(root: str, files: list[tuple[str, str, int]]) -> None:
    """Copy each file to root + container path, creating directories as needed."""
    for target, host, mode in files:
        dest = os.path.join(root, target.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(host, dest)
        os.chmod(dest, (mode & 0o7777) or 0o644)
