"""Fakes for testing your own runplz scripts and tools offline.

Each fake passes the same contract suite as the real adapter it stands in for.
`fake_container()` wires them into a `Container`, so a job script runs through
the real protocol with no Docker and no network::

    from runplz.testing import fake_container
    import jobs.train as job

    def test_train(tmp_path):
        container = fake_container()
        job.app.bind("local", outputs_dir=str(tmp_path), container=container)
        assert job.train.remote(steps=2) == {"steps": 2}
"""

from __future__ import annotations

from typing import Any

from .adapters.fake_brev import BrevFaults, FakeBrev
from .adapters.fake_clock import FakeClock
from .adapters.fake_console import RecordingConsole
from .adapters.fake_engine import FakeContainerEngine, FakeImage
from .adapters.fake_env import FakePythonEnvBuilder
from .adapters.fake_ledger import FakeLedger
from .adapters.fake_launcher import FakeLauncher
from .adapters.fake_log import MemoryLog
from .adapters.fake_modal import FakeModal, ModalFaults
from .adapters.fake_run_store import FakeRunStore
from .adapters.fake_runner import FakeCall, FakeCommandRunner, FakeInvocation, respond
from .adapters.fake_slurm import FakeSlurm
from .adapters.fake_transport import FakeTransport
from .adapters.job_output import RecordingJobOutput

__all__ = [
    "BrevFaults",
    "FakeBrev",
    "FakeCall",
    "FakeClock",
    "FakeCommandRunner",
    "FakeContainerEngine",
    "FakeImage",
    "FakeInvocation",
    "FakeLauncher",
    "FakeLedger",
    "FakeModal",
    "FakePythonEnvBuilder",
    "FakeRunStore",
    "FakeSlurm",
    "FakeTransport",
    "MemoryLog",
    "ModalFaults",
    "RecordingConsole",
    "RecordingJobOutput",
    "fake_container",
    "respond",
]


def fake_container(cache_dir: str | None = None, **overrides: Any):
    """A `runplz.container.Container` whose engine, env builder, console, clock,
    Brev account, box ledger, Modal, run records and driver log are fakes
    (`FakeModal` runs Modal jobs here; `FakeRunStore` keeps run records in memory).

    Pass ``container_engine=...``, ``python_env_builder=...``, ``console=...``,
    ``job_output=...``, ``clock=...``, ``command_runner=...``, ``box_ledger=...``,
    ``brev_catalog=...``, ``brev_instances=...``, ``modal_platform=...``, ``run_store=...`` or
    ``driver_log=...`` to supply your own instances, or
    ``brev=FakeBrev(rows)`` for both Brev ports at once; the chosen ones are
    reachable as ``container.<name>()``. (The Brev fakes stand in for the `brev`
    CLI only: a brev run still reaches its box over ssh, as ``ssh NAME``.)
    """
    import tempfile

    from .container import make_container

    container = make_container(cache_dir or tempfile.mkdtemp(prefix="runplz-fake-cache-"))
    clock = overrides.get("clock") or FakeClock()
    brev = overrides.pop("brev", None)
    if brev is None:
        brev = FakeBrev(clock=clock)
    fakes = {
        "brev_catalog": brev,
        "brev_instances": brev,
        "box_ledger": FakeLedger(),
        "modal_platform": FakeModal(),
        "run_store": FakeRunStore(),
        "driver_log": MemoryLog(),
        "launcher": FakeLauncher(),
        "container_engine": FakeContainerEngine(),
        "python_env_builder": FakePythonEnvBuilder(pretend_index=True),
        "console": RecordingConsole(),
        "job_output": RecordingJobOutput(),
        "clock": clock,
    }
    fakes.update(overrides)
    for name, fake in fakes.items():
        getattr(container, name).override(fake)
    return container
