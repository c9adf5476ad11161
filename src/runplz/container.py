"""The composition root: the one place that builds adapters and backends.

Embedding tools override providers, e.g.::

    from runplz.container import Container
    from runplz.testing import FakeContainerEngine

    container = Container()
    container.container_engine.override(FakeContainerEngine())
    app.bind("local", container=container)

The brev backend reaches Brev through two ports, ``brev_catalog`` (`brev search`)
and ``brev_instances`` (create, ls, start, stop, delete, refresh), both served by
``brev_cli`` unless overridden; the modal backend through ``modal_platform``
(the `ServerlessPlatform` port; `runplz.testing.FakeModal` runs jobs here); ``box_ledger`` records the ephemeral boxes a
driver creates (``$RUNPLZ_STATE_DIR``, else ``$XDG_STATE_HOME/runplz``, else
``~/.local/state/runplz``; folder ``boxes``).
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from typing import Any, Callable


class _Hide:
    """A meta-path finder that makes some top-level modules unimportable."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in self.names:
            raise ImportError(f"{name} hidden while dependency-injector loads")
        return None


def _import_dependency_injector():
    """Import dependency-injector without its optional integrations.

    At import it probes for yaml, pydantic, FastAPI, Starlette and Werkzeug;
    where they are installed that costs ~0.2 s on every run, for features
    runplz never uses. Hide the ones not yet imported while it loads.
    """
    optional = {"yaml", "pydantic", "pydantic_settings", "fastapi", "fast_depends", "starlette", "werkzeug"}
    hide = _Hide({name for name in optional if name not in sys.modules})
    sys.meta_path.insert(0, hide)
    try:
        from dependency_injector import containers, providers
    finally:
        sys.meta_path.remove(hide)
    return containers, providers


containers, providers = _import_dependency_injector()

from .adapters.background import report_run
from .adapters.driver_log import DriverLog
from .adapters.file_run_store import FileRunStore
from .adapters.job_output import StdoutJobOutput
from .adapters.remote_venv import RemoteVenvBuilder
from .adapters.local_transport import LocalTransport
from .adapters.ssh_transport import SshTransport
from .adapters.transport_runner import TransportCommandRunner
from .adapters.stderr_console import StderrConsole
from .adapters.subprocess_runner import SubprocessRunner
from .adapters.system_clock import SystemClock
from .domain.bind import BindRequest
from .domain.host import parse_target
from .services.bundle import RuntimeBundle
from .services.remote_path import RemoteRunPath
from .services.run_recorder import RunRecorder
from .services.remote_setup import job_setup
from .services.repo import check_outputs_dir
from .services.settings import LocalSettings
from .services.ssh_backend import SshBackend, SshSettings
from .services.tree import TreeScanner


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``name`` from ``module``, imported when first called: a run loads its own
    backend's code only (brev, modal, slurm, local Docker, plan and down stay
    unread on an ssh run)."""

    def make(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module, __package__), name)(*args, **kwargs)

    make.__name__ = make.__qualname__ = name
    return make


BackgroundLauncher = _lazy(".adapters.background", "BackgroundLauncher")
BrevArrival = _lazy(".services.brev_arrive", "BrevArrival")
BrevBackend = _lazy(".services.brev_backend", "BrevBackend")
BrevCli = _lazy(".adapters.brev_cli", "BrevCli")
BrevSettings = _lazy(".services.brev_backend", "BrevSettings")
BrevShapes = _lazy(".services.brev_shape", "BrevShapes")
BrevTeardown = _lazy(".services.brev_teardown", "BrevTeardown")
DockerEngine = _lazy(".adapters.docker_engine", "DockerEngine")
FileLedger = _lazy(".adapters.file_ledger", "FileLedger")
ImageBuilder = _lazy(".services.images", "ImageBuilder")
LocalDockerBackend = _lazy(".services.local_docker", "LocalDockerBackend")
LocalNativeBackend = _lazy(".services.local_native", "LocalNativeBackend")
ModalBackend = _lazy(".services.modal_backend", "ModalBackend")
ModalPlatform = _lazy(".adapters.modal_platform", "ModalPlatform")
ModalSettings = _lazy(".services.modal_backend", "ModalSettings")
PlanService = _lazy(".services.plan", "PlanService")
RunDown = _lazy(".services.run_down", "RunDown")
RunReconciler = _lazy(".services.run_reconcile", "RunReconciler")
SlurmBackend = _lazy(".services.slurm_backend", "SlurmBackend")
SlurmCli = _lazy(".adapters.slurm_cli", "SlurmCli")
SlurmSettings = _lazy(".services.slurm_backend", "SlurmSettings")
VenvBuilder = _lazy(".adapters.venv_builder", "VenvBuilder")


def default_cache_dir() -> str:
    explicit = os.environ.get("RUNPLZ_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "runplz")


def default_state_dir() -> str:
    """Where runplz keeps what must survive a crash (the ledger of billed boxes)."""
    explicit = os.environ.get("RUNPLZ_STATE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "runplz")


def _same(value: Any) -> Any:
    return value


def find_uv() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("uv")


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()

    clock = providers.Singleton(SystemClock)
    driver_log = providers.Singleton(DriverLog, enabled=config.no_log_file.as_(lambda off: not off))
    console = providers.Singleton(StderrConsole, quiet=config.quiet.as_(bool), log=driver_log)
    command_runner = providers.Singleton(SubprocessRunner, log=driver_log, verbose=config.verbose.as_(bool))
    container_engine = providers.Singleton(
        DockerEngine, runner=command_runner, docker=config.docker.as_(str)
    )
    python_env_builder = providers.Singleton(
        VenvBuilder,
        runner=command_runner,
        root=config.venv_dir.as_(str),
        uv=providers.Callable(find_uv),
    )
    run_store = providers.Singleton(FileRunStore, folder=config.runs_dir.as_(str))  # the `RunStore` port
    run_recorder = providers.Singleton(
        RunRecorder, store=run_store, clock=clock, log=driver_log, console=console, on_begin=providers.Object(report_run)
    )
    runtime_bundle = providers.Singleton(RuntimeBundle, cache_dir=config.cache_dir.as_(str))
    tree_scanner = providers.Singleton(TreeScanner, cache_dir=config.cache_dir.as_(str))
    image_builder = providers.Factory(
        ImageBuilder,
        engine=container_engine,
        console=console,
        bundle=runtime_bundle,
        trees=tree_scanner,
    )
    local_docker = providers.Factory(
        LocalDockerBackend,
        engine=container_engine,
        images=image_builder,
        console=console,
        clock=clock,
        runs=run_recorder,
    )
    job_output = providers.Singleton(StdoutJobOutput, log=driver_log)
    ssh_transport = providers.Factory(SshTransport, runner=command_runner, clock=clock)
    remote_engine = providers.Factory(  # called with (transport, the docker argv prefix that answers there)
        lambda transport, docker=("docker",): DockerEngine(TransportCommandRunner(transport), docker)
    )
    remote_env_builder = providers.Factory(RemoteVenvBuilder)  # called with (transport, boot)
    remote_image_builder = providers.Factory(  # called with the remote engine
        ImageBuilder, console=console, bundle=runtime_bundle, trees=tree_scanner
    )
    remote_job_setup = providers.Factory(  # called with (mode, transport): "docker", "native" or "inline"
        job_setup,
        engine_for=remote_engine.provider,
        envs_for=remote_env_builder.provider,
        images_for=remote_image_builder.provider,
        trees=tree_scanner,
        console=console,
        clock=clock,
    )
    remote_run_path = providers.Factory(  # called with (transport, settings: RemoteRunSettings)
        RemoteRunPath,
        setup_for=remote_job_setup.provider,
        bundle=runtime_bundle,
        trees=tree_scanner,
        console=console,
        clock=clock,
        output=job_output,
        runs=run_recorder,
    )
    ssh_backend = providers.Factory(  # called with (transport, settings); a map input gets a transport of its own
        SshBackend, paths=remote_run_path.provider, transports=ssh_transport.provider
    )
    local_login = providers.Factory(  # this machine as a Slurm login node: its home is the transport's folder
        LocalTransport, runner=command_runner, root=providers.Callable(os.path.expanduser, "~")
    )
    slurm_scheduler = providers.Factory(SlurmCli)  # the `BatchScheduler` port; called with (transport)
    slurm_backend = providers.Factory(  # called with (transport, settings: SlurmSettings)
        SlurmBackend, paths=remote_run_path.provider, schedulers=slurm_scheduler.provider, clock=clock,
        runs=run_recorder,
    )
    brev_cli = providers.Singleton(BrevCli, runner=command_runner, clock=clock)
    brev_catalog = providers.Callable(_same, brev_cli)  # the `Catalog` port; override alone if you like
    brev_instances = providers.Callable(_same, brev_cli)  # the `Instances` port
    box_ledger = providers.Singleton(FileLedger, folder=config.ledger_dir.as_(str))
    brev_shapes = providers.Factory(BrevShapes, catalog=brev_catalog, console=console)
    brev_arrival = providers.Factory(
        BrevArrival, instances=brev_instances, shapes=brev_shapes, ledger=box_ledger, console=console, clock=clock
    )
    brev_teardown = providers.Factory(BrevTeardown, instances=brev_instances, ledger=box_ledger, console=console)
    brev_backend = providers.Factory(  # called with settings: BrevSettings
        BrevBackend,
        arrival=brev_arrival,
        teardown=brev_teardown,
        paths=remote_run_path.provider,
        transports=ssh_transport.provider,
        clock=clock,
        runs=run_recorder,
    )
    modal_platform = providers.Singleton(ModalPlatform, log=driver_log)  # the `ServerlessPlatform` port
    modal_backend = providers.Factory(  # called with settings: ModalSettings
        ModalBackend,
        platform=modal_platform,
        bundle=runtime_bundle,
        trees=tree_scanner,
        console=console,
        clock=clock,
        runs=run_recorder,
    )
    launcher = providers.Singleton(BackgroundLauncher)  # the `Launcher` port (`--detach`)
    run_down = providers.Factory(  # `runplz down`
        RunDown, store=run_store, clock=clock, console=console, engine=container_engine,
        instances=brev_instances, ledger=box_ledger, transports=ssh_transport.provider,
        bundle_digest=runtime_bundle.provided.digest,
        schedulers=slurm_scheduler.provider, login=local_login.provider,
    )
    run_reconciler = providers.Factory(  # `runplz ps` / `status`: asks the backends, reads only
        RunReconciler, engine=container_engine, instances=brev_instances,
        # ssh gives up connecting in 5s, well within the checks' 10s budget; what a
        # check that misses the budget started is stopped (the fence marks it)
        transports=providers.Factory(SshTransport, runner=command_runner, clock=clock, connect_timeout=5).provider,
        clock=clock, stragglers=providers.Object(_lazy(".adapters.marked_processes", "ProcessFence")),
        schedulers=slurm_scheduler.provider, login=local_login.provider,
    )
    plan_service = providers.Factory(  # `runplz plan`: reads only (its TreeScanner has no cache folder)
        PlanService,
        catalog=brev_catalog,
        instances=brev_instances,
        bundle=runtime_bundle,
        trees=providers.Factory(TreeScanner),
        cache_dir=config.cache_dir.as_(str),
    )
    local_native = providers.Factory(
        LocalNativeBackend,
        envs=python_env_builder,
        runner=command_runner,
        bundle=runtime_bundle,
        trees=tree_scanner,
        console=console,
        clock=clock,
        runs=run_recorder,
    )


def make_container(cache_dir: str | None = None, state_dir: str | None = None) -> Container:
    """A Container with configuration read from this environment."""
    container = Container()
    root = cache_dir or default_cache_dir()
    state = state_dir or default_state_dir()
    container.config.from_dict(
        {
            "cache_dir": root,
            "ledger_dir": os.path.join(state, "boxes"),
            "runs_dir": os.path.join(state, "runs"),
            "venv_dir": os.path.join(root, "venvs"),
            "docker": os.environ.get("RUNPLZ_DOCKER", "docker"),
        }
    )
    return container


_default: Container | None = None


def default_container() -> Container:
    global _default
    if _default is None:
        _default = make_container()
    return _default


def backend_for(container: Container, request: BindRequest, app: Any):
    """The backend a bind asks for, built by the container."""
    check_outputs_dir(request.outputs_dir, app.script)
    outputs = os.path.abspath(os.path.expanduser(request.outputs_dir))
    if request.backend == "ssh":
        target = parse_target(request.host, app.ssh_config)
        settings = SshSettings(outputs, app.ssh_config, target)
        return container.ssh_backend(transport=container.ssh_transport(target=target), settings=settings)
    if request.backend == "slurm":
        settings = SlurmSettings(outputs, app.slurm_config, request.host)
        if request.host is None:
            return container.slurm_backend(transport=container.local_login(), settings=settings)
        target = parse_target(request.host, app.ssh_config)
        return container.slurm_backend(transport=container.ssh_transport(target=target), settings=settings)
    if request.backend == "brev":
        return container.brev_backend(settings=BrevSettings(outputs, app.brev_config, request.instance))
    if request.backend == "modal":
        return container.modal_backend(settings=ModalSettings(outputs, app.modal_config))
    config = app.local_config
    native = (not config.use_docker) if request.native is None else request.native
    settings = LocalSettings(
        outputs_dir=outputs,
        build=request.build,
        config=config,
        uid=os.getuid(),
        gid=os.getgid(),
        python=sys.executable,
        python_version=sys.version,
    )
    if native:
        return container.local_native(settings=settings)
    return container.local_docker(settings=settings)
