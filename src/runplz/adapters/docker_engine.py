"""`ContainerEngine` over the ``docker`` CLI."""

from __future__ import annotations

import json
import shutil
from typing import Callable, Mapping, Sequence

from ..domain.errors import (
    BuildError,
    CommandNotFound,
    CommandTimeout,
    ContainerError,
    EngineUnavailable,
    GpuUnavailable,
)
from ..ports.command_runner import CommandRunner
from ..domain.container_run import ContainerRun, docker_prefix, docker_run_argv
from ..ports.container_engine import BuildRequest, ContainerInfo
from .build_context import DOCKERFILE_NAME, write_context

READ_SECONDS = 20  # for a call that only reads (`containers`)
_NVIDIA_TOOLS = ("nvidia-container-runtime-hook", "nvidia-container-runtime")


def _last_lines(text: str, count: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


class DockerEngine:
    """``docker``: the client's executable, or the argv prefix that runs it
    (``["sudo", "-n", "docker"]``)."""

    def __init__(self, runner: CommandRunner, docker: str | Sequence[str] = "docker") -> None:
        self._runner = runner
        self._docker = (docker,) if isinstance(docker, str) else tuple(docker)
        if not self._docker:
            raise ValueError("an empty docker command")
        self._gpus: bool | None = None

    def _run(self, *args: str, **kwargs):
        return self._call([*docker_prefix(self._docker), *args], **kwargs)

    def _call(self, argv: list[str], **kwargs):
        try:
            return self._runner.run(argv, **kwargs)
        except CommandNotFound as exc:
            missing = exc.argv[0] if exc.argv else self._docker[0]
            raise EngineUnavailable(
                f"{missing} is not installed; install Docker, or run natively with "
                "`runplz local --native` / LocalConfig(use_docker=False)"
            ) from None

    def check(self) -> None:
        result = self._run("version", "--format", "{{.Server.Version}}", timeout=60)
        if result.exit_code != 0:
            reason = _last_lines(result.stderr or result.stdout, 1) or "no answer"
            raise EngineUnavailable(
                f"the Docker engine is not answering ({reason}); start it, or run natively "
                "with `runplz local --native`"
            )

    def has_image(self, tag: str) -> bool:
        return self._run("image", "inspect", "--format", "{{.Id}}", tag, timeout=60).exit_code == 0

    def build(self, request: BuildRequest, on_line: Callable[[str], None] | None = None) -> None:
        argv = ["build", "-t", request.tag, "-f", DOCKERFILE_NAME]
        for key, value in sorted(request.labels.items()):
            argv += ["--label", f"{key}={value}"]
        context = write_context(request.dockerfile, request.context)
        try:
            result = self._run(*argv, "-", input=context, on_line=on_line or (lambda line: None))
        finally:
            context.close()
        if result.exit_code != 0:
            raise BuildError(
                f"docker build of {request.tag} failed (exit {result.exit_code}):\n"
                + _last_lines(result.stdout)
            )

    def latest_image(self, labels: Mapping[str, str]) -> str | None:
        argv = ["images", "--format", "{{.Repository}}:{{.Tag}}"]
        for key, value in sorted(labels.items()):
            argv += ["--filter", f"label={key}={value}"]
        tags = [
            line.strip() for line in self._run(*argv, timeout=60).stdout.splitlines()
            if line.strip() and "<none>" not in line
        ]
        if len(tags) < 2:
            return tags[0] if tags else None
        # `docker images` orders by whole seconds; inspect has nanoseconds.
        created = self._run("image", "inspect", "--format", "{{.Created}}", *tags, timeout=60)
        stamps = created.stdout.split()
        if created.exit_code != 0 or len(stamps) != len(tags):
            return tags[0]
        return max(zip(stamps, tags))[1]

    def supports_gpus(self) -> bool:
        if self._gpus is None:
            result = self._run("info", "--format", "{{json .Runtimes}}", timeout=60)
            runtimes = {}
            if result.exit_code == 0:
                try:
                    runtimes = json.loads(result.stdout or "{}") or {}
                except ValueError:
                    runtimes = {}
            self._gpus = any("nvidia" in name for name in runtimes) or any(
                shutil.which(tool) for tool in _NVIDIA_TOOLS
            )
        return self._gpus

    def run(self, run: ContainerRun) -> int:
        if run.gpus and not self.supports_gpus():
            raise GpuUnavailable("this Docker engine has no NVIDIA runtime for --gpus")
        argv = docker_run_argv(run, docker_prefix(self._docker, run.env))
        try:
            result = self._call(argv, env=dict(run.env), timeout=run.timeout, inherit=True)
        except (CommandTimeout, KeyboardInterrupt):
            self.remove(run.name)
            raise
        if result.exit_code == 125 and not self.has_image(run.image):
            raise ContainerError(f"no such image {run.image}")
        return result.exit_code

    def remove(self, name: str) -> None:
        self._run("rm", "-f", name, timeout=120)

    def containers(self, label: str) -> tuple[ContainerInfo, ...]:
        if not label or "=" in label:
            raise ValueError(f"a label name without '=' is needed, not {label!r}")
        listed = self._reading("ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={label}")
        ids = listed.stdout.split()
        if not ids:
            return ()
        # One inspect for all; a container removed meanwhile is missing from it (and makes it exit 1).
        inspected = self._reading("container", "inspect", *ids, check=False)
        try:
            items = json.loads(inspected.stdout or "[]")
        except ValueError:
            reason = _last_lines(inspected.stderr or inspected.stdout, 1)
            raise EngineUnavailable(f"docker container inspect gave no answer runplz can read ({reason})") from None
        found = [_container_info(item) for item in items if isinstance(item, dict)]
        return tuple(sorted((info for info in found if label in info.labels), key=lambda info: info.name))

    def _reading(self, *args: str, check: bool = True):
        """A docker call that only reads; an engine that does not answer is `EngineUnavailable`."""
        try:
            result = self._run(*args, timeout=READ_SECONDS)
        except CommandTimeout:
            raise EngineUnavailable(f"the Docker engine did not answer within {READ_SECONDS}s") from None
        if check and result.exit_code != 0:
            reason = _last_lines(result.stderr or result.stdout, 1) or f"exit {result.exit_code}"
            raise EngineUnavailable(f"the Docker engine is not answering ({reason})")
        return result


def _container_info(item: dict) -> ContainerInfo:
    state = item.get("State") if isinstance(item.get("State"), dict) else {}
    config = item.get("Config") if isinstance(item.get("Config"), dict) else {}
    labels = config.get("Labels") if isinstance(config.get("Labels"), dict) else {}
    status = str(state.get("Status") or "unknown")
    code = state.get("ExitCode")
    return ContainerInfo(
        name=str(item.get("Name") or item.get("Id") or "?").lstrip("/"),
        state=status,
        labels={str(k): str(v) for k, v in labels.items()},
        exit_code=code if isinstance(code, int) and status in ("exited", "dead") else None,
    )
