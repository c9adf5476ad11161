"""The modal backend's logic with the shipped FakeModal (no modal client, no network)."""

from __future__ import annotations

import io
import time
import tarfile

import pytest

from runplz import RemoteError
from runplz.domain.errors import ConfigError, RunTimeout, ServiceAuthError, ServiceUnreachable
from runplz.loader import load_app
from runplz.ports.serverless import ServerlessOutcome
from runplz.testing import FakeModal, ModalFaults, fake_container

from .jobs import BASIC, make_repo

SECRETS = {".env": "SECRET=1\n", "keys/id_rsa": "k", "data/in.txt": "d"}


def bound(script, tmp_path, platform=None, modal_config=None):
    module, app = load_app(str(script))
    if modal_config is not None:
        app.modal_config = modal_config
    platform = platform or FakeModal()
    container = fake_container(str(tmp_path / "cache"), modal_platform=platform)
    app.bind("modal", outputs_dir=str(tmp_path / "out"), container=container)
    return module, platform, container


def job_with(tmp_path, decoration: str, body: str = "return 1", image: str = "Image.from_registry('python:3.11-slim')"):
    return make_repo(tmp_path / "repo", f'''
        import os, sys, time
        from runplz import App, Image
        app = App("shapes")
        @app.function(image={image}, {decoration})
        def main():
            {body}
    ''', files=SECRETS)


def test_value_env_outputs_and_only_kept_files(tmp_path):
    script = make_repo(tmp_path / "repo", BASIC, files=SECRETS)
    module, platform, _ = bound(script, tmp_path)
    assert module.work.remote(3, label="héllo") == {
        "steps": 3, "label": "héllo", "greeting": "hi there", "cwd_has_script": True, "tuple": [1, 2]
    }
    assert (tmp_path / "out" / "result.txt").read_text() == "héllo:3"
    (job,) = platform.jobs
    assert {".env", "keys/id_rsa"}.isdisjoint(job.repo_keep) and "data/in.txt" in job.repo_keep
    assert (job.app, job.function, dict(job.env)) == ("basic", "work", {"GREETING": "hi there"})
    assert job.resources.timeout == 300 and job.deadline == 270.0


def test_a_remote_exception_and_an_exit_code_come_back(tmp_path):
    script = make_repo(tmp_path / "repo", BASIC)
    module, _, _ = bound(script, tmp_path)
    with pytest.raises(RemoteError) as caught:
        module.work.remote(label="oops", fail=True)
    assert (caught.value.remote_type, caught.value.exit_code) == ("ValueError", 1)
    assert (tmp_path / "out" / "result.txt").read_text() == "oops:1"
    with pytest.raises(RemoteError) as caught:
        module.work.remote(code=7)
    assert caught.value.exit_code == 7


@pytest.mark.parametrize(
    "decoration, needle",
    [
        ("min_disk=100", "Volume"),
        ("gpu='T4-16GB'", "T4-16GB"),
        ("gpu='BOGUS', num_gpus=2", "BOGUS"),
        ("gpu='A10', num_gpus=8", "A10"),
        ("timeout=90000", "timeout"),
    ],
)
def test_mistakes_are_refused_before_any_call(tmp_path, decoration, needle):
    module, platform, _ = bound(job_with(tmp_path, decoration), tmp_path)
    with pytest.raises(ConfigError, match=needle):
        module.main.remote()
    assert platform.jobs == []


def test_min_disk_is_a_value_error_as_the_seed_promised(tmp_path):
    module, _, _ = bound(job_with(tmp_path, "min_disk=10"), tmp_path)
    with pytest.raises(ValueError):
        module.main.remote()


def test_resources_reach_the_platform(tmp_path):
    module, platform, _ = bound(
        job_with(tmp_path, "gpu='a100', min_gpu_memory=80, num_gpus=4, min_cpu=4, min_memory=16, timeout=600"),
        tmp_path,
    )
    module.main.remote()
    res = platform.jobs[0].resources
    assert (res.gpu, res.cpu, res.memory_mib, res.timeout) == ("A100-80GB:4", 4.0, 16384, 600)


@pytest.mark.parametrize(
    "image, config, expected",
    [
        ("Image.from_registry('ubuntu:22.04')", None, "auto"),
        ("Image.from_registry('python:3.11-slim')", None, None),
        ("Image.from_registry('ubuntu:22.04')", "none", None),
        ("Image.from_registry('python:3.11-slim')", "3.12", "3.12"),
    ],
)
def test_python_is_added_where_the_base_has_none(tmp_path, image, config, expected):
    from runplz.domain.config import ModalConfig

    script = job_with(tmp_path, "timeout=60", image=image)
    module, platform, _ = bound(script, tmp_path, modal_config=ModalConfig(add_python=config) if config else None)
    module.main.remote()
    import sys

    want = f"{sys.version_info.major}.{sys.version_info.minor}" if expected == "auto" else expected
    assert platform.jobs[0].add_python == want


def test_past_the_deadline_outputs_come_back_and_run_timeout_is_raised(tmp_path):
    body = "open(os.path.join(os.environ['RUNPLZ_OUT'], 'early.txt'), 'w').write('x'); time.sleep(60)"
    module, _, _ = bound(job_with(tmp_path, "timeout=2", body), tmp_path)
    with pytest.raises(RunTimeout, match="timeout of 2s"):
        module.main.remote()
    assert (tmp_path / "out" / "early.txt").read_text() == "x"


@pytest.mark.parametrize(
    "faults, error", [(ModalFaults(unreachable=True), ServiceUnreachable), (ModalFaults(unauthenticated=True), ServiceAuthError)]
)
def test_platform_failures_are_runplz_errors(tmp_path, faults, error):
    module, _, _ = bound(job_with(tmp_path, "timeout=60"), tmp_path, platform=FakeModal(faults))
    with pytest.raises(error):
        module.main.remote()


class Scripted:
    """A platform that answers every job with a prepared archive and, when
    given, the returned ``value`` as the job's own result record."""

    def __init__(self, outputs: bytes, value=None) -> None:
        self.outputs, self.value = outputs, value

    def run(self, job):
        from runplz.domain.payload import PROTOCOL, Result, Returned
        from runplz.protocol.wire import decode_dispatch, encode_result

        run = decode_dispatch(job.payload).run_id
        result = None if self.value is None else encode_result(Result(PROTOCOL, run, Returned(self.value)))
        return ServerlessOutcome(0, result, self.outputs)


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_escaping_members_are_left_out_with_a_warning(tmp_path):
    platform = Scripted(_archive({"good.txt": b"ok", "../evil.txt": b"no"}), value=5)
    module, _, container = bound(job_with(tmp_path, "timeout=60"), tmp_path, platform=platform)
    assert module.main.remote() == 5
    assert (tmp_path / "out" / "good.txt").read_bytes() == b"ok"
    assert not (tmp_path / "evil.txt").exists()
    assert any("../evil.txt" in line for line in container.console().warnings)


def test_an_oversize_archive_is_kept_whole_and_refused_before_extracting(tmp_path):
    from runplz.domain.outputs_limits import REFUSE_BYTES

    module, _, _ = bound(job_with(tmp_path, "timeout=60"), tmp_path, platform=Scripted(b"\0" * REFUSE_BYTES))
    with pytest.raises(RuntimeError, match="256") as caught:
        module.main.remote()
    kept = [p for p in (tmp_path / "out").iterdir()]
    assert len(kept) == 1 and kept[0].name.startswith("runplz-outputs-") and kept[0].stat().st_size == REFUSE_BYTES
    assert str(kept[0]) in str(caught.value)


def test_the_container_entry_uses_the_layout_of_every_backend():
    from runplz.domain import layout, remote_layout
    from runplz.runtime import runplz_modal_entry

    assert (runplz_modal_entry.REPO_DIR, runplz_modal_entry.BUNDLE_DIR, runplz_modal_entry.OUT_DIR) == (
        layout.REPO_DIR, layout.BUNDLE_DIR, layout.OUT_DIR
    )
    assert (runplz_modal_entry.BOOT_SCRIPT, runplz_modal_entry.PAYLOAD_FILE, runplz_modal_entry.RESULT_FILE) == (
        layout.BOOT_SCRIPT, layout.PAYLOAD_FILE, layout.RESULT_FILE
    )
    assert runplz_modal_entry.EXIT_TIMED_OUT == remote_layout.EXIT_TIMED_OUT


@pytest.mark.parametrize("timeout", [1, 2, 10, 30, 99, 100, 3600, 86400])
def test_the_deadline_leaves_time_to_stop_the_job_and_pack(timeout):
    from runplz.domain.limits import modal_deadline, modal_grace

    deadline, grace = modal_deadline(timeout), modal_grace(timeout)
    assert 0 < deadline < timeout and deadline >= timeout / 2
    assert 0 < grace <= 10 and deadline + grace < timeout


@pytest.mark.parametrize("timeout", [1, 2])
def test_a_job_that_ignores_sigterm_is_still_stopped_before_modal_would(tmp_path, timeout):
    body = (
        "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "            open(os.path.join(os.environ['RUNPLZ_OUT'], 'early.txt'), 'w').write('x'); time.sleep(60)"
    )
    module, _, _ = bound(job_with(tmp_path, f"timeout={timeout}", body), tmp_path)
    started = time.monotonic()
    with pytest.raises(RunTimeout):
        module.main.remote()
    assert time.monotonic() - started < timeout + 5
    assert (tmp_path / "out" / "early.txt").read_text() == "x"


def test_a_link_to_a_folder_is_left_out_with_a_warning(tmp_path):
    script = job_with(tmp_path, "timeout=60", "return sorted(os.listdir('.'))")
    (script.parent / "pkg").mkdir()
    (script.parent / "pkg" / "a.txt").write_text("a")
    (script.parent / "pkglink").symlink_to("pkg")
    module, platform, container = bound(script, tmp_path)
    assert "pkglink" not in module.main.remote()
    assert any("pkglink" in line and "link to a folder" in line for line in container.console().warnings)


def test_an_explicit_python_version_applies_to_a_dockerfile_image_too(tmp_path):
    from runplz.domain.config import ModalConfig

    script = job_with(tmp_path, "timeout=60", image="Image.from_dockerfile('Dockerfile')")
    (script.parent / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    module, platform, _ = bound(script, tmp_path, modal_config=ModalConfig(add_python="3.12"))
    module.main.remote()
    assert platform.jobs[0].add_python == "3.12"
    module, platform, _ = bound(script, tmp_path)
    module.main.remote()
    assert platform.jobs[0].add_python is None


def test_a_modal_outside_the_supported_range_is_one_line(monkeypatch):
    import modal

    from runplz.adapters.modal_platform import import_modal
    from runplz.domain.errors import MissingExtra

    monkeypatch.setattr(modal, "__version__", "0.73.1")
    with pytest.raises(MissingExtra, match=r"modal 0.73.1 is installed; runplz needs modal>=1.1,<2"):
        import_modal()
    monkeypatch.setattr(modal, "__version__", "1.6.4")
    assert import_modal() is modal


def test_permission_denied_is_not_called_a_credentials_problem():
    import modal

    from runplz.adapters.modal_platform import translate
    from runplz.domain.errors import ServiceAuthError, ServiceError

    job = type("Job", (), {"function": "f", "resources": type("R", (), {"timeout": 5})()})()
    mapped = translate(modal.exception.PermissionDeniedError("no GPU access on this plan"), modal, job)
    assert isinstance(mapped, ServiceError) and not isinstance(mapped, ServiceAuthError)
    assert "no GPU access" in str(mapped)


def test_each_input_in_a_warm_container_starts_with_an_empty_outputs_folder(tmp_path):
    """Modal hands the next input of a map to a warm container: what an earlier
    input wrote to /out must not travel home again in this input's archive."""
    import io
    import sys
    import tarfile

    from runplz.runtime import runplz_modal_entry

    bundle, repo, out = tmp_path / "bundle", tmp_path / "repo", tmp_path / "out"
    bundle.mkdir(), repo.mkdir(), out.mkdir()
    (out / "from-the-last-input.txt").write_text("old")
    (bundle / runplz_modal_entry.BOOT_SCRIPT).write_text(
        "import os, sys\nopen(os.path.join(os.environ['RUNPLZ_OUT'], 'mine.txt'), 'w').write('new')\n"
    )
    reply = runplz_modal_entry.execute("{}", 0, str(repo), str(bundle), str(out), sys.executable)
    with tarfile.open(fileobj=io.BytesIO(reply["outputs"])) as archive:
        names = {name.lstrip("./") for name in archive.getnames()} - {""}
    assert names == {"mine.txt"}
