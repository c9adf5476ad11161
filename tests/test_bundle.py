"""The runtime bundle: this runplz plus its pure-Python needs, for any target."""

from __future__ import annotations

import os
import subprocess
import sys

from runplz.services.bundle import RuntimeBundle


def test_bundle_carries_runplz_and_its_runtime_needs(tmp_path):
    bundle = RuntimeBundle(str(tmp_path))
    paths = {f.path for f in bundle.files()}
    assert "runplz_boot.py" in paths
    assert "lib/runplz/runtime/entry.py" in paths and "lib/runplz/protocol/wire.py" in paths
    for dependency in ("attr/__init__.py", "attrs/__init__.py", "cattrs/__init__.py",
                       "typing_extensions.py", "exceptiongroup/__init__.py"):
        assert f"deps/{dependency}" in paths, dependency
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)


def test_materialize_is_content_addressed_and_precompiled(tmp_path):
    bundle = RuntimeBundle(str(tmp_path))
    first = bundle.materialize()
    assert RuntimeBundle(str(tmp_path)).materialize() == first
    assert os.path.basename(first) == bundle.digest()[:24]
    assert any(f.path.endswith(".pyc") for f in bundle.materialized_files())


def test_the_bundle_runs_on_a_bare_interpreter(tmp_path):
    """-S: no site-packages at all, so nothing but the bundle can satisfy imports."""
    root = RuntimeBundle(str(tmp_path)).materialize()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1] + '/lib'); sys.path.append(sys.argv[1] + '/deps');"
        "import runplz.runtime.entry, runplz.protocol.wire, runplz.app;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'dependency_injector')))"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code, root], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
