"""What a box has, read in one round trip, and the warnings it earns."""

from __future__ import annotations

import shlex

import attrs

from .container_run import SUDO_DOCKER, docker_prefix
from .spec import FunctionSpec

_MARK = "@@runplz:"
_DOCKER_VERSION = "version --format '{{.Server.Version}}'"
# Which docker command answers: plain, else (only when refused for lack of
# permission) `sudo -n docker`. Checks call docker through `runplz_docker`.
_DOCKER_PREAMBLE = """runplz_docker_state=none
runplz_docker_cmd=
if runplz_e=$(docker VERSION 2>&1 >/dev/null); then
  runplz_docker_state=docker; runplz_docker_cmd=docker
else
  case $runplz_e in
  *[Pp]ermission\\ denied*)
    runplz_docker_state=denied
    if SUDO VERSION >/dev/null 2>&1 </dev/null; then runplz_docker_state=sudo; runplz_docker_cmd='SUDO'; fi;;
  esac
fi 2>/dev/null
runplz_docker() { [ -n "$runplz_docker_cmd" ] && $runplz_docker_cmd "$@"; }
""".replace("VERSION", _DOCKER_VERSION).replace("SUDO", " ".join(docker_prefix(SUDO_DOCKER)))
_DOCKER_STATES = {"docker": ("docker",), "sudo": SUDO_DOCKER}
_APT_HINT = "Debian/Ubuntu: sudo apt-get install"


@attrs.frozen
class Gpu:
    name: str
    memory_gb: float


@attrs.frozen
class Machine:
    cpus: int | None = None
    memory_gb: float | None = None
    gpus: tuple[Gpu, ...] = ()
    uid: int | None = None
    gid: int | None = None
    home: str = ""  # the login folder (absolute)
    python: str = ""  # "3.11.2", or "" when python3 is missing
    user: str = ""  # the login's user name
    rsync: bool = False  # rsync is on the login's PATH
    # How docker answers there: ("docker",), SUDO_DOCKER (plain docker was refused
    # for lack of permission), or () when it does not answer.
    docker_command: tuple[str, ...] = ()
    docker_denied: bool = False  # refused for lack of permission, and sudo -n could not stand in
    nvidia_runtime: bool = False
    facts: tuple[tuple[str, str], ...] = ()  # answers to extra checks, by name
    banner: str = ""  # what the login printed before the probe's own output

    @property
    def docker(self) -> bool:
        return bool(self.docker_command)

    def fact(self, name: str) -> str:
        return dict(self.facts).get(name, "")


def docker_shell(*args: str) -> str:
    """Shell for a probe check: docker with ``args``, run the way that answers there."""
    return "runplz_docker " + shlex.join(args)


def probe_script(checks: dict[str, str] | None = None, docker: bool = True) -> str:
    """A POSIX sh script printing marked sections; ``checks`` are extra
    commands (name -> shell) whose stdout is reported by name (see `docker_shell`).
    ``docker=False``: leave Docker alone (a native run; sudo is never tried)."""
    sections = {
        "cpus": "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN",
        "mem_kb": "awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null",
        "ids": "echo \"$(id -u) $(id -g)\"",
        "home": "pwd",
        "user": "id -un",
        "python": "python3 -c 'import platform; print(platform.python_version())' 2>/dev/null",
        "rsync": "command -v rsync",
        "docker": "echo \"$runplz_docker_state\"",
        "nvidia_runtime": (
            "{ command -v nvidia-container-runtime-hook || command -v nvidia-container-runtime "
            "|| runplz_docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia; } "
            ">/dev/null 2>&1 && echo yes"
        ),
        "gpus": (
            "command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi "
            "--query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null"
        ),
    }
    for name, command in (checks or {}).items():
        sections[f"check.{name}"] = command
    lines = [_DOCKER_PREAMBLE if docker else "runplz_docker_state=none\nrunplz_docker() { return 1; }\n"]
    for name, command in sections.items():
        lines.append(f"echo {shlex.quote(_MARK + name)}")
        lines.append(f"( {command} ) 2>/dev/null")
    return "\n".join(lines) + "\necho " + shlex.quote(_MARK + "end") + "\n"


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_probe(output: str) -> Machine:
    sections: dict[str, list[str]] = {}
    current = None
    before: list[str] = []
    for line in output.splitlines():
        if line.startswith(_MARK):
            current = line[len(_MARK):]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        else:
            before.append(line)

    def text(name: str) -> str:
        return "\n".join(sections.get(name, [])).strip()

    mem_kb = _int(text("mem_kb"))
    ids = text("ids").split()
    gpus = []
    for line in sections.get("gpus", []):
        name, _, memory = line.rpartition(",")
        try:
            gpus.append(Gpu(name.strip(), float(memory.strip()) / 1024))
        except ValueError:
            continue
    return Machine(
        cpus=_int(text("cpus")),
        memory_gb=mem_kb / (1024 * 1024) if mem_kb else None,
        gpus=tuple(gpus),
        uid=_int(ids[0]) if len(ids) == 2 else None,
        gid=_int(ids[1]) if len(ids) == 2 else None,
        home=text("home"),
        python=text("python"),
        user=text("user"),
        rsync=bool(text("rsync")),
        docker_command=_DOCKER_STATES.get(text("docker"), ()),
        docker_denied=text("docker") == "denied",
        nvidia_runtime=text("nvidia_runtime") == "yes",
        facts=tuple((name[len("check."):], text(name)) for name in sections if name.startswith("check.")),
        banner="\n".join(before).strip(),
    )


def banner_problem(machine: Machine, where: str) -> str | None:
    """Text printed by a non-interactive login breaks rsync ("protocol incompatibility")."""
    if not machine.banner:
        return None
    first = machine.banner.splitlines()[0][:60]
    return (
        f"{where} prints text for non-interactive logins ({first!r}), which breaks rsync; "
        "make its shell startup files quiet when not interactive (e.g. put "
        "`[ -z \"$PS1\" ] && return` at the top of ~/.bashrc)"
    )


def missing_tools(machine: Machine, where: str) -> str | None:
    """python3 (>= 3.10) and rsync, which every run needs on the box: one line
    naming what to install, or None."""
    missing = [name for name, there in (("python3", machine.python), ("rsync", machine.rsync)) if not there]
    if machine.python and not python_ok(machine.python):
        return f"{where} has Python {machine.python}; runplz needs python3 >= 3.10 there"
    if not missing:
        return None
    need = "; runplz needs python3 >= 3.10 there" if not machine.python else ""
    what, it = (" or ".join(missing), "them") if len(missing) > 1 else (missing[0], "it")
    return f"{where} has no {what}{need}; install {it} there ({_APT_HINT} {' '.join(missing)})"


def docker_problem(machine: Machine, where: str) -> str | None:
    """Why a Docker-mode run cannot use Docker there, in one line; None when it can."""
    if machine.docker:
        return None
    native = "or use SshConfig(use_docker=False) for a native venv"
    if machine.docker_denied:
        user = machine.user or "the login user"
        return (
            f"Docker does not answer on {where}: permission denied ({user} is not in the docker group "
            f"and `sudo -n docker` does not work there); add {user} to the docker group there "
            f"(sudo usermod -aG docker {user}), {native}"
        )
    return f"Docker does not answer on {where}; install it there, {native}"


def python_ok(version: str) -> bool:
    parts = version.split(".")
    return len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() and (int(parts[0]), int(parts[1])) >= (3, 10)


def _norm(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def gpu_matches(wanted: str, actual: str) -> bool:
    """Does an nvidia-smi name (``NVIDIA A100-SXM4-80GB``) satisfy ``A100`` / ``A100-80GB``?"""
    model, _, memory = wanted.partition("-")
    if _norm(model) not in _norm(actual):
        return False
    return not memory or _norm(memory) in _norm(actual)


def spec_warnings(spec: FunctionSpec, machine: Machine, where: str) -> list[str]:
    """Warnings (never errors: the user may know better) when ``machine`` falls short."""
    out = []
    if spec.min_cpu is not None and machine.cpus is not None and machine.cpus < spec.min_cpu:
        out.append(f"{spec.name} wants min_cpu={spec.min_cpu:g} but {where} has {machine.cpus} CPUs")
    if spec.min_memory is not None and machine.memory_gb is not None and machine.memory_gb < spec.min_memory:
        out.append(
            f"{spec.name} wants min_memory={spec.min_memory:g} GB but {where} has "
            f"{machine.memory_gb:.1f} GB"
        )
    if not spec.wants_gpu:
        return out
    if not machine.gpus:
        out.append(f"{spec.name} wants a GPU ({spec.gpu or 'any'}) but nvidia-smi on {where} reports none")
        return out
    gpus = list(machine.gpus)
    if spec.gpu is not None:
        matching = [g for g in gpus if gpu_matches(spec.gpu, g.name)]
        if not matching:
            names = ", ".join(sorted({g.name for g in gpus}))
            out.append(f"{spec.name} wants gpu={spec.gpu!r} but {where} has {names}")
        else:
            gpus = matching
    if len(gpus) < spec.num_gpus:
        out.append(f"{spec.name} wants num_gpus={spec.num_gpus} but {where} has {len(gpus)}")
    if spec.min_gpu_memory is not None:
        small = [g for g in gpus if g.memory_gb + 0.5 < spec.min_gpu_memory]
        if small:
            out.append(
                f"{spec.name} wants min_gpu_memory={spec.min_gpu_memory:g} GB but {where}'s "
                f"{small[0].name} has {small[0].memory_gb:.0f} GB"
            )
    return out
