"""The remote run path: one function call on a box reached over a `Transport`.

Shared by every backend that ends on a box over ssh (ssh, brev, ...): each
one hands its transport and a `RemoteRunSettings` to a `RemoteRunPath`.

One connection per run. The run's code goes straight into its own folder on
the box (fixed at its upload, whatever runs next); the job runs detached
under a supervisor that enforces its time limit (it survives a dropped
connection or a dead driver); the driver follows its log and brings outputs
back on success and on failure.

The run's record gets the phases connect, upload, build, run and collect (the
outputs coming home, with their size), and what the job was made from (the
image's tag in docker mode, the venv's key otherwise).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

import attrs

from ..domain.call import FunctionCall
from ..domain.errors import BuildError, NoSpaceLeft, TransportError, says_no_space
from ..domain.hashing import digest
from ..domain.layout import BOOT_SCRIPT
from ..domain.limits import run_limit
from ..domain.remote_layout import REPO, bundle_dir, repo_tree, run_dir
from ..domain.validate import one_of, optional_positive_number, positive_number
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.job_output import JobOutput
from ..ports.transport import Transport
from ..protocol.wire import encode_dispatch
from .bundle import RuntimeBundle
from .remote_follow import RunFollower
from .remote_probe import probe_box
from .remote_run import RemoteJob, RemoteJobs, RunPlace
from .remote_setup import JobSetup
from .remote_upload import Uploader, free_mb, no_space, size_text
from .repo import anchored_outputs, find_repo_root
from .run_recorder import PhaseMark, Recording, RunRecorder
from .runs import dispatch_for
from .tree import TreeScanner

MODES = ("docker", "native", "inline")


@attrs.frozen(kw_only=True)
class RemoteRunSettings:
    """What the path needs of a backend's config.

    mode: "docker" builds the image on the box and runs it there; "native"
    makes a venv there from the pip steps (warning about the steps it cannot
    apply); "inline" applies the image's apt and shell steps on the box itself
    (the box is the image) and then makes the venv.
    """

    outputs_dir: str  # absolute, on this machine
    mode: str = attrs.field(validator=one_of(*MODES))
    max_runtime_seconds: float | None = attrs.field(default=None, validator=optional_positive_number)
    ready_wait_seconds: float = attrs.field(default=1800.0, validator=positive_number)
    runs_folder: str | None = None  # where the run folders go (default: remote_layout.run_dir)
    hardware_here: bool = True  # False: the job runs elsewhere (a scheduler's node), so the
    # probe does not hold the box's hardware against the function's spec


SetupFor = Callable[..., JobSetup]  # called with (mode=, transport=)
# How the job is launched and followed: the agent's supervisor on the box
# (`RemoteJobs`, the default) or another launcher with its interface (a
# scheduler's batch job); called with (transport, clock, console, output, bundle, ready_wait).
JobsFor = Callable[..., RemoteJobs]


class _Collecting:
    """The run's `RemoteJobs` as its follower sees them: bringing the outputs
    home ends the "run" phase and is the "collect" phase, with its size."""

    def __init__(self, jobs: RemoteJobs, record: Recording, running: PhaseMark) -> None:
        self._jobs = jobs
        self._record = record
        self._running = running

    def fetch_outputs(self, job: RemoteJob, local: str) -> int:
        self._running.end()
        with self._record.phase("collect") as collect:
            collect.size = self._jobs.fetch_outputs(job, local)
        return collect.size

    def __getattr__(self, name: str) -> Any:  # follow, stop, ...
        return getattr(self._jobs, name)


class RemoteRunPath:
    def __init__(
        self,
        transport: Transport,
        settings: RemoteRunSettings,
        setup_for: SetupFor,
        bundle: RuntimeBundle,
        trees: TreeScanner,
        console: Console,
        clock: Clock,
        output: JobOutput,
        runs: RunRecorder | None = None,
        jobs_for: JobsFor = RemoteJobs,
    ) -> None:
        self._runs = runs or RunRecorder.off(clock)
        self._jobs_for = jobs_for
        self._transport = transport
        self._settings = settings
        self._setup_for = setup_for
        self._bundle = bundle
        self._trees = trees
        self._console = console
        self._clock = clock
        self._output = output

    def call(self, call: FunctionCall, record: Recording | None = None) -> Any:
        """Run ``call`` on the box and return its value (the `Backend` contract).
        Connects, and closes the connection at the end. ``record``: the run's
        record when the caller began it (brev: before the box was made); else
        this begins one (an ssh run)."""
        if record is not None:
            return self._call(call, record)
        with self._runs.begin("ssh", self._transport.name, call, self._settings.outputs_dir) as record:
            return self._call(call, record)

    def _call(self, call: FunctionCall, record: Recording) -> Any:
        settings = self._settings
        spec = call.spec
        setup = self._setup_for(mode=settings.mode, transport=self._transport)
        repo_root = find_repo_root(call.script)
        outputs = settings.outputs_dir
        anchored = anchored_outputs(outputs, repo_root)
        planned = setup.checks(call, repo_root, anchored)  # user mistakes fail here, before any work
        bundle_local = self._bundle.materialize()
        bundle = bundle_dir(self._bundle.digest())
        basis = repo_tree(digest(socket.gethostname(), repo_root))
        checks = {"bundle": f"test -f {bundle}/{BOOT_SCRIPT} && echo yes", **planned}
        run = record.id
        folder = f"{settings.runs_folder}/{run}" if settings.runs_folder else run_dir(run)
        where = self._transport.name
        uploader = Uploader(self._transport, self._trees, self._console)
        jobs = self._jobs_for(
            self._transport, self._clock, self._console, self._output, bundle, settings.ready_wait_seconds
        )
        limit = run_limit(spec.timeout, settings.max_runtime_seconds)
        chosen = uploader.select(repo_root, anchored)
        self._console.info(f"connecting to {where}")
        try:
            with record.phase("connect"):
                self._transport.connect(wait=settings.ready_wait_seconds)
                shape = spec if settings.hardware_here else attrs.evolve(
                    spec, gpu=None, min_gpu_memory=None, min_cpu=None, min_memory=None, min_disk=None
                )
                machine = probe_box(self._transport, self._console, shape, checks, setup.docker)
            try:
                with record.phase("upload") as upload:
                    if machine.fact("bundle") != "yes":
                        uploader.bundle(bundle_local, bundle, run)
                    sent = upload.size = uploader.repo(chosen, f"{folder}/{REPO}", basis)
                self._console.info(f"uploaded {size_text(sent)} of changes to {where}")
                payload = encode_dispatch(dispatch_for(call, repo_root, run))
                with record.phase("build"):
                    job = setup.job(call, RunPlace(run, folder, bundle, repo_root, payload), machine)
                made = getattr(setup, "made_from", None)
                if made:
                    record.image(made)
                job = attrs.evolve(job, limit=limit.seconds if limit else None, basis=(f"{folder}/{REPO}", basis))
            except BaseException as exc:
                if isinstance(exc, NoSpaceLeft) or (isinstance(exc, BuildError) and says_no_space(str(exc))):
                    raise self._no_space(jobs, folder, "uploading and preparing the run") from None
                jobs.discard(folder)  # nothing started: leave no half-made run behind
                raise
            os.makedirs(outputs, exist_ok=True)
            self._console.info(f"running {spec.name} on {where} (run {run})")
            # Made before the job starts, so nothing stands between its start and the
            # follower that stops it on an interrupt (a map's stop is held meanwhile).
            running = record.start("run")
            follower = RunFollower(self._transport, _Collecting(jobs, record, running), self._console, self._clock)
            try:
                try:
                    jobs.start(job)
                except NoSpaceLeft:
                    raise self._no_space(jobs, folder, "starting the run") from None
                except KeyboardInterrupt:
                    jobs.stop(job)  # it may have started before the interrupt
                    raise
                value = follower.finish(job, spec, outputs, run, limit)  # type: ignore[arg-type]
            except BaseException:
                running.drop()  # unless the outputs were fetched, it ended unfinished
                raise
            running.end()
            return value
        finally:
            self._transport.close()

    def _no_space(self, jobs: RemoteJobs, folder: str, what: str) -> NoSpaceLeft:
        """Clean up after a full disk: this run's partial folder, then old finished runs."""
        jobs.discard(folder)
        freed = ""
        try:
            freed = jobs.prune(folder.rsplit("/", 1)[0])
        except TransportError:
            pass
        cleanup = "; removed this run's partial upload" + (f" and pruned old runs ({freed})" if freed else "")
        return no_space(self._transport.name, free_mb(self._transport), what, cleanup)
