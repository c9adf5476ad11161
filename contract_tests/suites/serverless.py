"""The `ServerlessPlatform` contract: one dispatch in, exit code + result + outputs out."""

from __future__ import annotations

import io
import os
import tarfile
import textwrap

import pytest

from runplz import __version__
from runplz.domain.image import Image
from runplz.domain.modal_resources import ModalResources
from runplz.domain.payload import PROTOCOL, Dispatch, Raised, Returned
from runplz.ports.serverless import ServerlessJob, ServerlessPlatform
from runplz.protocol.wire import decode_result, encode_dispatch
from runplz.services.bundle import RuntimeBundle

HEADER = "import os, sys, time\nfrom runplz import App, Image\napp = App('contract')\n"
DECORATION = "@app.function(image=Image.from_registry('python:3.11-slim'))\n"


class ServerlessFixtures:
    @pytest.fixture
    def platform(self) -> ServerlessPlatform:
        raise NotImplementedError

    @pytest.fixture
    def make_job(self, tmp_path):
        """``make_job(body, args=, deadline=, env=)``: a repo holding job.py whose
        function ``main`` has ``body``, plus a kept data file and a secret ``.env``."""
        bundle = RuntimeBundle(str(tmp_path / "cache")).materialize()

        def make(body: str, args=(), deadline: float = 0.0, env=None) -> ServerlessJob:
            repo = tmp_path / "repo"
            repo.mkdir(exist_ok=True)
            (repo / "data").mkdir(exist_ok=True)
            (repo / "data" / "kept.txt").write_text("kept")
            (repo / ".env").write_text("TOKEN=secret")
            (repo / "job.py").write_text(HEADER + DECORATION + "def main(*args):\n" + textwrap.indent(body, "    ") + "\n")
            dispatch = Dispatch(PROTOCOL, __version__, "run-1", "contract", "job.py", "main", list(args), {})
            return ServerlessJob(
                app="contract",
                function="main",
                image=Image.from_registry("python:3.11-slim"),
                resources=ModalResources(gpu=None, cpu=None, memory_mib=None, timeout=120),
                env=dict(env or {}),
                payload=encode_dispatch(dispatch),
                repo_root=str(repo),
                repo_keep=frozenset({"job.py", "data", "data/kept.txt"}),
                bundle_dir=bundle,
                deadline=deadline,
            )

        return make


def archive_names(data: bytes) -> dict[str, bytes]:
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                found[member.name] = archive.extractfile(member).read()
    return found




class AbstractServerlessTests:
    def test_is_a_platform(self, platform):
        assert isinstance(platform, ServerlessPlatform)

    def test_the_value_comes_back(self, platform, make_job):
        outcome = platform.run(make_job("return {'args': list(args), 'pi': 3.5}", args=[1, "two"]))
        assert outcome.exit_code == 0 and not outcome.timed_out
        assert decode_result(outcome.result).outcome == Returned({"args": [1, "two"], "pi": 3.5})

    def test_a_raise_is_a_result_not_an_error(self, platform, make_job):
        outcome = platform.run(make_job("raise ValueError('bad input')"))
        assert outcome.exit_code == 1
        raised = decode_result(outcome.result).outcome
        assert isinstance(raised, Raised)
        assert (raised.type, raised.message) == ("ValueError", "bad input")
        assert "bad input" in raised.traceback

    def test_an_exit_code_is_kept(self, platform, make_job):
        outcome = platform.run(make_job("sys.exit(3)"))
        assert outcome.exit_code == 3

    def test_outputs_come_back_as_an_archive(self, platform, make_job):
        body = (
            "os.makedirs(os.path.join(os.environ['RUNPLZ_OUT'], 'a'), exist_ok=True)\n"
            "open(os.path.join(os.environ['RUNPLZ_OUT'], 'a', 'b.txt'), 'w').write('hello')\n"
            "raise RuntimeError('after writing')"
        )
        outcome = platform.run(make_job(body))
        assert outcome.exit_code == 1
        assert archive_names(outcome.outputs) == {"a/b.txt": b"hello"}

    def test_env_reaches_the_job_and_this_machine_env_does_not(self, platform, make_job, monkeypatch):
        monkeypatch.setenv("RUNPLZ_CONTRACT_HOST_ONLY", "leak")
        body = "return [os.environ.get('GREETING'), os.environ.get('RUNPLZ_CONTRACT_HOST_ONLY')]"
        outcome = platform.run(make_job(body, env={"GREETING": "hi there"}))
        assert decode_result(outcome.result).outcome.value == ["hi there", None]

    def test_only_kept_repo_files_reach_the_job(self, platform, make_job):
        body = "return [open('data/kept.txt').read(), os.path.exists('.env')]"
        outcome = platform.run(make_job(body))
        assert decode_result(outcome.result).outcome.value == ["kept", False]

    def test_past_the_deadline_the_job_stops_and_its_outputs_come_back(self, platform, make_job):
        body = "open(os.path.join(os.environ['RUNPLZ_OUT'], 'early.txt'), 'w').write('x')\ntime.sleep(60)"
        outcome = platform.run(make_job(body, deadline=2.0))
        assert outcome.timed_out and outcome.exit_code == 124
        assert outcome.result is None
        assert archive_names(outcome.outputs) == {"early.txt": b"x"}
