"""A function's run as a Slurm batch job: its ``#SBATCH`` directives and its script.

Pure: the slurm backend renders here what it submits; `runplz plan slurm`
shows the same text.

The mapping from a function's spec:
- ``gpu`` / ``num_gpus`` (or ``min_gpu_memory`` alone): ``--gres=gpu[:TYPE]:N``,
  or ``--gpus=[TYPE:]N`` with ``SlurmConfig(gpu_flag="gpus")``. TYPE is
  ``SlurmConfig.gpu_types[gpu]`` when given (None: any type), else the GPU's
  model in lower case (``A100-80GB`` -> ``a100``);
- ``min_cpu``: ``--cpus-per-task`` (rounded up); ``min_memory`` (GB):
  ``--mem`` in MiB (rounded up); ``min_disk`` (GB): ``--tmp`` in MiB;
- the run's time limit (``timeout``, ``max_runtime_seconds``): ``--time`` as
  D-HH:MM:SS (Slurm rounds it up to whole minutes); with neither, no
  ``--time`` (the partition's default holds the job; the script's `NO_TIME`
  comment says so);
- ``env``: never a directive; its values go to a mode-600 file in the run
  folder that the script sources (nothing on a command line or in squeue).
``min_gpu_memory`` has no Slurm directive: a GPU type or a constraint says it.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any, Mapping, Sequence

from .errors import ConfigError
from .image import RegistryBase
from .validate import show

GPU_FLAGS = ("gres", "gpus")
CONTAINERS = ("none", "apptainer", "pyxis")

# The options runplz writes itself: `extra_directives` may not set them.
MANAGED = frozenset({
    "output", "error", "chdir", "open-mode", "export", "export-file", "wrap", "array", "parsable",
    "job-name", "time", "requeue", "no-requeue", "gres", "gpus", "cpus-per-task", "mem", "tmp",
    "partition", "account", "qos", "constraint", "test-only",
})
# sbatch's one-letter names for them
_MANAGED_SHORT = {
    "o": "output", "e": "error", "D": "chdir", "J": "job-name", "t": "time", "p": "partition",
    "A": "account", "q": "qos", "C": "constraint", "c": "cpus-per-task", "a": "array", "G": "gpus",
}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")  # partition, account, qos
_CONSTRAINT = re.compile(r"[A-Za-z0-9_.:\-\[\]()&|*!,]{1,256}")
_EXTRA = re.compile(r"--?([A-Za-z][A-Za-z0-9-]*)(?:[= ](\S.*))?")
_GRES_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")
# In place of --time when the run has no limit (a comment: sbatch reads on past it).
NO_TIME = "# --time: partition default (no timeout= or SlurmConfig.max_runtime_seconds)"


# --- validation of SlurmConfig's fields (attrs validators) ---


def _owner(instance: Any) -> str:
    return type(instance).__name__


def optional_name(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not _NAME.fullmatch(value)):
        raise ConfigError(
            f"{_owner(instance)}.{attribute.name} must be a Slurm name (letters, digits, '.', '_', "
            f"'+', '-') or None; got {show(value)}"
        )


def optional_constraint(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not _CONSTRAINT.fullmatch(value)):
        raise ConfigError(
            f"{_owner(instance)}.constraint must be a Slurm --constraint expression (features joined "
            f"by & | , with no spaces) or None; got {show(value)}"
        )


def extra_directive(text: Any) -> str:
    """One of ``extra_directives`` as its ``#SBATCH`` option (``"--mail-type=END"``,
    ``"#SBATCH --nice=10"``); `ConfigError` for anything else."""
    if not isinstance(text, str):
        raise ConfigError(f"SlurmConfig.extra_directives holds strings like '--mail-type=END'; got {show(text)}")
    option = text.strip()
    if option.startswith("#SBATCH"):
        option = option[len("#SBATCH"):].strip()
    match = _EXTRA.fullmatch(option)
    if match is None or any(c in option for c in "\n\r\x00"):
        raise ConfigError(
            f"SlurmConfig.extra_directives holds sbatch options like '--mail-type=END' (one line each); "
            f"got {show(text)}"
        )
    name = match.group(1)
    if option.startswith("--"):
        # sbatch takes any unambiguous prefix of a long option (--ti=, --exp=)
        clash = next((m for m in sorted(MANAGED) if m.startswith(name)), None)
    else:
        clash = _MANAGED_SHORT.get(name[0])  # "-t0" is -t with the value 0
    if clash is not None:
        raise ConfigError(
            f"SlurmConfig.extra_directives may not set --{clash} (as {option.split('=')[0].split()[0]}): "
            "runplz sets it (use the SlurmConfig field or the function's spec)"
        )
    return option


def extra_directives(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or value is None:
        raise ConfigError(
            f"SlurmConfig.extra_directives must be a list of sbatch options like ['--mail-type=END']; got {show(value)}"
        )
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"SlurmConfig.extra_directives must be a list of strings; got {show(value)}") from None
    return tuple(extra_directive(item) for item in items)


def gpu_types(value: Any) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"SlurmConfig.gpu_types must map GPU names to Slurm GRES types; got {show(value)}")
    checked: dict[str, str | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"SlurmConfig.gpu_types keys must be GPU names like 'A100'; got {show(key)}")
        if item is not None and (not isinstance(item, str) or not _GRES_TYPE.fullmatch(item)):
            raise ConfigError(
                f"SlurmConfig.gpu_types[{key!r}] must be a GRES type like 'a100' (or None: any type); got {show(item)}"
            )
        checked[key.strip().lower()] = item
    return checked


def optional_workdir(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or any(c.isspace() or c == "\x00" for c in value):
        raise ConfigError(
            f"SlurmConfig.workdir must be a folder path on the cluster (no spaces) or None ($HOME); got {show(value)}"
        )


# --- the mapping ---


def slurm_time(seconds: float) -> str:
    """``--time`` as D-HH:MM:SS (whole seconds, rounded up; at least one)."""
    total = max(1, math.ceil(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def mebibytes(gigabytes: float) -> str:
    """A size in GB as Slurm's MiB count (``--mem=2048M``), rounded up; at least 1."""
    return f"{max(1, math.ceil(gigabytes * 1024 - 1e-9))}M"


def gres_type(gpu: str | None, types: Mapping[str, str | None]) -> str | None:
    """The GRES type a spec's ``gpu`` asks for; None: any GPU."""
    if gpu is None:
        return None
    key = gpu.strip().lower()
    if key in types:
        return types[key]
    if key in ("any", "gpu"):
        return None
    model = re.sub(r"[^a-z0-9_.]+", "", key.partition("-")[0])
    if not model or model.isdigit():
        return None
    return model if _GRES_TYPE.fullmatch(model) else None


def job_name(app: str, function: str) -> str:
    name = _JOB_NAME_BAD.sub("-", f"runplz-{app}-{function}")
    return name[:64]


def sbatch_directives(
    spec: Any,
    config: Any,
    *,
    name: str,
    chdir: str,
    output: str,
    limit_seconds: float | None = None,
    array: str | None = None,
) -> list[str]:
    """The ``#SBATCH`` lines of one run (``array``: an ``--array`` range, for a map)."""
    options = [f"--job-name={name}", f"--chdir={chdir}", f"--output={output}", "--open-mode=append"]
    if array is not None:
        options.append(f"--array={array}")
    if limit_seconds is not None:
        options.append(f"--time={slurm_time(limit_seconds)}")
    if spec.min_cpu is not None:
        options.append(f"--cpus-per-task={max(1, math.ceil(spec.min_cpu - 1e-9))}")
    if spec.min_memory is not None:
        options.append(f"--mem={mebibytes(spec.min_memory)}")
    if spec.min_disk is not None:
        options.append(f"--tmp={mebibytes(spec.min_disk)}")
    if spec.wants_gpu:
        kind = gres_type(spec.gpu, dict(config.gpu_types))
        count = spec.num_gpus
        if config.gpu_flag == "gpus":
            options.append(f"--gpus={kind + ':' if kind else ''}{count}")
        else:
            options.append(f"--gres=gpu:{kind + ':' if kind else ''}{count}")
    for field in ("partition", "account", "qos", "constraint"):
        value = getattr(config, field)
        if value is not None:
            options.append(f"--{field}={value}")
    options.append("--requeue" if config.requeue else "--no-requeue")
    options.extend(config.extra_directives)
    return [f"#SBATCH {option}" for option in options]


def _pyxis_image(ref: str) -> str:
    """enroot's spelling of an image reference: ``REGISTRY#IMAGE`` when a registry is named."""
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return f"{first}#{rest}"
    return ref


def container_argv(
    config: Any, image: Any, argv: Sequence[str], *, workdir: str, cwd: str, gpus: bool
) -> list[str]:
    """The job's command line under ``config.container``: as it is ("none"), in
    ``apptainer exec`` of the registry image, or in ``srun --container-image`` (pyxis)."""
    if config.container == "none":
        return list(argv)
    ref = image.base.ref
    if config.container == "apptainer":
        return ["apptainer", "exec", *(["--nv"] if gpus else []), "--bind", workdir, "--pwd", cwd,
                f"docker://{ref}", *argv]
    return ["srun", f"--container-image={_pyxis_image(ref)}", f"--container-mounts={workdir}:{workdir}",
            f"--container-workdir={cwd}", *argv]


def check_container_image(config: Any, image: Any, function: str) -> None:
    """A container runtime runs a registry image as it is: refuse what it cannot."""
    if config.container == "none":
        return
    if not isinstance(image.base, RegistryBase):
        raise ConfigError(
            f"SlurmConfig(container={config.container!r}) runs an Image.from_registry(...) image; "
            f"{function!r} uses a Dockerfile (build it, push it, and name it with from_registry)"
        )
    if image.ops:
        raise ConfigError(
            f"SlurmConfig(container={config.container!r}) runs the registry image as it is; {function!r}'s "
            "image has build steps (pip_install, apt_install, ...) that it cannot apply: bake them into the "
            "image, or use container='none' (a cached venv on the shared file system)"
        )


def env_file(env: Mapping[str, str]) -> str:
    """The job's environment as lines the batch script sources (``set -a``)."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(env.items()))


def array_range(count: int, limit: int) -> str:
    """``--array`` for a map of ``count`` inputs, at most ``limit`` at a time: ``0-(count-1)%K``
    (K no more than ``count``)."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"a job array has at least one task, not {count!r}")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(f"a map's concurrency must be a whole number of at least 1; got {show(limit)}")
    return f"0-{count - 1}%{min(limit, count)}"


# In an array job's command: the running task's own folder (``<tasks>/$SLURM_ARRAY_TASK_ID``).
TASK_FOLDER = "@@runplz-task@@"


def batch_script(directives: Sequence[str], ctl: str, command: Sequence[str], tasks: str | None = None) -> str:
    """The batch script: the environment from ``ctl``/env, ``command``, and its exit
    code written to ``ctl``/exit_code (what the agent's follow waits for).

    ``tasks``: an array job's folder of task folders. Each task then runs in
    ``<tasks>/$SLURM_ARRAY_TASK_ID`` (``TASK_FOLDER`` in ``command``): its
    ``RUNPLZ_OUT`` is ``out/`` there, and its exit code goes to ``exit_code`` there."""
    q = shlex.quote
    lines = ["#!/bin/bash", *directives]
    if not any(line.startswith("#SBATCH --time=") for line in directives):
        lines.append(NO_TIME)
    lines.append("# runplz: the job's environment is in the run folder (mode 600)")
    lines.append(f"ctl={q(ctl)}")
    end = "$ctl"
    if tasks is not None:
        lines.append(f'task={q(tasks)}/"$SLURM_ARRAY_TASK_ID"')
        end = "$task"
    lines += [
        f'rm -f "{end}/exit_code" "{end}/timed_out"',
        'set -a; . "$ctl/env"; set +a',
    ]
    if tasks is not None:
        lines.append('export RUNPLZ_OUT="$task/out"')
    line = " ".join(q(part) for part in command)
    lines += [
        line.replace(TASK_FOLDER, '"$task"') if tasks is not None else line,
        "code=$?",
        f'printf "%s\\n" "$code" > "{end}/.exit_code.tmp" && mv -f "{end}/.exit_code.tmp" "{end}/exit_code"',
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"
