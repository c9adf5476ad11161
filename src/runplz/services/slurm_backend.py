"""The slurm backend: a function's run as a batch job on a Slurm cluster.

The run path is the ssh backend's (`RemoteRunPath`): one connection to the
login node (over ssh with ``--host``, else this machine through a local
transport), the upload, the probe, the native venv (built once per
environment key on the shared file system, under a file lock), and the
outputs back; only the launcher differs (`SlurmJobs`: ``sbatch`` instead of
the agent's supervisor). Run folders live under ``<workdir>/.runplz/slurm-runs``
(``SlurmConfig.workdir``, default the login's $HOME), apart from the ssh
runs' folders: the same pruning rule applies to both, but a Slurm run's
liveness comes from squeue, not from a supervisor on the box
(runtime/slurm_prune.py, run after each submit by `SlurmJobs`).

With ``SlurmConfig(container="apptainer"|"pyxis")`` no venv is made: the job
runs the entry with the ``Image.from_registry`` image's own python3.

``.map()`` is ONE job array (`SlurmBackend.map`, services/slurm_array.py): one
upload, one venv, one ``sbatch --array=0-(N-1)%K`` (K: the map's
``concurrency``, default `MAP_CONCURRENCY`). The map is one run in the
record (its id is the map's id), with the array's job id and a note per
input as it ends; ``runplz down`` of a dead driver's map scancels the array.
"""

from __future__ import annotations

import functools
import posixpath
from typing import Any, Callable, Sequence

import attrs

from ..domain.call import FunctionCall
from ..domain.errors import ConfigError, ItemCancelled
from ..domain.config import SlurmConfig
from ..domain.layout import BOOT_SCRIPT, PAYLOAD_FILE
from ..domain.machine import Machine
from ..domain.remote_layout import CTL, OUT, REPO
from ..domain.run_record import Note
from ..domain.slurm import check_container_image
from ..domain.slurm_limits import array_refusal
from ..domain.slurm_liveness import LOCAL_TARGET, RUNS, folder_note
from ..domain.slurm_state import job_note
from ..ports.backend import Cancel, ItemSink
from ..ports.clock import Clock
from ..ports.command_runner import CommandResult, Input
from ..ports.scheduler import BatchScheduler
from ..ports.transport import Pulled, Transport
from .remote_path import RemoteRunPath, RemoteRunSettings
from .remote_run import RemoteJob, RunPlace
from .run_recorder import RunRecorder
from .runs import new_run_id
from .slurm_array import ArrayJobs
from .slurm_jobs import SlurmJobs
from .slurm_limits import ClusterLimits

RUNS_FOLDER = RUNS  # under the workdir; `runplz ps` and `down` look there too
MAP_CONCURRENCY = 8  # a map's tasks running at once (``%K`` of ``--array``) unless ``concurrency=`` says


@attrs.frozen
class SlurmSettings:
    outputs_dir: str  # absolute, on this machine
    config: SlurmConfig
    host: str | None = None  # the login node; None: this machine is one

    def run_settings(self) -> RemoteRunSettings:
        config = self.config
        return RemoteRunSettings(
            outputs_dir=self.outputs_dir,
            mode="native",
            max_runtime_seconds=config.max_runtime_seconds,
            ready_wait_seconds=config.ssh_ready_wait_seconds,
            runs_folder=RUNS_FOLDER,
            hardware_here=False,
        )


class Wrapped:
    """A `Transport` that hands every call to ``transport``; subclasses change one part."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.name = transport.name

    def connect(self, wait: float = 0) -> None:
        self._transport.connect(wait)

    def close(self) -> None:
        self._transport.close()

    def run(self, argv: Sequence[str], *, input: Input = None, timeout: float | None = None,
            on_output: Callable[[bytes], None] | None = None) -> CommandResult:
        return self._transport.run(argv, input=input, timeout=timeout, on_output=on_output)

    def push(self, local: str, remote: str, paths: Sequence[str] | None = None, basis: str | None = None) -> int:
        return self._transport.push(local, remote, paths, basis)

    def pull(self, remote: str, local: str, move: bool = False) -> Pulled:
        return self._transport.pull(remote, local, move)


class InFolder(Wrapped):
    """A `Transport` whose relative paths and commands start in ``folder`` on the
    target (made when missing) instead of its login folder: the workdir."""

    def __init__(self, transport: Transport, folder: str) -> None:
        super().__init__(transport)
        self._folder = folder

    def _at(self, path: str | None) -> str | None:
        return path if path is None or path.startswith("/") else posixpath.join(self._folder, path)

    def run(self, argv: Sequence[str], *, input: Input = None, timeout: float | None = None,
            on_output: Callable[[bytes], None] | None = None) -> CommandResult:
        wrapped = ["sh", "-c", 'mkdir -p "$1" && cd "$1" && shift && exec "$@"', "sh", self._folder, *argv]
        return self._transport.run(wrapped, input=input, timeout=timeout, on_output=on_output)

    def push(self, local: str, remote: str, paths: Sequence[str] | None = None, basis: str | None = None) -> int:
        return self._transport.push(local, self._at(remote) or remote, paths, self._at(basis))

    def pull(self, remote: str, local: str, move: bool = False) -> Pulled:
        return self._transport.pull(self._at(remote) or remote, local, move)


class ArrayGate(Wrapped):
    """A `Transport` whose first ``connect`` also checks that a map of ``count``
    inputs fits in one job array (MaxArraySize, from ``scontrol show config``):
    `ConfigError` when it does not, before the run path uploads anything. A
    cluster that does not say leaves the judging to sbatch."""

    def __init__(self, transport: Transport, count: int) -> None:
        super().__init__(transport)
        self._count = count
        self._checked = False

    def connect(self, wait: float = 0) -> None:
        self._transport.connect(wait)
        if not self._checked:
            self._checked = True
            limit = ClusterLimits(self._transport).max_array_size()
            refusal = array_refusal(self._count, limit, self.name) if limit is not None else None
            if refusal is not None:
                raise ConfigError(refusal)


class ImageJobSetup:
    """A container runtime's job: the entry with the registry image's own python3
    (no venv; the image is run as it is)."""

    docker = False

    def __init__(self, config: SlurmConfig) -> None:
        self._config = config
        self.made_from: str | None = None

    def checks(self, call: FunctionCall, repo_root: str, anchored: frozenset[str]) -> dict[str, str]:
        check_container_image(self._config, call.spec.image, call.spec.name)
        return {}

    def job(self, call: FunctionCall, place: RunPlace, machine: Machine) -> RemoteJob:
        home, folder = machine.home, place.folder
        self.made_from = call.spec.image.base.ref
        env = {**call.spec.env, "RUNPLZ_OUT": f"{home}/{folder}/{OUT}"}
        argv = ("python3", f"{home}/{place.bundle}/{BOOT_SCRIPT}", f"{home}/{folder}/{CTL}/{PAYLOAD_FILE}")
        return RemoteJob(folder, argv, f"{home}/{folder}/{REPO}", env, place.payload)


class SlurmBackend:
    map_concurrency = MAP_CONCURRENCY

    def __init__(
        self,
        transport: Transport,
        paths: Callable[..., RemoteRunPath],  # called with (transport=, settings=, jobs_for=[, setup_for=])
        schedulers: Callable[..., BatchScheduler],  # called with (transport=)
        clock: Clock,
        settings: SlurmSettings,
        runs: RunRecorder | None = None,
    ) -> None:
        self._runs = runs or RunRecorder.off(clock)
        config = settings.config
        self._transport: Transport = InFolder(transport, config.workdir) if config.workdir else transport
        self._paths = paths
        self._schedulers = schedulers
        self._clock = clock
        self._settings = settings

    def call(self, call: FunctionCall) -> Any:
        settings, config, spec = self._settings, self._settings.config, call.spec
        check_container_image(config, spec.image, spec.name)  # refused before anything is sent
        transport = self._transport
        run = getattr(call, "run_id", None) or new_run_id(self._clock)
        with self._runs.begin("slurm", settings.host or LOCAL_TARGET, call, settings.outputs_dir, run_id=run) as record:

            def submitted(job: str) -> None:
                record.event(Note(job_note(job, transport.name), self._clock.now()))

            def placed(folder: str) -> None:
                record.event(Note(folder_note(folder), self._clock.now()))

            jobs_for = functools.partial(
                SlurmJobs, scheduler=self._schedulers(transport=transport), config=config, spec=spec,
                app=call.app, on_submit=submitted, on_folder=placed,
            )
            return self._path(jobs_for).call(call, record)

    def _path(self, jobs_for: Callable[..., Any], transport: Transport | None = None) -> RemoteRunPath:
        config = self._settings.config
        extra: dict[str, Any] = {}
        if config.container != "none":
            extra["setup_for"] = lambda mode, transport: ImageJobSetup(config)
        return self._paths(
            transport=transport or self._transport, settings=self._settings.run_settings(), jobs_for=jobs_for, **extra
        )

    def map(self, calls: Sequence[FunctionCall], concurrency: int, sink: ItemSink, cancel: Cancel) -> None:
        """The `MapBackend` contract: ``calls`` as ONE job array, at most ``concurrency``
        tasks at a time; one run in the record, under the map's id."""
        if not calls or cancel.is_set():
            return
        settings, config, first = self._settings, self._settings.config, calls[0]
        check_container_image(config, first.spec.image, first.spec.name)
        run = first.map_id or new_run_id(self._clock)
        whole = attrs.evolve(first, args=[], kwargs={}, index=None, run_id=run, outputs=None)
        transport = self._transport
        try:
            with self._runs.begin("slurm", settings.host or LOCAL_TARGET, whole, settings.outputs_dir, run_id=run) as record:

                def note(text: str) -> None:
                    record.event(Note(text, self._clock.now()))

                jobs_for = functools.partial(
                    ArrayJobs, scheduler=self._schedulers(transport=transport), config=config, spec=first.spec,
                    app=first.app, on_submit=lambda job: note(job_note(job, transport.name)),
                    on_folder=lambda folder: note(folder_note(folder)),
                    calls=calls, concurrency=concurrency, sink=sink, cancel=cancel, on_task=note,
                )
                self._path(jobs_for, ArrayGate(transport, len(calls))).call(whole, record)
        except ItemCancelled:
            if not cancel.is_set():
                raise
