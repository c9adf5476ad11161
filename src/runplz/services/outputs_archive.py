"""Unpack the outputs archive Modal sends back (a gzip'd tar) into the outputs folder.

Nothing lands outside that folder: every member is judged by
`domain.outputs_limits.member_verdict` (and, where Python has it, by tarfile's
own ``data`` filter too) before anything is written, and writing walks the
folder one segment at a time with ``O_NOFOLLOW``, so a link already in the
folder is never followed. Needs a POSIX system (``dir_fd`` support).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tarfile
import zlib
from typing import BinaryIO, Iterator

import attrs

from ..domain.outputs_limits import (
    BLOCKDEV, CHARDEV, DIR, FIFO, FILE, HARDLINK, OTHER, SYMLINK,
    DamagedOutputs, check_archive_size, member_parts, member_verdict,
)

CHUNK = 1 << 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@attrs.frozen
class ExtractReport:
    """What one unpacking did: regular files (hard links included) and their
    bytes written, the refused members as (member name, reason), and the size
    warning (`check_archive_size`'s text) when the archive was big."""

    files: int = 0
    bytes: int = 0
    refused: tuple[tuple[str, str], ...] = ()
    warning: str | None = None


class _Inflating:
    """A gzip stream read as the bytes it holds; one cut short raises EOFError."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self._z, self._buf, self._ended = raw, zlib.decompressobj(31), b"", False

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buf) < size) and not self._ended:
            self._fill()
        size = len(self._buf) if size < 0 else size
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def _fill(self) -> None:
        data = self._z.unconsumed_tail or self._raw.read(CHUNK)
        if data and not self._z.eof:
            self._buf += self._z.decompress(data, CHUNK)
            return
        if not self._z.eof:
            self._buf += self._z.flush()
        if not self._z.eof:
            raise EOFError("cut short before the end of its gzip stream")
        self._ended = True  # bytes after the gzip stream are ignored


@contextlib.contextmanager
def _opened(archive: bytes | str) -> Iterator[tuple[BinaryIO, int, str | None]]:
    if isinstance(archive, (bytes, bytearray, memoryview)):
        yield io.BytesIO(archive), len(archive), None
        return
    with open(archive, "rb") as raw:
        yield raw, os.fstat(raw.fileno()).st_size, str(archive)


def _plain(raw: BinaryIO) -> BinaryIO | _Inflating:
    head = raw.read(2)
    raw.seek(0)
    return _Inflating(raw) if head == b"\x1f\x8b" else raw


def _kind(member: tarfile.TarInfo) -> str:
    for test, kind in ((member.isreg, FILE), (member.isdir, DIR), (member.issym, SYMLINK),
                       (member.islnk, HARDLINK), (member.ischr, CHARDEV),
                       (member.isblk, BLOCKDEV), (member.isfifo, FIFO)):
        if test():
            return kind
    return OTHER


class _Refused(Exception):
    """A member cannot be placed; its one argument is the reason."""


def _obstacle(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _enter(fd: int, name: str) -> int:
    """The folder ``name`` inside ``fd``, opened without following a link."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError:
        found = _obstacle(fd, name)
        if found and stat.S_ISLNK(found.st_mode):
            raise _Refused("it goes through a link already in the outputs folder") from None
        if found and not stat.S_ISDIR(found.st_mode):
            raise _Refused(f"a file is in the way at {name!r}") from None
        raise


@contextlib.contextmanager
def _folder(root: int, parts: tuple[str, ...], create: bool = True) -> Iterator[int]:
    """The folder of ``parts`` under ``root``, made (0o755 less umask) when missing."""
    fd = os.dup(root)
    try:
        for part in parts:
            if create and _obstacle(fd, part) is None:
                os.mkdir(part, 0o755, dir_fd=fd)
            inner = _enter(fd, part)
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _clear(fd: int, leaf: str) -> None:
    """Remove whatever non-folder is at ``leaf`` (a link itself, never its target)."""
    found = _obstacle(fd, leaf)
    if found and stat.S_ISDIR(found.st_mode):
        raise _Refused("a folder is in the way")
    if found:
        os.unlink(leaf, dir_fd=fd)


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int, leaf: str) -> int:
    """The regular file ``member`` written at ``leaf``; a partial file is removed."""
    _clear(fd, leaf)
    source = tar.extractfile(member) or io.BytesIO()
    written = 0
    with os.fdopen(os.open(leaf, _NEW_FILE, 0o600, dir_fd=fd), "wb") as out:
        try:
            while chunk := source.read(CHUNK):
                written += out.write(chunk)
            out.flush()
            os.fchmod(out.fileno(), (member.mode & 0o755) | 0o600)  # no setuid/setgid/sticky/group-other write
            with contextlib.suppress(OverflowError, ValueError, OSError):
                os.utime(out.fileno(), (member.mtime, member.mtime))
        except BaseException:
            os.unlink(leaf, dir_fd=fd)
            raise
    return written


def _place(tar: tarfile.TarFile, member: tarfile.TarInfo, kind: str, root: int) -> int:
    """Put one judged-safe member under ``root``; the bytes written."""
    parts = member_parts(member.name)
    if ".." in parts or (kind == HARDLINK and ".." in member_parts(member.linkname)):
        raise _Refused("'..' in the path")  # belt and braces: member_verdict refused it already
    if not parts:
        return 0  # '.', the outputs folder itself
    with _folder(root, parts[:-1]) as fd:
        leaf = parts[-1]
        if kind == FILE:
            return _write(tar, member, fd, leaf)
        if kind == DIR:
            created = _obstacle(fd, leaf) is None
            with _folder(fd, (leaf,)) as inner:
                if created:
                    os.fchmod(inner, (member.mode & 0o755) | 0o700)
        elif kind == SYMLINK:
            _clear(fd, leaf)
            os.symlink(member.linkname, leaf, dir_fd=fd)
        else:  # HARDLINK to an earlier regular file of this archive
            source = member_parts(member.linkname)
            with _folder(root, source[:-1], create=False) as source_fd:
                _clear(fd, leaf)
                os.link(source[-1], leaf, src_dir_fd=source_fd, dst_dir_fd=fd, follow_symlinks=False)
    return 0


def _stdlib_verdict(member: tarfile.TarInfo, dest: str) -> str | None:
    data_filter = getattr(tarfile, "data_filter", None)  # Python 3.11.4+
    if data_filter is None:
        return None
    try:
        data_filter(member, dest)
    except tarfile.FilterError as exc:
        return f"refused by tarfile's data filter: {exc}"
    return None


def _under_refused_link(name: str, refused_links: set[str]) -> bool:
    parts = member_parts(name)
    return any("/".join(parts[:i]) in refused_links for i in range(1, len(parts)))


class _Unpacking:
    """The running tally of one unpacking."""

    def __init__(self, tar: tarfile.TarFile, root: int, dest: str) -> None:
        self.tar, self.root, self.dest = tar, root, dest
        self.files = self.bytes = 0
        self.refused: list[tuple[str, str]] = []
        self.earlier_files: set[str] = set()
        self.refused_links: set[str] = set()

    def take(self, member: tarfile.TarInfo) -> None:
        kind, path = _kind(member), "/".join(member_parts(member.name))
        target = member.linkname if kind in (SYMLINK, HARDLINK) else None
        reason = member_verdict(member.name, kind, target, earlier_files=self.earlier_files)
        if reason is None and _under_refused_link(member.name, self.refused_links):
            reason = "it is inside a link that was refused"
        reason = reason or _stdlib_verdict(member, self.dest)
        if reason is None:
            self.earlier_files.discard(path)
            try:
                self.bytes += _place(self.tar, member, kind, self.root)
            except _Refused as refusal:
                reason = str(refusal)
            except OSError as exc:
                if exc.errno in _DISK_FULL:
                    raise
                reason = f"could not write it: {exc.strerror or exc}"
        if reason is not None:
            self.refused.append((member.name, reason))
            if kind in (SYMLINK, HARDLINK):
                self.refused_links.add(path)
            return
        self.files += kind in (FILE, HARDLINK)
        if kind == FILE:
            self.earlier_files.add(path)


def extract_outputs(archive: bytes | str, dest: str) -> ExtractReport:
    """Unpack ``archive`` (the bytes, or the path of a saved archive; gzip'd or
    plain tar) into the folder ``dest``, made when missing.

    First checks the size (`check_archive_size`): from REFUSE_BYTES on it raises
    `OutputsTooLarge` before writing anything (naming ``archive`` when it is a
    path, so the raw archive is known to be kept); the warning text from
    WARN_BYTES on comes back in `ExtractReport.warning`, for the caller to print.
    Then reads the archive as a stream, once. Unsafe members are skipped and
    listed in `ExtractReport.refused`; the rest still land. Only regular files,
    folders and links that stay inside ``dest`` are made; modes lose setuid,
    setgid, sticky and group/other write; files belong to the current user.
    A corrupt or truncated archive raises `DamagedOutputs` after keeping the
    members unpacked before the damage (a file cut short is removed).
    A full disk raises the `OSError`.
    """
    with _opened(archive) as (raw, size, kept_at):
        warning = check_archive_size(size, kept_at)
        os.makedirs(dest, exist_ok=True)
        root = os.open(dest, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        tally = None
        try:
            stream = _plain(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                tally = _Unpacking(tar, root, os.path.realpath(dest))
                for member in tar:
                    tally.take(member)
            while stream.read(CHUNK):
                pass  # the rest, so a gzip stream cut after the tar's end is noticed too
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            kept = f"{tally.files} file(s)" if tally else "nothing"
            raise DamagedOutputs(
                f"the outputs archive is damaged or truncated ({exc or type(exc).__name__}); "
                f"kept {kept} unpacked before the damage in {dest}"
            ) from None
        finally:
            os.close(root)
    return ExtractReport(tally.files, tally.bytes, tuple(tally.refused), warning)
