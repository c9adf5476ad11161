"""The upload basis: a mirror of the last uploaded code that the next upload
compares against (stdlib only). Only a cache: on any error it goes away."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat


def mirror(source: str, dest: str) -> bool:
    """Make ``dest`` a copy of ``source``, copying only what changed (size or
    mtime), links as links, deleting what is gone; under ``dest + ".lock"``.
    On any error (a full disk included) removes the half-made copy; whether it worked."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        with open(dest + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _sync(source, dest)
                return True
            except Exception:
                remove(dest)
    except Exception:
        pass
    return False


def _sync(source: str, dest: str) -> None:
    if os.path.islink(dest) or (os.path.lexists(dest) and not os.path.isdir(dest)):
        os.unlink(dest)
    os.makedirs(dest, exist_ok=True)
    names = set(os.listdir(source))
    for name in set(os.listdir(dest)) - names:
        remove(os.path.join(dest, name))
    for name in sorted(names):
        src, dst = os.path.join(source, name), os.path.join(dest, name)
        have = os.lstat(src)
        try:
            old = os.lstat(dst)
        except FileNotFoundError:
            old = None
        if stat.S_ISDIR(have.st_mode):
            _sync(src, dst)
        elif stat.S_ISLNK(have.st_mode):
            target = os.readlink(src)
            if old is None or not stat.S_ISLNK(old.st_mode) or os.readlink(dst) != target:
                remove(dst)
                os.symlink(target, dst)
        elif stat.S_ISREG(have.st_mode):
            same = old is not None and stat.S_ISREG(old.st_mode) and (
                (old.st_size, old.st_mtime_ns) == (have.st_size, have.st_mtime_ns)
            )
            if not same:
                remove(dst)
                shutil.copy2(src, dst)


def remove(path: str) -> None:
    """Remove a file, a link (not what it points to) or a tree, read-only folders included."""
    if os.path.isdir(path) and not os.path.islink(path):
        rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def rmtree(path: str) -> None:
    def writable(folder: str) -> None:
        try:
            os.chmod(folder, 0o700)
        except OSError:
            pass

    writable(path)
    for folder, dirs, _ in os.walk(path):
        for name in dirs:
            if not os.path.islink(os.path.join(folder, name)):
                writable(os.path.join(folder, name))
    shutil.rmtree(path, ignore_errors=True)
