"""The `ServerlessPlatform` contract: one dispatch in, exit code + result + outputs out."""

from __future__ import annotations

import io
import os
import tarfile
import textwrap
import threading
import time

import pytest

from runplz import __version__
from runplz.domain.errors import ItemCancelled
from runplz.domain.image import Image
from runplz.domain.modal_resources import ModalResources
from runplz.domain.payload import PROTOCOL, Dispatch, Raised, Returned
from runplz.ports.backend import ItemSink
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


def payload_for(*args) -> str:
    return encode_dispatch(Dispatch(PROTOCOL, __version__, "run-1", "contract", "job.py", "main", list(args), {}))


class Reports(ItemSink):
    """What a map reported, in order, and the most inputs that were running at once."""

    def __init__(self, on_started=None) -> None:
        self.events: list[tuple[str, int, object]] = []
        self.most = 0
        self._running = 0
        self._lock = threading.Lock()
        self._on_started = on_started

    def started(self, index: int) -> None:
        with self._lock:
            self.events.append(("started", index, None))
            self._running += 1
            self.most = max(self.most, self._running)
        if self._on_started is not None:
            self._on_started(index)

    def finished(self, index: int, value) -> None:
        with self._lock:
            self.events.append(("finished", index, value))
            self._running -= 1

    def failed(self, index: int, error: BaseException) -> None:
        with self._lock:
            self.events.append(("failed", index, error))
            self._running -= 1

    def ended(self) -> dict[int, tuple[str, object]]:
        return {index: (kind, value) for kind, index, value in self.events if kind != "started"}


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

    def test_a_map_reports_each_payload_by_index_at_most_k_at_once(self, platform, make_job):
        body = (
            "open(os.path.join(os.environ['RUNPLZ_OUT'], 'n.txt'), 'w').write(str(args[0]))\n"
            "time.sleep(0.5 if args[0] == 0 else 0)\n"
            "if args[0] == 2:\n    raise ValueError('two fails')\n"
            "return args[0] * 10"
        )
        job = make_job(body)
        reports = Reports()
        platform.map(job, [payload_for(n) for n in range(4)], 2, reports, threading.Event())
        ended = reports.ended()
        assert sorted(ended) == [0, 1, 2, 3] and reports.most <= 2
        assert [index for kind, index, _ in reports.events if kind == "started"] == [0, 1, 2, 3]
        for index, (kind, outcome) in ended.items():
            assert kind == "finished", outcome
            assert archive_names(outcome.outputs) == {"n.txt": str(index).encode()}
            if index == 2:
                assert outcome.exit_code == 1 and decode_result(outcome.result).outcome.type == "ValueError"
            else:
                assert outcome.exit_code == 0 and decode_result(outcome.result).outcome == Returned(index * 10)

    def test_a_cancelled_map_stops_its_running_inputs_and_starts_no_more(self, platform, make_job):
        job = make_job("time.sleep(120)")
        cancel = threading.Event()
        reports = Reports(on_started=lambda index: threading.Timer(1.0, cancel.set).start())
        began = time.monotonic()
        platform.map(job, [payload_for(n) for n in range(3)], 1, reports, cancel)
        assert time.monotonic() - began < 60
        assert [(kind, index) for kind, index, _ in reports.events] == [("started", 0), ("failed", 0)]
        assert isinstance(reports.events[-1][2], ItemCancelled)
