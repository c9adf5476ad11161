"""The ssh backend: run a function on a box the user owns.

One connection per run. The run's code goes straight into its own folder on
the box (fixed at its upload, whatever runs next); the job runs detached
under a supervisor that enforces its time limit (it survives a dropped
connection or a dead driver); the driver follows its log and brings outputs
back on success and on failure.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

import attrs

from ..domain.call import FunctionCall
from ..domain.config import SshConfig
from ..domain.container_run import ContainerRun, Mount, docker_prefix, docker_run_argv
from ..domain.errors import BuildError, NoSpaceLeft, RemoteError, RunTimeout, TransportError, says_no_space
from ..domain.hashing import digest
from ..domain.host import SshTarget
from ..domain.layout import BOOT_SCRIPT, BUNDLE_DIR, OUT_DIR, PAYLOAD_FILE, REPO_DIR, RUN_DIR
from ..domain.limits import RunLimit, run_limit
from ..domain.local_plan import NativePlan, choose_gpus, native_plan
from ..domain.machine import (
    Machine,
    banner_problem,
    docker_problem,
    docker_shell,
    missing_tools,
    parse_probe,
    probe_script,
    spec_warnings,
)
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
from .remote_run import Finished, PastDeadline, RemoteJob, RemoteJobs
from .remote_upload import Uploader, free_mb, no_space, size_text
from .repo import find_repo_root, inside, relative_posix
from .runs import dispatch_for, new_run_id, settle_text
from .tree import TreeScanner



@attrs.frozen
class SshSettings:
    outputs_dir: str  # absolute, on this machine
    config: SshConfig
    target: SshTarget


def _import_roots(plan: NativePlan, repo_root: str, run_repo: str) -> list[str]:
    """Where the run's own copy of each editable local package imports from
    (``src/`` layouts and flat ones), so the job never imports another run's code."""
    roots = []
    for step in plan.steps:
        if step.local and step.editable:
            path = step.packages[0]
            base = run_repo if path == "." else f"{run_repo}/{path}"
            src = os.path.join(repo_root, *path.split("/"), "src")
            roots.append(f"{base}/src" if os.path.isdir(src) else base)
    return roots


class SshBackend:
    def __init__(
        self,
        transport: Transport,
        engine_for: Callable[[Transport, tuple[str, ...]], ContainerEngine],  # (transport, docker argv prefix)
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
        anchored = frozenset({relative_posix(outputs, repo_root)}) if inside(outputs, repo_root) else frozenset()
        bundle_local = self._bundle.materialize()
        bundle = bundle_dir(self._bundle.digest())
        basis = repo_tree(digest(socket.gethostname(), repo_root))
        base = None
        checks = {"bundle": f"test -f {bundle}/{BOOT_SCRIPT} && echo yes"}
        if config.use_docker:  # the base image's tag (no engine call), to ask the box for it
            base = self._images_for(self._engine_for(self._transport, ("docker",))).base_request(
                call.app, spec.image, repo_root, anchored
            )
            checks["image"] = docker_shell("image", "inspect", "--format", "x", base.tag) + " >/dev/null 2>&1 && echo yes"
        run = new_run_id(self._clock)
        folder = run_dir(run)
        where = self._transport.name
        uploader = Uploader(self._transport, self._trees, self._console)
        jobs = RemoteJobs(
            self._transport, self._clock, self._console, self._output, bundle, config.ssh_ready_wait_seconds
        )
        limit = run_limit(spec.timeout, config.max_runtime_seconds)
        chosen = uploader.select(repo_root, anchored)
        self._console.info(f"connecting to {where}")
        self._transport.connect(wait=config.ssh_ready_wait_seconds)
        try:
            machine = self._probe(spec, checks, config.use_docker)
            try:
                if machine.fact("bundle") != "yes":
                    uploader.bundle(bundle_local, bundle, run)
                sent = uploader.repo(chosen, f"{folder}/{REPO}", basis)
                self._console.info(f"uploaded {size_text(sent)} of changes to {where}")
                payload = encode_dispatch(dispatch_for(call, repo_root, run))
                if config.use_docker:
                    if machine.fact("image") != "yes":
                        self._images_for(self._engine_for(self._transport, machine.docker_command)).build(base)
                    job = self._docker_job(spec, call.app, run, machine, base.tag, folder, bundle, payload)
                else:
                    for warning in plan.warnings:
                        self._console.warn(warning)
                    job = self._native_job(spec, plan, machine, repo_root, folder, bundle, payload)
                job = attrs.evolve(job, limit=limit.seconds if limit else None, basis=(f"{folder}/{REPO}", basis))
            except BaseException as exc:
                if isinstance(exc, NoSpaceLeft) or (isinstance(exc, BuildError) and says_no_space(str(exc))):
                    raise self._no_space(jobs, folder, "uploading and preparing the run") from None
                jobs.discard(folder)  # nothing started: leave no half-made run behind
                raise
            os.makedirs(outputs, exist_ok=True)
            self._console.info(f"running {spec.name} on {where} (run {run})")
            try:
                jobs.start(job)
            except NoSpaceLeft:
                raise self._no_space(jobs, folder, "starting the run") from None
            except KeyboardInterrupt:
                jobs.stop(job)  # it may have started before the interrupt
                raise
            return self._run(jobs, job, spec, outputs, run, limit)
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

    def _probe(self, spec, checks: dict[str, str], docker: bool) -> Machine:
        """What the box has; one line (TransportError) for what a run cannot do without."""
        result = self._transport.run(["sh", "-c", probe_script(checks, docker=docker)], timeout=120)
        machine = parse_probe(result.stdout)
        where = self._transport.name
        problem = banner_problem(machine, where) or missing_tools(machine, where)
        if docker:
            problem = problem or docker_problem(machine, where)
        if problem:
            raise TransportError(problem)
        if docker and machine.docker_command[:1] == ("sudo",):
            self._console.info(f"{where}: docker needs sudo there; using `{' '.join(machine.docker_command)}`")
        for warning in spec_warnings(spec, machine, where):
            self._console.warn(warning)
        return machine

    def _docker_job(self, spec, app, run, machine, tag, folder, bundle, payload) -> RemoteJob:
        home = machine.home
        gpus = choose_gpus("auto", spec.wants_gpu, lambda: machine.nvidia_runtime, spec.name)
        if gpus.warning:
            self._console.warn(gpus.warning.replace("this Docker engine", f"Docker on {self._transport.name}"))
        env = dict(spec.env)
        env["RUNPLZ_OUT"] = OUT_DIR
        if machine.uid:
            env.setdefault("HOME", "/tmp")
        name = container_name(app, spec.name, run)
        docker = machine.docker_command
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
        argv = docker_run_argv(container, docker_prefix(docker, env))
        return RemoteJob(folder, tuple(argv), home, env, payload, name, docker=docker_prefix(docker))

    def _native_job(self, spec, plan, machine, repo_root, folder, bundle, payload) -> RemoteJob:
        home = machine.home
        run_repo = f"{home}/{folder}/{REPO}"
        steps, parts = native_steps(
            plan, repo_root, self._trees, lambda path: run_repo + ("" if path == "." else f"/{path}")
        )
        key = digest("remote-venv", machine.python, *parts)
        envs = self._envs_for(self._transport, f"{bundle}/{BOOT_SCRIPT}")
        python = ensure_env(envs, EnvRequest(key, "python3", steps), self._console, self._clock, self._transport.name)
        job_env = dict(spec.env)
        job_env["RUNPLZ_OUT"] = f"{home}/{folder}/{OUT}"
        roots = _import_roots(plan, repo_root, run_repo)
        if roots:
            job_env["PYTHONPATH"] = os.pathsep.join(roots + ([spec.env["PYTHONPATH"]] if spec.env.get("PYTHONPATH") else []))
        argv = (python, f"{home}/{bundle}/{BOOT_SCRIPT}", f"{home}/{folder}/{CTL}/{PAYLOAD_FILE}")
        return RemoteJob(folder, argv, run_repo, job_env, payload)

    def _run(self, jobs: RemoteJobs, job: RemoteJob, spec, outputs: str, run: str, limit: RunLimit | None) -> Any:
        where = self._transport.name
        started = self._clock.monotonic()
        timed_out = RunTimeout(
            f"{spec.name} ran past {limit.reason if limit else 'its time limit'} on {where}; killed this run's "
            "process group (other jobs on the box were not touched)"
        )
        try:
            finished = jobs.follow(job, started + limit.seconds + 5 if limit else None)
        except PastDeadline:
            jobs.stop(job)
            self._outputs_anyway(jobs, job, outputs)
            raise timed_out from None
        except KeyboardInterrupt:
            self._console.warn(f"interrupted: stopping the run on {where}")
            jobs.stop(job)
            self._outputs_anyway(jobs, job, outputs)
            raise
        try:
            received = jobs.fetch_outputs(job, outputs)
        except TransportError as exc:
            raise type(exc)(
                f"{exc}; the outputs stay on {where} in ~/{job.run_dir}/{OUT} ({spec.name} itself "
                f"finished with exit code {finished.exit_code})"
            ) from None
        if finished.timed_out:
            raise timed_out
        self._console.info(
            f"{spec.name} finished with exit code {finished.exit_code} in "
            f"{self._clock.monotonic() - started:.1f}s; {size_text(received)} of outputs in {outputs}"
        )
        return self._settle(finished, run)

    def _outputs_anyway(self, jobs: RemoteJobs, job: RemoteJob, outputs: str) -> None:
        """Bring outputs home on the way out of a failed run, without hiding why it failed."""
        try:
            jobs.fetch_outputs(job, outputs)
        except TransportError as exc:
            self._console.warn(f"{exc}; the outputs stay on {self._transport.name} in ~/{job.run_dir}/{OUT}")

    def _settle(self, finished: Finished, run: str) -> Any:
        if finished.note and finished.result is None:
            raise RemoteError("RunplzSupervisorLost", finished.note, "", finished.exit_code or 255)
        if finished.note:
            self._console.warn(finished.note)
        try:
            return settle_text(finished.result, finished.exit_code, run)
        except RemoteError as exc:
            if says_no_space(f"{exc.remote_message}\n{exc.remote_traceback}"):
                free = free_mb(self._transport)
                self._console.warn(
                    f"no space left on {self._transport.name} "
                    f"({free if free is not None else '?'} MB free in ~/.runplz)"
                )
            raise
