"""Pure parts of the ssh backend: targets, the probe, spec-mismatch warnings."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from runplz import Image, SshConfig
from runplz.domain.bind import bind_request
from runplz.domain.errors import ConfigError
from runplz.domain.host import SshTarget, parse_target
from runplz.domain.container_run import SUDO_DOCKER, docker_prefix
from runplz.domain.machine import (
    Gpu,
    Machine,
    docker_problem,
    docker_shell,
    gpu_matches,
    missing_tools,
    parse_probe,
    probe_script,
    python_ok,
    spec_warnings,
)
from runplz.domain.spec import function_spec

IMAGE = Image.from_registry("python:3.11-slim")


ACCEPTED = [
    ("gpu.example.com", SshTarget("gpu.example.com")),
    ("my-alias", SshTarget("my-alias")),
    ("my-box.prod_1", SshTarget("my-box.prod_1")),
    ("alice@gpu.example.com", SshTarget("gpu.example.com", "alice")),
    ("gpu.example.com:2222", SshTarget("gpu.example.com", None, 2222)),
    ("alice@10.0.0.5:2200", SshTarget("10.0.0.5", "alice", 2200)),
    ("box:1", SshTarget("box", None, 1)),
    ("box:65535", SshTarget("box", None, 65535)),
    ("[::1]:2222", SshTarget("::1", None, 2222)),
    ("[::1]", SshTarget("::1")),
    ("::1", SshTarget("::1")),
    ("bob@[fe80::1]", SshTarget("fe80::1", "bob")),
    ("fe80::1", SshTarget("fe80::1")),
    ("fe80::1%eth0", SshTarget("fe80::1%eth0")),
    ("[fe80::1%eth0]:22", SshTarget("fe80::1%eth0", None, 22)),
    ("user@[2001:db8::1]:22", SshTarget("2001:db8::1", "user", 22)),
    ("::ffff:10.0.0.1", SshTarget("::ffff:10.0.0.1")),
    ("deploy-bot@box", SshTarget("box", "deploy-bot")),
]

REFUSED = [
    ("[-G:]", "brackets are only for IPv6"),
    ("[-oProxyCommand=touch /tmp/x]:22", "whitespace"),
    ("[-oProxyCommand=true]:22", "brackets are only for IPv6"),
    ("[box]:22", "brackets are only for IPv6"),
    ("[10.0.0.1]:22", "brackets are only for IPv6"),
    ("[fe80::1%-G]:22", "brackets are only for IPv6"),
    ("[]:22", "brackets are only for IPv6"),
    ("[::1", "not [USER@]HOST[:PORT]"),
    ("[::1]x", "not [USER@]HOST[:PORT]"),
    ("[::1]:", "not a port"),
    ("host:22:33", "not a valid IPv6 address"),
    ("::1:2222:x", "not a valid IPv6 address"),
    ("-G", "may not start with '-'"),
    ("-oProxyCommand=x", "may not start with '-'"),
    ("-box:22", "may not start with '-'"),
    ("-l@box", "login name may not start with '-'"),
    ("-oUser=x@box", "login name may not start with '-'"),
    ("box:99999", "not a port"),
    ("box:65536", "not a port"),
    ("box:0", "not a port"),
    ("box:", "not a port"),
    ("box:http", "not a port"),
    ("box:-22", "not a port"),
    ("box:+22", "not a port"),
    ("box:\uff12\uff12", "not a port"),  # fullwidth digits
    ("box:\u0662\u0662", "not a port"),  # Arabic-Indic digits
    ("@box", "not a login name"),
    ("bad user@box", "whitespace"),
    ("box name", "whitespace"),
    ("box\t", "whitespace"),
    ("box\n", "whitespace"),
    ("box\x00", "control character"),
    ("box\x1b[31m", "control character"),
    ("a\u200bb", "control character"),
    ("a/b", "not [USER@]HOST[:PORT]"),
    ("b\u00f6x", "not [USER@]HOST[:PORT]"),
    ("", "host must be"),
]


@pytest.mark.parametrize("text, expected", ACCEPTED)
def test_parse_target(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text, expected", ACCEPTED)
def test_bind_accepts_every_valid_host(text, expected):
    assert bind_request("ssh", host=text).host == text


def test_ssh_config_wins_over_the_host_string():
    config = SshConfig(user="carol", port=2022)
    assert parse_target("alice@box:2200", config) == SshTarget("box", "carol", 2022)
    assert parse_target("alice@box:2200", SshConfig()) == SshTarget("box", "alice", 2200)
    assert str(SshTarget("box", "carol", 2022)) == "carol@box:2022"
    assert str(SshTarget("::1", "carol", 2022)) == "carol@[::1]:2022"
    assert str(SshTarget("::1")) == "::1"


@pytest.mark.parametrize("text, needle", REFUSED)
def test_bad_targets(text, needle):
    with pytest.raises(ConfigError) as caught:
        parse_target(text)
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text, needle", REFUSED)
def test_bind_refuses_every_bad_host_at_once(text, needle):
    with pytest.raises(ConfigError) as caught:
        bind_request("ssh", host=text)
    assert needle in str(caught.value)


@pytest.mark.parametrize("host", ["[-G:]", "host:22:33", "box:\uff12\uff12", b"box", 22])
def test_app_bind_refuses_bad_hosts_before_any_connection(host):
    from runplz import App

    app = App("hostile")
    with pytest.raises(ConfigError):
        app.bind("ssh", host=host)


# Recorded `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits` outputs.
A100X4 = "NVIDIA A100-SXM4-80GB, 81920\n" * 4
T4 = "Tesla T4, 15360\n"
H100 = "NVIDIA H100 80GB HBM3, 81559\n"


def probe_output(gpus: str = "", cpus: str = "8", mem_kb: str = "32780000") -> str:
    return (
        f"@@runplz:cpus\n{cpus}\n@@runplz:mem_kb\n{mem_kb}\n@@runplz:ids\n1001 1001\n@@runplz:home\n/home/u\n"
        "@@runplz:user\nu\n@@runplz:python\n3.11.2\n@@runplz:rsync\n/usr/bin/rsync\n"
        "@@runplz:docker\ndocker\n@@runplz:nvidia_runtime\nyes\n"
        f"@@runplz:gpus\n{gpus}@@runplz:check.bundle\nyes\n@@runplz:end\n"
    )


def test_parse_probe():
    machine = parse_probe(probe_output(A100X4))
    assert machine.cpus == 8 and round(machine.memory_gb) == 31
    assert machine.gpus == (Gpu("NVIDIA A100-SXM4-80GB", 80.0),) * 4
    assert (machine.uid, machine.gid, machine.home, machine.python) == (1001, 1001, "/home/u", "3.11.2")
    assert machine.docker and machine.nvidia_runtime and machine.fact("bundle") == "yes"
    assert machine.docker_command == ("docker",) and machine.rsync and machine.user == "u"


def test_probe_script_runs_in_sh_and_parses(tmp_path):
    import subprocess

    out = subprocess.run(["sh", "-c", probe_script({"x": "echo hello"})], capture_output=True, text=True, cwd=tmp_path)
    machine = parse_probe(out.stdout)
    assert machine.cpus and machine.cpus >= 1 and machine.memory_gb > 0
    assert machine.home == str(tmp_path) and machine.fact("x") == "hello"


FAKE_DOCKER = """#!/bin/sh
if [ "$FAKE_ROOT" != 1 ]; then
    echo "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock" >&2
    exit 1
fi
[ "$DOCKER_HOST" = unix:///kept.sock ] || { echo "sudo lost DOCKER_HOST" >&2; exit 1; }
echo "docker $*" >> "$FAKE_LOG"
echo 24.0.7
"""
# Like sudo: resets the environment but for what --preserve-env names.
FAKE_SUDO = """#!/bin/sh
[ -n "$FAKE_SUDO_REFUSES" ] && { echo "sudo: a password is required" >&2; exit 1; }
keep="PATH FAKE_LOG"
while [ $# -gt 0 ]; do
    case $1 in
    --preserve-env=*) keep="$keep $(echo "${1#--preserve-env=}" | tr , ' ')";;
    -*) ;;
    *) break;;
    esac
    shift
done
vars=""
for name in $keep; do eval "value=\\${$name-}"; vars="$vars $name=$value"; done
exec env -i FAKE_ROOT=1 $vars "$@"
"""


def _fake_tools(folder, **tools) -> str:
    folder.mkdir()
    for name, text in tools.items():
        (folder / name).write_text(text)
        os.chmod(folder / name, 0o755)
    for name in ("sh", "env", "tr", "cat", "id", "nproc", "getconf", "awk", "echo"):
        found = shutil.which(name)
        if found and not (folder / name).exists():
            (folder / name).symlink_to(found)
    return str(folder)


@pytest.mark.parametrize("sudo_works", [True, False])
def test_probe_falls_back_to_sudo_docker_only_on_permission_denied(tmp_path, sudo_works):
    log = tmp_path / "docker.log"
    path = _fake_tools(tmp_path / "bin", docker=FAKE_DOCKER, sudo=FAKE_SUDO)
    env = {"PATH": path, "FAKE_LOG": str(log), "DOCKER_HOST": "unix:///kept.sock"}
    if not sudo_works:
        env["FAKE_SUDO_REFUSES"] = "1"
    checks = {"image": docker_shell("image", "inspect", "--format", "x", "app:tag") + " >/dev/null && echo yes"}
    out = subprocess.run(["/bin/sh", "-c", probe_script(checks)], capture_output=True, text=True, env=env, cwd=tmp_path)
    machine = parse_probe(out.stdout)
    assert machine.banner == "", out.stdout
    if sudo_works:
        assert machine.docker and machine.docker_command == SUDO_DOCKER and not machine.docker_denied
        assert machine.fact("image") == "yes"
        assert "docker image inspect --format x app:tag" in log.read_text()
        assert docker_problem(machine, "box") is None
    else:
        assert not machine.docker and machine.docker_denied and machine.fact("image") == ""
        problem = docker_problem(machine, "box")
        assert problem.startswith("Docker does not answer on box: permission denied")
        assert "docker group" in problem and "use_docker=False" in problem and "\n" not in problem


def test_probe_without_docker_and_native_probes_never_try_sudo(tmp_path):
    path = _fake_tools(tmp_path / "bin", sudo="#!/bin/sh\ntouch \"$FAKE_LOG\"\nexit 1\n")
    env = {"PATH": path, "FAKE_LOG": str(tmp_path / "sudo-ran")}
    for docker in (True, False):
        out = subprocess.run(["/bin/sh", "-c", probe_script({}, docker=docker)], capture_output=True, text=True, env=env)
        machine = parse_probe(out.stdout)
        assert not machine.docker and not machine.docker_denied and not machine.rsync
        assert docker_problem(machine, "box") == (
            "Docker does not answer on box; install it there, or use SshConfig(use_docker=False) for a native venv"
        )
    assert not (tmp_path / "sudo-ran").exists()


def test_docker_prefix_passes_the_env_through_sudo_only():
    assert docker_prefix(("docker",), ["B"]) == ("docker",)
    assert docker_prefix(SUDO_DOCKER) == ("sudo", "-n", "--preserve-env=DOCKER_HOST", "docker")
    twice = docker_prefix(docker_prefix(SUDO_DOCKER, ["B", "A"]), ["C"])
    assert twice == ("sudo", "-n", "--preserve-env=DOCKER_HOST,A,B,C", "docker")


@pytest.mark.parametrize(
    "python, rsync, message",
    [
        ("3.11.2", True, None),
        ("", True, "box has no python3; runplz needs python3 >= 3.10 there; install it there "
         "(Debian/Ubuntu: sudo apt-get install python3)"),
        ("3.11.2", False, "box has no rsync; install it there (Debian/Ubuntu: sudo apt-get install rsync)"),
        ("", False, "box has no python3 or rsync; runplz needs python3 >= 3.10 there; install them there "
         "(Debian/Ubuntu: sudo apt-get install python3 rsync)"),
        ("3.8.10", True, "box has Python 3.8.10; runplz needs python3 >= 3.10 there"),
    ],
)
def test_missing_tools_name_the_package(python, rsync, message):
    assert missing_tools(Machine(python=python, rsync=rsync), "box") == message


@pytest.mark.parametrize(
    "wanted, actual, ok",
    [
        ("A100", "NVIDIA A100-SXM4-80GB", True),
        ("A100-80GB", "NVIDIA A100-SXM4-80GB", True),
        ("A100-40GB", "NVIDIA A100-SXM4-80GB", False),
        ("a100", "NVIDIA A100-PCIE-40GB", True),
        ("T4", "Tesla T4", True),
        ("H100", "NVIDIA H100 80GB HBM3", True),
        ("L4", "Tesla T4", False),
    ],
)
def test_gpu_matches(wanted, actual, ok):
    assert gpu_matches(wanted, actual) is ok


def warnings(machine: Machine, **kwargs) -> list[str]:
    return spec_warnings(function_spec("train", image=IMAGE, **kwargs), machine, "box")


def test_warnings_are_worded_per_constraint():
    small = parse_probe(probe_output(T4, cpus="4", mem_kb=str(16 * 1024 * 1024)))
    found = warnings(small, min_cpu=8, min_memory=32, gpu="A100", num_gpus=2, min_gpu_memory=40)
    assert found[0] == "train wants min_cpu=8 but box has 4 CPUs"
    assert found[1] == "train wants min_memory=32 GB but box has 16.0 GB"
    assert found[2] == "train wants gpu='A100' but box has Tesla T4"
    assert "num_gpus=2 but box has 1" in found[3]
    assert "min_gpu_memory=40 GB but box's Tesla T4 has 15 GB" in found[4]


def test_no_warnings_when_the_box_fits():
    big = parse_probe(probe_output(A100X4, cpus="64", mem_kb=str(512 * 1024 * 1024)))
    assert warnings(big, min_cpu=8, min_memory=32, gpu="A100-80GB", num_gpus=4, min_gpu_memory=80) == []
    assert warnings(big, min_gpu_memory=40) == []


def test_no_gpu_at_all():
    assert warnings(parse_probe(probe_output("")), gpu="T4") == [
        "train wants a GPU (T4) but nvidia-smi on box reports none"
    ]


@pytest.mark.parametrize("version, ok", [("3.10.0", True), ("3.11.2", True), ("3.9.18", False), ("", False), ("2.7", False)])
def test_python_ok(version, ok):
    assert python_ok(version) is ok
