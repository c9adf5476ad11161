"""The local backend, Docker mode: build (if needed) and run the function in a container."""

from __future__ import annotations

import os
import threading

from ..domain.call import FunctionCall
from ..domain.errors import CommandTimeout, RunTimeout
from ..domain.layout import BOOT_SCRIPT, BUNDLE_DIR, OUT_DIR, PAYLOAD_FILE, REPO_DIR, RUN_DIR
from ..domain.limits import run_limit
from ..domain.local_plan import choose_gpus
from ..domain.naming import container_name
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.container_engine import ContainerEngine, ContainerRun, Mount
from .fan_out import Stops
from .images import ImageBuilder
from .repo import anchored_outputs, find_repo_root
from ..domain.remote_layout import EXIT_TIMED_OUT
from .run_recorder import Recording, RunRecorder
from .runs import BACKUP_SECONDS, RunDir, dispatch_for, guarded
from .settings import LocalSettings


class LocalDockerBackend:
    """Runs a call in a container; several at once for a map (see `stop`)."""

    map_concurrency = os.cpu_count() or 1  # `.map()`'s default K: one container per CPU

    def __init__(
        self,
        engine: ContainerEngine,
        images: ImageBuilder,
        console: Console,
        clock: Clock,
        settings: LocalSettings,
        runs: RunRecorder | None = None,
    ) -> None:
        self._engine = engine
        self._images = images
        self._console = console
        self._clock = clock
        self._settings = settings
        self._runs = runs or RunRecorder.off(clock)
        self._stops = Stops()
        self._building = threading.Lock()  # a map's inputs build (or find) the image one at a time

    def call(self, call: FunctionCall):
        outputs = call.outputs or self._settings.outputs_dir
        with self._runs.begin("local", "docker", call, outputs, run_id=call.run_id) as record:
            return self._call(call, record, outputs)

    def stop(self, call: FunctionCall) -> None:
        """Stop a map input's run from another thread (`StoppableBackend`): its
        container is removed, or never started."""
        if self._stops.ask(call.run_id) and call.run_id:
            self._engine.remove(container_name(call.app, call.spec.name, call.run_id))

    def _call(self, call: FunctionCall, record: Recording, outputs: str):
        settings = self._settings
        spec = call.spec
        repo_root = find_repo_root(call.script)
        anchored = anchored_outputs(settings.outputs_dir, repo_root)  # kept out of the image
        self._stops.check(record.id)
        with record.phase("build"), self._building:
            if settings.build:
                tag = self._images.ensure(
                    call.app, spec.name, spec.image, repo_root, anchored, settings.uid, settings.gid
                )
            else:
                tag = self._images.latest(call.app, spec.name)
        record.image(tag)
        gpus = choose_gpus(settings.config.gpus, spec.wants_gpu, self._engine.supports_gpus, spec.name)
        if gpus.warning:
            self._console.warn(gpus.warning)
        run = record.id
        os.makedirs(outputs, exist_ok=True)
        env = dict(spec.env)
        env["RUNPLZ_OUT"] = OUT_DIR
        if settings.uid:
            env.setdefault("HOME", "/tmp")
        limit = run_limit(spec.timeout)
        with RunDir() as run_dir:
            run_dir.write(dispatch_for(call, repo_root, run))
            container = ContainerRun(
                image=tag,
                argv=guarded("python3", f"{BUNDLE_DIR}/{BOOT_SCRIPT}", f"{RUN_DIR}/{PAYLOAD_FILE}", limit.seconds if limit else 0),
                name=container_name(call.app, spec.name, run),
                env=env,
                mounts=(Mount(outputs, OUT_DIR), Mount(run_dir.path, RUN_DIR)),
                workdir=REPO_DIR,
                user=f"{settings.uid}:{settings.gid}",
                gpus=gpus.flag,
                labels={"runplz.app": call.app, "runplz.function": spec.name, "runplz.run": run},
                timeout=limit.seconds + BACKUP_SECONDS if limit else None,
            )
            self._console.info(f"running {call.label} in {tag} (run {run})")
            started = self._clock.monotonic()
            try:
                with record.phase("run"), self._stops.waiting(run):
                    exit_code = self._engine.run(container)
            except CommandTimeout:
                exit_code = EXIT_TIMED_OUT
            if limit and exit_code == EXIT_TIMED_OUT and run_dir.result() is None:
                raise RunTimeout(
                    f"{spec.name} ran past {limit.reason} and was stopped"
                )
            self._console.info(
                f"{call.label} finished with exit code {exit_code} "
                f"in {self._clock.monotonic() - started:.1f}s"
            )
            return run_dir.settle(exit_code, run)
