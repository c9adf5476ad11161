"""The modal backend: one call as an ephemeral Modal app, outputs back as an archive.

Everything the user got wrong (a GPU Modal does not sell, ``min_disk``, a
timeout past 24 h) is refused here, before any network call. The platform
port does the talking; this module decides what travels and what comes back.
"""

from __future__ import annotations

import os
import sys

import attrs

from ..domain.call import FunctionCall
from ..domain.config import ModalConfig
from ..domain.errors import RunTimeout
from ..domain.image import RegistryBase
from ..domain.limits import modal_deadline, modal_grace, modal_timeout_message
from ..domain.modal_image_plan import needs_python
from ..domain.modal_resources import modal_resources
from ..domain.outputs_limits import OutputsTooLarge, check_archive_size
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


class ModalBackend:
    map_unsupported = "modal"  # `.map()` refuses it until Modal's own map is wired in

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
        with self._runs.begin("modal", "Modal", call, self._settings.outputs_dir) as record:
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
            self._collect(outcome, run)
        self._console.info(
            f"{job.function} finished with exit code {outcome.exit_code} "
            f"in {self._clock.monotonic() - started:.1f}s"
        )
        if outcome.timed_out and outcome.result is None:
            raise RunTimeout(
                f"{modal_timeout_message(job.function, job.resources.timeout)} "
                f"(outputs written so far are in {self._settings.outputs_dir})"
            )
        return settle_text(outcome.result, outcome.exit_code, run)

    def _collect(self, outcome: ServerlessOutcome, run: str) -> None:
        """Measure the archive, then unpack it; a refused archive is kept whole."""
        outputs = self._settings.outputs_dir
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
