"""The modal backend: one call as an ephemeral Modal app, outputs back as an archive.

Everything the user got wrong (a GPU Modal does not sell, ``min_disk``, a
timeout past 24 h) is refused here, before any network call. The platform
port does the talking; this module decides what travels and what comes back.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Sequence

import attrs

from ..domain.call import FunctionCall
from ..domain.config import ModalConfig
from ..domain.errors import RunTimeout
from ..domain.image import RegistryBase
from ..domain.limits import modal_deadline, modal_grace, modal_timeout_message
from ..domain.modal_image_plan import needs_python
from ..domain.modal_resources import modal_resources
from ..domain.outputs_limits import OutputsTooLarge, check_archive_size
from ..ports.backend import Cancel, ItemSink
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.serverless import ServerlessJob, ServerlessOutcome, ServerlessPlatform
from ..protocol.wire import encode_dispatch
from .bundle import RuntimeBundle
from .outputs_archive import extract_outputs
from .repo import anchored_outputs, find_repo_root
from .run_recorder import Recording, RunRecorder
from .runs import dispatch_for, settle_text
from .tree import Selection, TreeScanner, warn_dropped


@attrs.frozen
class ModalSettings:
    outputs_dir: str  # absolute, on this machine
    config: ModalConfig
    python_version: str = f"{sys.version_info.major}.{sys.version_info.minor}"


def python_to_add(config: ModalConfig, image, python_version: str) -> str | None:
    """An explicit version applies to every image; "auto" only to a bare-OS registry base."""
    if config.add_python == "none":
        return None
    if config.add_python != "auto":
        return config.add_python
    if isinstance(image.base, RegistryBase) and needs_python(image.base.ref):
        return python_version
    return None


def _without_folder_links(chosen: Selection, console: Console) -> frozenset[str]:
    """The kept paths, less links to folders: Modal's upload does not enter them
    (a link to a file arrives as the file's content)."""
    keep = set(chosen.paths())
    for link in chosen.links:
        if os.path.isdir(os.path.join(chosen.root, *link.path.split("/"))):
            keep.discard(link.path)
            console.warn(f"left out of the Modal upload: {link.path} (a link to a folder; Modal does not follow it)")
    return frozenset(keep)


MAP_CONCURRENCY = 1000  # a map's default cap on unfinished inputs: Modal's own window; its autoscaler decides


class ModalBackend:
    """`Backend` and `MapBackend` (Modal's own map, in one ephemeral app)."""

    map_concurrency = MAP_CONCURRENCY

    def __init__(
        self,
        platform: ServerlessPlatform,
        bundle: RuntimeBundle,
        trees: TreeScanner,
        console: Console,
        clock: Clock,
        settings: ModalSettings,
        runs: RunRecorder | None = None,
    ) -> None:
        self._platform = platform
        self._bundle = bundle
        self._trees = trees
        self._console = console
        self._clock = clock
        self._settings = settings
        self._runs = runs or RunRecorder.off(clock)

    def _job(self, call: FunctionCall, run: str) -> ServerlessJob:
        spec = call.spec
        resources = modal_resources(spec)  # refusals come before any network call
        repo_root = find_repo_root(call.script)
        outputs = self._settings.outputs_dir
        chosen = self._trees.select(repo_root, anchored_outputs(outputs, repo_root))
        warn_dropped(self._console, chosen, "left out of the Modal upload: {path}")
        return ServerlessJob(
            app=call.app,
            function=spec.name,
            image=spec.image,
            resources=resources,
            env=dict(spec.env),
            payload=encode_dispatch(dispatch_for(call, repo_root, run)),
            repo_root=repo_root,
            repo_keep=_without_folder_links(chosen, self._console),
            bundle_dir=self._bundle.materialize(),
            add_python=python_to_add(self._settings.config, spec.image, self._settings.python_version),
            deadline=modal_deadline(resources.timeout),
            grace=modal_grace(resources.timeout),
        )

    def call(self, call: FunctionCall):
        modal_resources(call.spec)  # a mistake is refused before a run is recorded
        with self._runs.begin("modal", "Modal", call, _outputs(call, self._settings), run_id=call.run_id) as record:
            return self._call(call, record)

    def _call(self, call: FunctionCall, record: Recording):
        run = record.id
        job = self._job(call, run)
        shape = job.resources.gpu or "CPU"
        self._console.info(f"running {job.function} on Modal ({shape}, timeout {job.resources.timeout}s; run {run})")
        started = self._clock.monotonic()
        with record.phase("run"):
            outcome = self._platform.run(job)
        with record.phase("collect", size=len(outcome.outputs)):
            self._collect(outcome, run, _outputs(call, self._settings))
        self._console.info(
            f"{job.function} finished with exit code {outcome.exit_code} "
            f"in {self._clock.monotonic() - started:.1f}s"
        )
        return self._settle(job, outcome, run, _outputs(call, self._settings))

    def _settle(self, job: ServerlessJob, outcome: ServerlessOutcome, run: str, outputs: str):
        if outcome.timed_out and outcome.result is None:
            raise RunTimeout(
                f"{modal_timeout_message(job.function, job.resources.timeout)} "
                f"(outputs written so far are in {outputs})"
            )
        return settle_text(outcome.result, outcome.exit_code, run)

    def map(self, calls: Sequence[FunctionCall], concurrency: int, sink: ItemSink, cancel: Cancel) -> None:
        """All of ``calls`` (one function's inputs, each with its ``outputs``
        folder and ``run_id``) through Modal's own map, in one ephemeral app;
        each input's outputs archive is unpacked into its own folder."""
        if not calls:
            return
        first = calls[0]
        job = self._job(first, first.run_id or "")  # refusals, the upload: shared by every input
        payloads = [
            encode_dispatch(dispatch_for(call, job.repo_root, call.run_id or f"{first.run_id}-{n}"))
            for n, call in enumerate(calls)
        ]
        self._console.info(
            f"running {job.function} on Modal over {len(calls)} input{'s' if len(calls) != 1 else ''} "
            f"({job.resources.gpu or 'CPU'}, timeout {job.resources.timeout}s; Modal's map)"
        )
        self._platform.map(job, payloads, concurrency, _MapItems(self, job, calls, sink), cancel)

    def _collect(self, outcome: ServerlessOutcome, run: str, outputs: str) -> None:
        """Measure the archive, then unpack it; a refused archive is kept whole."""
        os.makedirs(outputs, exist_ok=True)
        data = outcome.outputs
        try:
            check_archive_size(len(data))
        except OutputsTooLarge:
            kept = os.path.join(outputs, f"runplz-outputs-{run}.tar.gz")
            with open(kept, "wb") as handle:
                handle.write(data)
            check_archive_size(len(data), kept_at=kept)  # raises, naming where the archive is kept
            raise
        for note in outcome.notes:
            self._console.warn(note)
        report = extract_outputs(data, outputs)
        if report.warning:
            self._console.warn(report.warning)
        for member, why in report.refused:
            self._console.warn(f"left out of {outputs}: {member}: {why}")


def _outputs(call: FunctionCall, settings: ModalSettings) -> str:
    """Where the call's files go: its own folder for a map's input, else the bound one."""
    return call.outputs or settings.outputs_dir


class _MapItems:
    """The `ItemSink` the platform reports a map's inputs to: records each input's
    run, unpacks its outputs into its folder, settles its result, and passes
    the input on to the fan-out's sink as a value or an error."""

    def __init__(self, backend: ModalBackend, job: ServerlessJob, calls: Sequence[FunctionCall], sink: ItemSink) -> None:
        self._backend = backend
        self._job = job
        self._calls = calls
        self._sink = sink
        self._lock = threading.Lock()
        self._records: dict[int, Recording] = {}

    def started(self, index: int) -> None:
        call = self._calls[index]
        try:
            record = self._backend._runs.begin("modal", "Modal", call, _outputs(call, self._backend._settings), run_id=call.run_id)
        except Exception:  # recording never fails a run
            record = None
        if record is not None:
            with self._lock:
                self._records[index] = record
        self._sink.started(index)

    def finished(self, index: int, outcome: ServerlessOutcome) -> None:
        call = self._calls[index]
        outputs = _outputs(call, self._backend._settings)
        run = call.run_id or ""
        try:
            self._backend._collect(outcome, run, outputs)
            value = self._backend._settle(self._job, outcome, run, outputs)
        except Exception as exc:
            self.failed(index, exc)
            return
        self._end(index, None)
        self._sink.finished(index, value)

    def failed(self, index: int, error: BaseException) -> None:
        self._end(index, error)
        self._sink.failed(index, error)

    def _end(self, index: int, error: BaseException | None) -> None:
        with self._lock:
            record = self._records.pop(index, None)
        if record is not None:
            try:
                record.__exit__(type(error) if error else None, error, None)
            except Exception:
                pass
