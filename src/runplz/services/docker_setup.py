"""Docker mode of the remote run path: the image built on the box (unless it
has it), the job a container there with the run folder mounted."""

from __future__ import annotations

from typing import Callable

from ..domain.call import FunctionCall
from ..domain.container_run import ContainerRun, Mount, docker_prefix, docker_run_argv
from ..domain.layout import BOOT_SCRIPT, BUNDLE_DIR, OUT_DIR, PAYLOAD_FILE, REPO_DIR, RUN_DIR
from ..domain.local_plan import choose_gpus
from ..domain.machine import Machine, docker_shell
from ..domain.naming import container_name
from ..domain.remote_layout import CTL, OUT, REPO
from ..ports.console import Console
from ..ports.container_engine import BuildRequest, ContainerEngine
from ..ports.transport import Transport
from .images import ImageBuilder
from .remote_run import RemoteJob, RunPlace

EngineFor = Callable[[Transport, tuple[str, ...]], ContainerEngine]  # (transport, docker argv prefix)
ImagesFor = Callable[[ContainerEngine], ImageBuilder]


class DockerSetup:
    docker = True

    def __init__(self, transport: Transport, engine_for: EngineFor, images_for: ImagesFor, console: Console) -> None:
        self._transport = transport
        self._engine_for = engine_for
        self._images_for = images_for
        self._console = console
        self._base: BuildRequest | None = None

    def checks(self, call: FunctionCall, repo_root: str, anchored: frozenset[str]) -> dict[str, str]:
        """The base image's tag (no engine call), to ask the box for it."""
        images = self._images_for(self._engine_for(self._transport, ("docker",)))
        self._base = images.base_request(call.app, call.spec.image, repo_root, anchored)
        return {"image": docker_shell("image", "inspect", "--format", "x", self._base.tag) + " >/dev/null 2>&1 && echo yes"}

    def job(self, call: FunctionCall, place: RunPlace, machine: Machine) -> RemoteJob:
        assert self._base is not None, "checks() plans the image first"
        if machine.fact("image") != "yes":
            self._images_for(self._engine_for(self._transport, machine.docker_command)).build(self._base)
        spec, home, folder = call.spec, machine.home, place.folder
        gpus = choose_gpus("auto", spec.wants_gpu, lambda: machine.nvidia_runtime, spec.name)
        if gpus.warning:
            self._console.warn(gpus.warning.replace("this Docker engine", f"Docker on {self._transport.name}"))
        env = dict(spec.env)
        env["RUNPLZ_OUT"] = OUT_DIR
        if machine.uid:
            env.setdefault("HOME", "/tmp")
        name = container_name(call.app, spec.name, place.run)
        docker = machine.docker_command
        container = ContainerRun(
            image=self._base.tag,
            argv=("python3", f"{BUNDLE_DIR}/{BOOT_SCRIPT}", f"{RUN_DIR}/{PAYLOAD_FILE}"),
            name=name,
            env=env,
            mounts=(
                Mount(f"{home}/{folder}/{OUT}", OUT_DIR),
                Mount(f"{home}/{folder}/{CTL}", RUN_DIR),
                Mount(f"{home}/{folder}/{REPO}", REPO_DIR),
                Mount(f"{home}/{place.bundle}", BUNDLE_DIR, read_only=True),
            ),
            workdir=REPO_DIR,
            user=f"{machine.uid}:{machine.gid}",
            gpus=gpus.flag,
            labels={"runplz.app": call.app, "runplz.function": spec.name, "runplz.run": place.run},
        )
        argv = docker_run_argv(container, docker_prefix(docker, env))
        return RemoteJob(folder, tuple(argv), home, env, place.payload, name, docker=docker_prefix(docker))
