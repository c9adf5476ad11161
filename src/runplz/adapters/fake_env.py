"""A `PythonEnvBuilder` that makes no venv.

Its "environment" is a small launcher that runs the base interpreter without
site-packages (``-S``), with local wheels unpacked and local folders on its
path. Requirements from an index cannot be installed offline: they raise
`BuildError`, unless ``pretend_index=True`` records them and carries on.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import weakref
import zipfile
from typing import Callable

from ..domain.errors import BuildError
from ..ports.python_env import EnvRequest, PythonEnv


class FakePythonEnvBuilder:
    def __init__(self, root: str | None = None, *, pretend_index: bool = False) -> None:
        if root is None:
            root = tempfile.mkdtemp(prefix="runplz-fake-envs-")
            weakref.finalize(self, shutil.rmtree, root, True)
        self._root = root
        self._pretend_index = pretend_index
        self.requests: list[EnvRequest] = []
        self.index_packages: list[str] = []

    def _entries(self, request: EnvRequest, site: str) -> list[str]:
        paths = [site]
        for step in request.steps:
            for package in step.packages:
                if package.endswith(".whl") and os.path.isfile(package):
                    with zipfile.ZipFile(package) as wheel:
                        wheel.extractall(site)
                elif os.path.isdir(package):
                    src = os.path.join(package, "src")
                    paths.append(src if os.path.isdir(src) else package)
                elif self._pretend_index:
                    self.index_packages.append(package)
                else:
                    raise BuildError(f"installing {package} failed: the fake env builder is offline")
        return paths

    def ensure(self, request: EnvRequest, on_line: Callable[[str], None] | None = None) -> PythonEnv:
        self.requests.append(request)
        folder = os.path.join(self._root, request.key[:24])
        launcher = os.path.join(folder, "bin", "python")
        if os.path.exists(launcher):
            return PythonEnv(launcher, False)
        os.makedirs(self._root, exist_ok=True)
        staging = tempfile.mkdtemp(dir=self._root)
        try:
            site = os.path.join(folder, "site")
            os.makedirs(os.path.join(staging, "site"))
            paths = self._entries(request, os.path.join(staging, "site"))
            os.makedirs(os.path.join(staging, "bin"))
            script = (
                "#!/bin/sh\n"
                f"PYTHONPATH={shlex.quote(os.pathsep.join([site, *paths[1:]]))}"
                '${PYTHONPATH:+:$PYTHONPATH} '
                f"exec {shlex.quote(request.python)} -S \"$@\"\n"
            )
            with open(os.path.join(staging, "bin", "python"), "w") as handle:
                handle.write(script)
            os.chmod(os.path.join(staging, "bin", "python"), 0o755)
            os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return PythonEnv(launcher, True)
