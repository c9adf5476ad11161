"""Per-backend configs: frozen, validated at construction."""

from __future__ import annotations

import re

import attrs

from . import slurm as _slurm
from .errors import ConfigError
from .validate import (
    fail,
    is_bool,
    one_of,
    optional_login,
    optional_nonempty_str,
    optional_port,
    optional_positive_number,
    positive_number,
)

_SSH_READY_WAIT_DEFAULT = 1800


@attrs.frozen(kw_only=True)
class BrevConfig:
    """How the brev backend provisions and treats its box."""

    auto_create_instances: bool = attrs.field(default=False, validator=is_bool)
    instance_type: str | None = attrs.field(default=None, validator=optional_nonempty_str)
    mode: str = attrs.field(default="container", validator=one_of("container", "vm"))
    use_docker: bool = attrs.field(default=True, validator=is_bool)
    on_finish: str = attrs.field(default="stop", validator=one_of("stop", "delete", "leave"))
    max_runtime_seconds: float | None = attrs.field(
        default=None, validator=optional_positive_number
    )
    ssh_ready_wait_seconds: float = attrs.field(
        default=_SSH_READY_WAIT_DEFAULT, validator=positive_number
    )

    def __attrs_post_init__(self) -> None:
        if self.mode == "container" and not self.use_docker:
            raise ConfigError(
                "BrevConfig.use_docker=False contradicts mode='container' (the box is the "
                "image); use mode='vm' for a native venv"
            )


@attrs.frozen(kw_only=True)
class SshConfig:
    """How the ssh backend reaches and uses a box the user owns."""

    user: str | None = attrs.field(default=None, validator=optional_login)
    port: int | None = attrs.field(default=None, validator=optional_port)
    use_docker: bool = attrs.field(default=True, validator=is_bool)
    on_finish: str = attrs.field(default="leave")
    max_runtime_seconds: float | None = attrs.field(
        default=None, validator=optional_positive_number
    )
    ssh_ready_wait_seconds: float = attrs.field(
        default=_SSH_READY_WAIT_DEFAULT, validator=positive_number
    )

    @on_finish.validator
    def _leave_only(self, attribute: attrs.Attribute, value: object) -> None:
        if value != "leave":
            raise fail(
                "SshConfig", "on_finish", "'leave' (runplz never stops or deletes a box you own)",
                value,
            )


_PYTHON_VERSION = re.compile(r"3\.(1[0-9])")


def _add_python_choice(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, str) and (value in ("auto", "none") or _PYTHON_VERSION.fullmatch(value)):
        return
    raise fail("ModalConfig", "add_python", "'auto', 'none' or a Python version like '3.11' (3.10 or later)", value)


@attrs.frozen(kw_only=True)
class ModalConfig:
    """Modal takes its hardware from `@app.function`; this holds how images are made.

    ``add_python``: "auto" (default) adds this machine's Python version to a
    registry image that is a bare OS (ubuntu, debian, nvidia/cuda...), which
    Modal needs to run a function; "none" never adds one; "3.11" (say) always
    adds that version.
    """

    add_python: str = attrs.field(default="auto", validator=_add_python_choice)


_DEVICE_LIST = re.compile(r"[0-9]+(,[0-9]+)*")


def _gpus_choice(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, str) and (value in ("auto", "all", "none") or _DEVICE_LIST.fullmatch(value)):
        return
    raise fail(
        "LocalConfig", "gpus", "'auto', 'all', 'none' or a device list like '0,1'", value
    )


@attrs.frozen(kw_only=True)
class LocalConfig:
    """The local backend: Docker on this machine, or a native venv.

    gpus: 'auto' passes every GPU when the function asks for one and the engine
    supports it (a warning when it does not); 'all' always passes them; 'none'
    never does; '0,1' passes those devices.
    """

    use_docker: bool = attrs.field(default=True, validator=is_bool)
    gpus: str = attrs.field(default="auto", validator=_gpus_choice)


def _gpu_types(value: object) -> tuple[tuple[str, str | None], ...]:
    if isinstance(value, tuple) and all(isinstance(pair, tuple) and len(pair) == 2 for pair in value):
        value = dict(value)  # already converted (attrs.evolve)
    return tuple(sorted(_slurm.gpu_types(value).items()))


@attrs.frozen(kw_only=True)
class SlurmConfig:
    """How the slurm backend submits a function's run as a batch job.

    workdir: the folder on the cluster's shared file system that holds runplz's
    runs and venvs (None: the login's $HOME). partition, account, qos,
    constraint: their sbatch options. gpu_flag: "gres" (``--gres=gpu:TYPE:N``)
    or "gpus" (``--gpus=TYPE:N``); gpu_types maps a function's ``gpu`` to the
    cluster's GRES type (None: any; default: the model in lower case).
    extra_directives: more sbatch options (``["--mail-type=END"]``).
    container: "none" (a cached venv on the shared file system), "apptainer"
    or "pyxis" (the function's ``Image.from_registry`` image, as it is).
    requeue: whether Slurm may requeue the job when it is preempted.
    poll_seconds: the first wait between looks at the job's state (it backs
    off to max_poll_seconds).
    """

    workdir: str | None = attrs.field(default=None, validator=_slurm.optional_workdir)
    partition: str | None = attrs.field(default=None, validator=_slurm.optional_name)
    account: str | None = attrs.field(default=None, validator=_slurm.optional_name)
    qos: str | None = attrs.field(default=None, validator=_slurm.optional_name)
    constraint: str | None = attrs.field(default=None, validator=_slurm.optional_constraint)
    gpu_flag: str = attrs.field(default="gres", validator=one_of(*_slurm.GPU_FLAGS))
    gpu_types: tuple[tuple[str, str | None], ...] = attrs.field(factory=tuple, converter=_gpu_types)
    extra_directives: tuple[str, ...] = attrs.field(factory=tuple, converter=_slurm.extra_directives)
    container: str = attrs.field(default="none", validator=one_of(*_slurm.CONTAINERS))
    requeue: bool = attrs.field(default=False, validator=is_bool)
    max_runtime_seconds: float | None = attrs.field(default=None, validator=optional_positive_number)
    ssh_ready_wait_seconds: float = attrs.field(default=_SSH_READY_WAIT_DEFAULT, validator=positive_number)
    poll_seconds: float = attrs.field(default=2.0, validator=positive_number)
    max_poll_seconds: float = attrs.field(default=30.0, validator=positive_number)

    def __attrs_post_init__(self) -> None:
        if self.max_poll_seconds < self.poll_seconds:
            raise ConfigError(
                f"SlurmConfig.max_poll_seconds ({self.max_poll_seconds:g}) must be at least "
                f"poll_seconds ({self.poll_seconds:g})"
            )
