"""A docker build context as a tar stream: exactly the given items, normalised.

Links go in as links (their target text, never the target's bytes), folders
as folders (empty ones too); a file that turned into a link since it was
listed is refused.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from typing import IO, BinaryIO, Iterable

from ..domain.errors import BuildError
from ..ports.container_engine import ContextBytes, ContextFile, ContextFolder, ContextItem, ContextLink

DOCKERFILE_NAME = ".runplz.Dockerfile"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _normalised(info: tarfile.TarInfo, mode: int) -> tarfile.TarInfo:
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _info(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return _normalised(info, 0o755 if executable else 0o644)


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return _normalised(info, 0o755)


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return _normalised(info, 0o777)


def open_regular(source: str, arcname: str) -> BinaryIO:
    """``source`` opened for reading, refusing anything but a regular file (a link above all)."""
    try:
        fd = os.open(source, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise BuildError(f"cannot read {arcname} for the build context: {exc.strerror}") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise BuildError(f"{arcname} is no longer a regular file; not putting it in the build context")
    return handle


def write_context(dockerfile: str, items: Iterable[ContextItem]) -> IO[bytes]:
    """A rewound temporary file holding the tar (Dockerfile as `DOCKERFILE_NAME`)."""
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    seen_dirs: set[str] = set()

    def folder(tar: tarfile.TarFile, name: str) -> None:
        if name not in seen_dirs:
            seen_dirs.add(name)
            tar.addfile(_dir(name))

    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = dockerfile.encode()
        tar.addfile(_info(DOCKERFILE_NAME, len(data), False), io.BytesIO(data))
        for item in items:
            parts = item.arcname.split("/")
            for depth in range(1, len(parts)):
                folder(tar, "/".join(parts[:depth]))
            if isinstance(item, ContextFolder):
                folder(tar, item.arcname)
            elif isinstance(item, ContextLink):
                tar.addfile(_link(item.arcname, item.target))
            elif isinstance(item, ContextBytes):
                tar.addfile(_info(item.arcname, len(item.data), item.executable), io.BytesIO(item.data))
            else:
                assert isinstance(item, ContextFile)
                with open_regular(item.source, item.arcname) as handle:
                    size = os.fstat(handle.fileno()).st_size
                    tar.addfile(_info(item.arcname, size, item.executable), handle)
    spool.seek(0)
    return spool
