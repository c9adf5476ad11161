"""The ssh backend: run a function on a box the user owns.

One connection per run. The job runs detached on the box (it survives a
dropped connection); the driver follows its log and brings outputs back on
success and on failure.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

import attrs

from ..domain.call import FunctionCall
from ..domain.config import SshConfig
from ..domain.container_run import ContainerRun, Mount, docker_run_argv
from ..domain.errors import RunTimeout, TransportError
from ..domain.excludes import DEFAULT_PATTERNS
from ..domain.hashing import digest
from ..domain.host import SshTarget
from ..domain.layout import BOOT_SCRIPT, BUNDLE_DIR, OUT_DIR, PAYLOAD_FILE, REPO_DIR, RUN_DIR
from ..domain.local_plan import choose_gpus, native_plan
from ..domain.machine import Machine, parse_probe, probe_script, python_ok, spec_warnings
from ..domain.naming import container_name
from ..domain.remote_layout import CTL, OUT, REPO, bundle_dir, repo_tree, run_dir
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.container_engine import ContainerEngine
from ..ports.job_output import JobOutput
from ..ports.python_env import EnvRequest, PythonEnvBuilder
from ..ports.transport import Transport
from ..protocol.wire import encode_dispatch
from .bundle import RuntimeBundle
from .images import ImageBuilder
from .native_steps import ensure_env, native_steps
from .remote_run import PastDeadline, RemoteJob, RemoteJobs
from .repo import find_repo_root, inside, relative_posix
from .runs import dispatch_for, new_run_id, settle_text
from .tree import TreeScanner


@attrs.frozen
class SshSettings:
    outputs_dir: str  # absolute, on this machine
    config: SshConfig
    target: SshTarget


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


class SshBackend:
    def __init__(
        self,
        transport: Transport,
        engine_for: Callable[[Transport], ContainerEngine],
        envs_for: Callable[[Transport, str], PythonEnvBuilder],
        images_for: Callable[[ContainerEngine], ImageBuilder],
        bundle: RuntimeBundle,
        trees: TreeScanner,
        console: Console,
        clock: Clock,
        output: JobOutput,
        settings: SshSettings,
    ) -> None:
        self._transport = transport
        self._engine_for = engine_for
        self._envs_for = envs_for
        self._images_for = images_for
        self._bundle = bundle
        self._trees = trees
        self._console = console
        self._clock = clock
        self._output = output
        self._settings = settings

    def call(self, call: FunctionCall) -> Any:
        config = self._settings.config
        spec = call.spec
        plan = None if config.use_docker else native_plan(spec.image, spec.name)
        repo_root = find_repo_root(call.script)
        outputs = self._settings.outputs_dir
        excludes = list(DEFAULT_PATTERNS)
        if inside(outputs, repo_root):
            excludes.append("/" + relative_posix(outputs, repo_root))
        bundle_local = self._bundle.materialize()
        bundle = bundle_dir(self._bundle.digest())
        tree = repo_tree(digest(socket.gethostname(), repo_root))
        engine = images = base = None
        checks = {"bundle": f"test -f {bundle}/{BOOT_SCRIPT} && echo yes"}
        if config.use_docker:
            engine = self._engine_for(self._transport)
            images = self._images_for(engine)
            base = images.base_request(call.app, spec.image, repo_root)
            checks["image"] = f"docker image inspect --format x {base.tag} >/dev/null 2>&1 && echo yes"
        run = new_run_id(self._clock)
        where = self._transport.name
        self._console.info(f"connecting to {where}")
        self._transport.connect(wait=config.ssh_ready_wait_seconds)
        try:
            machine = self._probe(spec, checks)
            if machine.fact("bundle") != "yes":
                self._transport.push(bundle_local, bundle)
            sent = self._transport.push(repo_root, tree, excludes)
            self._console.info(f"uploaded {_size(sent)} of changes to {where}")
            folder = run_dir(run)
            payload = encode_dispatch(dispatch_for(call, repo_root, run))
            if config.use_docker:
                if not machine.docker:
                    raise TransportError(
                        f"Docker does not answer on {where}; install it there, or use "
                        "SshConfig(use_docker=False) for a native venv"
                    )
                if machine.fact("image") != "yes":
                    images.build(base)
                job = self._docker_job(spec, call.app, run, machine, base.tag, folder, bundle, tree, payload)
            else:
                for warning in plan.warnings:
                    self._console.warn(warning)
                job = self._native_job(spec, plan, machine, repo_root, folder, bundle, tree, payload)
            return self._run(job, spec, config, outputs, run)
        finally:
            self._transport.close()

    def _probe(self, spec, checks: dict[str, str]) -> Machine:
        result = self._transport.run(["sh", "-c", probe_script(checks)], timeout=120)
        machine = parse_probe(result.stdout)
        where = self._transport.name
        if not python_ok(machine.python):
            found = f"Python {machine.python}" if machine.python else "no python3"
            raise TransportError(f"{where} has {found}; runplz needs python3 >= 3.10 there")
        for warning in spec_warnings(spec, machine, where):
            self._console.warn(warning)
        return machine

    def _docker_job(self, spec, app, run, machine, tag, folder, bundle, tree, payload) -> RemoteJob:
        home = machine.home
        gpus = choose_gpus("auto", spec.wants_gpu, lambda: machine.nvidia_runtime, spec.name)
        if gpus.warning:
            self._console.warn(gpus.warning.replace("this Docker engine", f"Docker on {self._transport.name}"))
        env = dict(spec.env)
        env["RUNPLZ_OUT"] = OUT_DIR
        if machine.uid:
            env.setdefault("HOME", "/tmp")
        name = container_name(app, spec.name, run)
        container = ContainerRun(
            image=tag,
            argv=("python3", f"{BUNDLE_DIR}/{BOOT_SCRIPT}", f"{RUN_DIR}/{PAYLOAD_FILE}"),
            name=name,
            env=env,
            mounts=(
                Mount(f"{home}/{folder}/{OUT}", OUT_DIR),
                Mount(f"{home}/{folder}/{CTL}", RUN_DIR),
                Mount(f"{home}/{folder}/{REPO}", REPO_DIR),
                Mount(f"{home}/{bundle}", BUNDLE_DIR, read_only=True),
            ),
            workdir=REPO_DIR,
            user=f"{machine.uid}:{machine.gid}",
            gpus=gpus.flag,
            labels={"runplz.app": app, "runplz.function": spec.name, "runplz.run": run},
        )
        return RemoteJob(folder, tuple(docker_run_argv(container)), home, env, payload, tree, name)

    def _native_job(self, spec, plan, machine, repo_root, folder, bundle, tree, payload) -> RemoteJob:
        home = machine.home
        steps, parts = native_steps(
            plan, repo_root, self._trees, lambda path: f"{home}/{tree}" + ("" if path == "." else f"/{path}")
        )
        key = digest("remote-venv", machine.python, *parts)
        envs = self._envs_for(self._transport, f"{bundle}/{BOOT_SCRIPT}")
        python = ensure_env(envs, EnvRequest(key, "python3", steps), self._console, self._clock, self._transport.name)
        job_env = dict(spec.env)
        job_env["RUNPLZ_OUT"] = f"{home}/{folder}/{OUT}"
        argv = (python, f"{home}/{bundle}/{BOOT_SCRIPT}", f"{home}/{folder}/{CTL}/{PAYLOAD_FILE}")
        return RemoteJob(folder, argv, f"{home}/{folder}/{REPO}", job_env, payload, tree)

    def _run(self, job: RemoteJob, spec, config: SshConfig, outputs: str, run: str) -> Any:
        jobs = RemoteJobs(
            self._transport, self._clock, self._console, self._output,
            bundle_dir(self._bundle.digest()), config.ssh_ready_wait_seconds,
        )
        limit, reason = float(spec.timeout), f"its timeout of {spec.timeout}s"
        if config.max_runtime_seconds is not None and config.max_runtime_seconds < limit:
            limit, reason = float(config.max_runtime_seconds), f"max_runtime_seconds={config.max_runtime_seconds:g}"
        os.makedirs(outputs, exist_ok=True)
        self._console.info(f"running {spec.name} on {self._transport.name} (run {run})")
        jobs.start(job)
        started = self._clock.monotonic()
        try:
            finished = jobs.follow(job, started + limit)
        except PastDeadline:
            jobs.stop(job)
            jobs.fetch_outputs(job, outputs)
            raise RunTimeout(
                f"{spec.name} ran past {reason} on {self._transport.name}; killed this run's "
                "process group (other jobs on the box were not touched)"
            ) from None
        except KeyboardInterrupt:
            self._console.warn(f"interrupted: stopping the run on {self._transport.name}")
            jobs.stop(job)
            jobs.fetch_outputs(job, outputs)
            raise
        received = jobs.fetch_outputs(job, outputs)
        self._console.info(
            f"{spec.name} finished with exit code {finished.exit_code} in "
            f"{self._clock.monotonic() - started:.1f}s; {_size(received)} of outputs in {outputs}"
        )
        return settle_text(finished.result, finished.exit_code, run)
