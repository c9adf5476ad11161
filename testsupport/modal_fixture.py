"""The ``modal_fake`` pytest fixture: a running fake Modal control plane, its
client env applied to this process (and to children started with os.environ)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .real import unavailable

MODAL_VERSION = "1.6.4"  # the client these tests are pinned to (the `dev` extra installs it)


def container_prerequisite() -> str:
    """'' when this box can run the fake's containers; else why not."""
    try:
        import modal
    except ImportError:
        return "the modal package is not installed (pip install -e '.[dev]')"
    if modal.__version__ != MODAL_VERSION:
        return f"modal {modal.__version__} installed, the fake is pinned to {MODAL_VERSION}"
    if os.geteuid() != 0:
        return "fake Modal containers need root (mount namespace + chroot)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot create a mount namespace: {probe.stderr.decode().strip()}"
    return ""


@pytest.fixture
def modal_fake(tmp_path, monkeypatch):
    reason = container_prerequisite()
    if reason:
        unavailable(reason)
    from .modal_fake import ModalFake

    with ModalFake.start(tmp_path) as running:
        for key, value in running.env.items():
            monkeypatch.setenv(key, value)
        yield running
