"""What goes up before a run: the repo selection's warnings, the bundle's atomic arrival."""

from __future__ import annotations

import os

from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.services.remote_upload import Uploader
from runplz.services.tree import TreeScanner

from .jobs import make_repo


def uploader(tmp_path):
    transport = LocalTransport(SubprocessRunner(), str(tmp_path / "box"))
    transport.connect()
    console = RecordingConsole()
    return Uploader(transport, TreeScanner(), console), transport, console


def test_a_big_upload_names_its_largest_folders_and_points_at_runplzignore(tmp_path):
    script = make_repo(tmp_path / "repo")
    data = script.parent / "data"
    data.mkdir()
    with open(data / "shard.bin", "wb") as handle:
        handle.truncate(101 << 20)  # sparse: big to the scan, cheap on disk
    up, _, console = uploader(tmp_path)
    up.select(str(script.parent), frozenset())
    (warning,) = console.warnings
    assert "101.0 MB" in warning and "data (101.0 MB)" in warning and ".runplzignore" in warning
    (script.parent / ".runplzignore").write_text("data/\n")
    console.events.clear()
    chosen = up.select(str(script.parent), frozenset())
    assert not console.warnings and "data" not in chosen.paths()


def test_links_left_out_are_named(tmp_path):
    script = make_repo(tmp_path / "repo", files={".env": "SECRET=1\n"})
    (script.parent / "settings_alias").symlink_to(".env")
    (script.parent / "creds").symlink_to("/etc/hostname")
    up, _, console = uploader(tmp_path)
    chosen = up.select(str(script.parent), frozenset())
    assert {path for path, _ in chosen.dropped} == {"settings_alias", "creds"}
    assert sum("not uploading the link" in w for w in console.warnings) == 2


def test_the_bundle_arrives_whole_or_not_at_all(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "runplz_boot.py").write_text("print('boot')\n")
    up, transport, _ = uploader(tmp_path)
    up.bundle(str(bundle), ".runplz/bundles/abc", "run1")
    (bundle / "runplz_boot.py").write_text("print('other')\n")
    up.bundle(str(bundle), ".runplz/bundles/abc", "run2")  # a later upload of the same name loses quietly
    box = tmp_path / "box" / ".runplz" / "bundles"
    assert sorted(os.listdir(box)) == ["abc"]
    assert (box / "abc" / "runplz_boot.py").read_text() == "print('boot')\n"


def test_a_remote_venv_on_a_full_disk_says_so():
    import json

    import pytest

    from runplz.adapters.fake_transport import FakeTransport
    from runplz.adapters.remote_venv import RemoteVenvBuilder
    from runplz.domain.errors import NoSpaceLeft
    from runplz.domain.remote_layout import ENV_MARK
    from runplz.ports.python_env import EnvRequest, PipStep

    def agent(inv) -> int:
        inv.out("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device")
        inv.out(ENV_MARK + json.dumps({"error": "no space left on device", "nospace": True, "free_kb": 3 * 1024}))
        return 1

    transport = FakeTransport({"python3": agent}, name="gpu-box")
    transport.connect()
    builder = RemoteVenvBuilder(transport, "b/runplz_boot.py")
    with pytest.raises(NoSpaceLeft, match=r"no space left on gpu-box \(3 MB free in ~/.runplz\) while making the environment"):
        builder.ensure(EnvRequest("k" * 24, "python3", (PipStep(("torch",)),)))
