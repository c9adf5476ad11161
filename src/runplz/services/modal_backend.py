"""The modal backend: one call as an ephemeral Modal app, outputs back as an archive.

Everything the user got wrong (a GPU Modal does not sell, ``min_disk``, a
timeout past 24 h) is refused here, before any network call. The platform
port does the talking; this module decides what travels and what comes back.
"""

from __future__ import annotations

import os
import sys

import attrs

from ..services.outputs_archive import extract_outputs
from ..domain.call import FunctionCall
from ..domain.config import ModalConfig
from ..domain.errors import RunTimeout
from ..domain.image import RegistryBase
from ..domain.limits import modal_deadline
from ..domain.modal_image_plan import needs_python
from ..domain.modal_resources import modal_resources
from ..domain.outputs_limits import OutputsTooLarge, check_archive_size
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.serverless import ServerlessJob, ServerlessOutcome, ServerlessPlatform
from ..protocol.wire import encode_dispatch
from .bundle import RuntimeBundle
from .outputs_archive import extract_outputs
from .repo import find_repo_root, inside, relative_posix
from .runs import dispatch_for, new_run_id, settle_text
from .tree import TreeScanner, warn_dropped


@attrs.frozen
class ModalSettings:
    outputs_dir: str  # absolute, on this machine
    config: ModalConfig
    python_version: str = f"{sys.version_info.major}.{sys.version_info.minor}"


def _add_python(config: ModalConfig, image, python_version: str) -> str | None:
    if config.add_python == "none" or not isinstance(image.base, RegistryBase):
        return None
    if config.add_python != "auto":
        return config.add_python
    return python_version if needs_python(image.base.ref) else None


class ModalBackend:
    def __init__(
        self,
        platform: ServerlessPlatform,
        bundle: RuntimeBundle,
        trees: TreeScanner,
        console: Console,
        clock: Clock,
        settings: ModalSettings,
    ) -> None:
        self._platform = platform
        self._bundle = bundle
        self._trees = trees
        self._console = console
        self._clock = clock
        self._settings = settings

    def _job(self, call: FunctionCall, run: str) -> ServerlessJob:
        spec = call.spec
        resources = modal_resources(spec)  # refusals come before any network call
        repo_root = find_repo_root(call.script)
        outputs = self._settings.outputs_dir
        anchored = frozenset({relative_posix(outputs, repo_root)}) if inside(outputs, repo_root) else frozenset()
        chosen = self._trees.select(repo_root, anchored)
        warn_dropped(self._console, chosen, "left out of the Modal upload: {path}")
        return ServerlessJob(
            app=call.app,
            function=spec.name,
            image=spec.image,
            resources=resources,
            env=dict(spec.env),
            payload=encode_dispatch(dispatch_for(call, repo_root, run)),
            repo_root=repo_root,
            repo_keep=frozenset(chosen.paths()),
            bundle_dir=self._bundle.materialize(),
            add_python=_add_python(self._settings.config, spec.image, self._settings.python_version),
            deadline=modal_deadline(resources.timeout),
        )

    def call(self, call: FunctionCall):
        run = new_run_id(self._clock)
        job = self._job(call, run)
        shape = job.resources.gpu or "CPU"
        self._console.info(f"running {job.function} on Modal ({shape}, timeout {job.resources.timeout}s; run {run})")
        started = self._clock.monotonic()
        outcome = self._platform.run(job)
        self._collect(outcome, run)
        self._console.info(
            f"{job.function} finished with exit code {outcome.exit_code} "
            f"in {self._clock.monotonic() - started:.1f}s"
        )
        if outcome.timed_out and outcome.result is None:
            raise RunTimeout(
                f"{job.function} ran past its timeout of {job.resources.timeout}s on Modal and was stopped "
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
        report = extract_outputs(data, outputs)
        if report.warning:
            self._console.warn(report.warning)
        for member, why in report.refused:
            self._console.warn(f"left out of {outputs}: {member}: {why}")
