"""A docker build context as a tar stream: exactly the given files, normalised."""

from __future__ import annotations

import io
import tarfile
import tempfile
from typing import IO, Iterable

from ..ports.container_engine import ContextBytes, ContextFile, ContextItem

DOCKERFILE_NAME = ".runplz.Dockerfile"


def _info(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755 if executable else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = 0
    return info


def write_context(dockerfile: str, items: Iterable[ContextItem]) -> IO[bytes]:
    """A rewound temporary file holding the tar (Dockerfile as `DOCKERFILE_NAME`)."""
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    seen_dirs: set[str] = set()
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = dockerfile.encode()
        tar.addfile(_info(DOCKERFILE_NAME, len(data), False), io.BytesIO(data))
        for item in items:
            parts = item.arcname.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in seen_dirs:
                    seen_dirs.add(folder)
                    tar.addfile(_dir(folder))
            if isinstance(item, ContextBytes):
                tar.addfile(_info(item.arcname, len(item.data), item.executable), io.BytesIO(item.data))
            else:
                assert isinstance(item, ContextFile)
                with open(item.source, "rb") as handle:
                    handle.seek(0, 2)
                    size = handle.tell()
                    handle.seek(0)
                    tar.addfile(_info(item.arcname, size, item.executable), handle)
    spool.seek(0)
    return spool
