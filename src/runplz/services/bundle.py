"""The runtime bundle: this exact runplz plus its pure-Python needs, for the target.

Layout: ``runplz_boot.py``, ``lib/runplz/...``, ``deps/<attrs, cattrs, ...>``.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import py_compile
import shutil
import tempfile

import attrs

from ..domain.hashing import FileEntry, digest, tree_digest
from ..domain.layout import BOOT_SCRIPT

DEPENDENCIES = ("attr", "attrs", "cattrs", "typing_extensions", "exceptiongroup")


@attrs.frozen
class BundleFile:
    path: str  # '/'-separated, relative to the bundle root
    source: str
    executable: bool = False


def _walk(top: str, prefix: str) -> list[BundleFile]:
    found = []
    for folder, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(folder, top).replace(os.sep, "/")
        base = prefix if rel == "." else f"{prefix}/{rel}"
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            found.append(BundleFile(f"{base}/{name}", os.path.join(folder, name)))
    return found


def _locate(module: str) -> list[BundleFile]:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return []
    if spec.submodule_search_locations:
        return _walk(os.path.dirname(spec.origin), f"deps/{module}")
    return [BundleFile(f"deps/{os.path.basename(spec.origin)}", spec.origin)]


class RuntimeBundle:
    """Collects the bundle's files once and materialises it in the cache."""

    def __init__(self, cache_dir: str) -> None:
        self._cache_dir = cache_dir
        self._files: tuple[BundleFile, ...] | None = None
        self._digest: str | None = None

    def files(self) -> tuple[BundleFile, ...]:
        if self._files is None:
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            found = _walk(package, "lib/runplz")
            boot = os.path.join(package, "runtime", "boot.py")
            found.append(BundleFile(BOOT_SCRIPT, boot))
            for module in DEPENDENCIES:
                found += _locate(module)
            self._files = tuple(sorted(found, key=lambda f: f.path))
        return self._files

    def digest(self) -> str:
        if self._digest is None:
            entries = []
            for f in self.files():
                with open(f.source, "rb") as handle:
                    entries.append(FileEntry(f.path, False, digest(handle.read()), 0))
            self._digest = tree_digest(entries)
        return self._digest

    def materialize(self) -> str:
        """The bundle as a folder (made once per content digest), bytecode included.

        The bytecode is hash-based and unchecked: the folder never changes, and
        targets that cannot write ``__pycache__`` still start fast.
        """
        target = os.path.join(self._cache_dir, "bundles", self.digest()[:24])
        if os.path.isdir(target):
            return target
        os.makedirs(os.path.dirname(target), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".bundle-", dir=os.path.dirname(target))
        try:
            for f in self.files():
                dest = os.path.join(staging, *f.path.split("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(f.source, dest)
            compileall.compile_dir(
                staging, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
            os.chmod(staging, 0o755)
            os.replace(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not os.path.isdir(target):
                raise
        return target

    def materialized_files(self) -> tuple[BundleFile, ...]:
        """The materialised folder's files (sources and bytecode)."""
        root = self.materialize()
        found = []
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            for name in sorted(names):
                path = name if rel == "." else f"{rel}/{name}"
                found.append(BundleFile(path, os.path.join(folder, name)))
        return tuple(found)
