"""Container launcher: runs as root inside a fresh private mount namespace (`unshare -m`).

Usage: python -I -S launcher.py SPEC.json. It bind-mounts the host pieces the container needs
(system dirs and the Python runtime, read-only) into the container root, hides the files named in
`hide` (the developer's editable-install hooks) behind an empty file, chroots, and execs Modal's
own container entrypoint with the given env. Standalone on purpose: it imports nothing from the
fake, so it runs with `-I -S` (no site-packages, no cwd on sys.path).
"""

import ctypes
import json
import os
import sys

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source, target, flags):
    if _libc.mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")


def _prepare(target, is_dir):
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "a").close()


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    root = spec["root"]
    _mount(None, "/", MS_REC | MS_PRIVATE)  # belt and braces: nothing we mount leaks to the host
    for link, dest in spec["symlinks"]:
        path = os.path.join(root, link.lstrip("/"))
        if not os.path.lexists(path):
            os.symlink(dest, path)
    for source, target, read_only in spec["binds"]:
        inside = os.path.join(root, target.lstrip("/"))
        _prepare(inside, os.path.isdir(source))
        _mount(source, inside, MS_BIND | MS_REC)
        if read_only:
            _mount(None, inside, MS_BIND | MS_REMOUNT | MS_RDONLY)
    empty = spec["empty_file"]  # outside the root, so the container never sees it
    for target in spec["hide"]:
        inside = os.path.join(root, target.lstrip("/"))
        if os.path.exists(inside):
            _mount(empty, inside, MS_BIND)
    os.chroot(root)
    os.chdir(spec["cwd"])
    argv = spec["argv"]
    os.execve(argv[0], argv, spec["env"])


if __name__ == "__main__":
    main(sys.argv[1])
