"""The slurm backend's pure parts: SlurmConfig's checks, the spec-to-sbatch
mapping (total: every valid spec gives directives of sbatch's shape), the batch
script, the container runtimes' commands (untested on a real apptainer or
pyxis), and squeue/sacct parsing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplz import App, Image, SlurmConfig
from runplz.domain.bind import bind_request
from runplz.domain.errors import ConfigError
from runplz.domain.slurm import (
    batch_script, check_container_image, container_argv, env_file, gres_type, job_name, mebibytes,
    sbatch_directives, slurm_time,
)
from runplz.domain.slurm_state import exit_code, noted_job, job_note, parse_job_id, parse_sacct, parse_squeue
from runplz.domain.spec import function_spec

IMAGE = Image.from_registry("python:3.11-slim")


def spec(**kwargs):
    return function_spec("train", image=kwargs.pop("image", IMAGE), **kwargs)


def lines(spec_, config=SlurmConfig(), limit=None):
    return sbatch_directives(spec_, config, name="runplz-app-train", chdir="/w/repo", output="/w/ctl/job.log",
                             limit_seconds=limit)


@pytest.mark.parametrize("kwargs, message", [
    ({"partition": "a b"}, "SlurmConfig.partition must be a Slurm name"),
    ({"account": ""}, "SlurmConfig.account must be a Slurm name"),
    ({"qos": 3}, "SlurmConfig.qos must be a Slurm name"),
    ({"constraint": "a100 && x"}, "SlurmConfig.constraint must be"),
    ({"gpu_flag": "both"}, "SlurmConfig.gpu_flag must be one of 'gres', 'gpus'"),
    ({"gpu_types": {"A100": "a 100"}}, r"SlurmConfig.gpu_types\['A100'\] must be a GRES type"),
    ({"gpu_types": ["a100"]}, "SlurmConfig.gpu_types must map"),
    ({"extra_directives": "--nice=1"}, "must be a list of sbatch options"),
    ({"extra_directives": ["nice=1"]}, "holds sbatch options like"),
    ({"extra_directives": ["--nice=1\n#SBATCH --x"]}, "holds sbatch options like"),
    ({"extra_directives": ["--output=/tmp/x"]}, "may not set --output"),
    ({"extra_directives": ["--export=SECRET=1"]}, "may not set --export"),
    ({"extra_directives": ["-t 0"]}, "may not set --time"),
    ({"extra_directives": ["-t0"]}, "may not set --time"),
    ({"extra_directives": ["--ti=UNLIMITED"]}, "may not set --time"),
    ({"extra_directives": ["-o /x"]}, "may not set --output"),
    ({"extra_directives": ["-a 0-99"]}, "may not set --array"),
    ({"extra_directives": ["--exp=ALL"]}, "may not set --export"),
    ({"container": "docker"}, "SlurmConfig.container must be one of 'none', 'apptainer', 'pyxis'"),
    ({"requeue": "yes"}, "SlurmConfig.requeue must be True or False"),
    ({"workdir": "/scratch/my runs"}, "SlurmConfig.workdir must be a folder path"),
    ({"poll_seconds": 0}, "SlurmConfig.poll_seconds must be a positive number"),
    ({"poll_seconds": 10, "max_poll_seconds": 5}, "max_poll_seconds .5. must be at least poll_seconds"),
])
def test_slurm_config_is_checked_eagerly(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SlurmConfig(**kwargs)


def test_app_takes_a_slurm_config_and_bind_takes_slurm_with_or_without_host():
    config = SlurmConfig(partition="gpu", extra_directives=["#SBATCH --nice=10"])
    assert config.extra_directives == ("--nice=10",)
    assert App("x", slurm_config=config).slurm_config is config
    assert App("x").slurm_config == SlurmConfig()
    with pytest.raises(ConfigError, match="App slurm_config must be a SlurmConfig"):
        App("x", slurm_config={"partition": "gpu"})
    assert bind_request("slurm").host is None
    assert bind_request("slurm", host="login.cluster").host == "login.cluster"
    with pytest.raises(ConfigError, match="only for the ssh and slurm backends"):
        bind_request("modal", host="x")


def test_the_mapping_of_a_full_spec():
    config = SlurmConfig(partition="gpu", account="lab", qos="high", constraint="a100&ib", requeue=True,
                         extra_directives=["--mail-type=END"])
    got = lines(spec(gpu="A100-80GB", num_gpus=2, min_cpu=3.5, min_memory=1.5, min_disk=10, env={"K": "v"}),
                config, limit=90061)
    assert got == [
        "#SBATCH --job-name=runplz-app-train", "#SBATCH --chdir=/w/repo", "#SBATCH --output=/w/ctl/job.log",
        "#SBATCH --open-mode=append", "#SBATCH --time=1-01:01:01", "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=1536M", "#SBATCH --tmp=10240M", "#SBATCH --gres=gpu:a100:2", "#SBATCH --partition=gpu",
        "#SBATCH --account=lab", "#SBATCH --qos=high", "#SBATCH --constraint=a100&ib", "#SBATCH --requeue",
        "#SBATCH --mail-type=END",
    ]
    assert not any("v" == line.rsplit("=", 1)[-1] for line in got)


def test_gpus_flag_types_and_an_array_for_a_map():
    assert "#SBATCH --gpus=a100:2" in lines(spec(gpu="A100", num_gpus=2), SlurmConfig(gpu_flag="gpus"))
    assert "#SBATCH --gres=gpu:1" in lines(spec(min_gpu_memory=40))
    assert "#SBATCH --gres=gpu:3" in lines(spec(gpu="any", num_gpus=3))
    mapped = SlurmConfig(gpu_types={"A100": None, "h100": "h100_sxm"})
    assert "#SBATCH --gres=gpu:2" in lines(spec(gpu="a100", num_gpus=2), mapped)
    assert "#SBATCH --gres=gpu:h100_sxm:1" in lines(spec(gpu="H100"), mapped)
    assert "#SBATCH --no-requeue" in lines(spec())
    array = sbatch_directives(spec(), SlurmConfig(), name="n", chdir="/c", output="/o/%a.log", array="0-9%4")
    assert "#SBATCH --array=0-9%4" in array


def test_time_memory_names_and_gres_types():
    assert [slurm_time(s) for s in (0.2, 59, 60, 3600, 86400 * 3 + 5)] == [
        "0-00:00:01", "0-00:00:59", "0-00:01:00", "0-01:00:00", "3-00:00:05"]
    assert [mebibytes(g) for g in (0.001, 0.25, 1, 1.0000001)] == ["2M", "256M", "1024M", "1025M"]
    assert job_name("my app", "fn/x") == "runplz-my-app-fn-x"
    assert [gres_type(g, {}) for g in ("A100", "A100-80GB", "RTX 4090", "100", "L4", None)] == [
        "a100", "a100", "rtx4090", None, "l4", None]


def test_the_batch_script_sources_the_env_file_and_records_the_exit_code():
    script = batch_script(["#SBATCH --mem=1M"], "/w/r un/ctl", ["/venv/bin/python", "/b/boot.py", "/w/p.json"])
    assert script.startswith("#!/bin/bash\n#SBATCH --mem=1M\n")
    assert "ctl='/w/r un/ctl'\n" in script
    assert 'set -a; . "$ctl/env"; set +a\n/venv/bin/python /b/boot.py /w/p.json\ncode=$?\n' in script
    assert script.endswith('exit "$code"\n')
    assert env_file({"B": "it's $(x)", "A": "1"}) == "A=1\nB='it'\"'\"'s $(x)'\n"


def test_container_runtimes_render_their_commands_and_refuse_what_they_cannot_run():
    argv = ["python3", "/w/b/boot.py", "/w/r/ctl/payload.json"]
    image = Image.from_registry("ghcr.io/lab/train:1")
    assert container_argv(SlurmConfig(), image, argv, workdir="/w", cwd="/w/r/repo", gpus=True) == argv
    assert container_argv(SlurmConfig(container="apptainer"), image, argv, workdir="/w", cwd="/w/r/repo", gpus=True) == [
        "apptainer", "exec", "--nv", "--bind", "/w", "--pwd", "/w/r/repo", "docker://ghcr.io/lab/train:1", *argv]
    assert container_argv(SlurmConfig(container="pyxis"), image, argv, workdir="/w", cwd="/w/r/repo", gpus=False) == [
        "srun", "--container-image=ghcr.io#lab/train:1", "--container-mounts=/w:/w", "--container-workdir=/w/r/repo",
        *argv]
    plain = container_argv(SlurmConfig(container="pyxis"), IMAGE, argv, workdir="/w", cwd="/c", gpus=False)
    assert plain[1] == "--container-image=python:3.11-slim"
    check_container_image(SlurmConfig(container="pyxis"), image, "train")
    check_container_image(SlurmConfig(), IMAGE.pip_install("x"), "train")
    with pytest.raises(ConfigError, match="has build steps"):
        check_container_image(SlurmConfig(container="apptainer"), IMAGE.pip_install("numpy"), "train")
    with pytest.raises(ConfigError, match="uses a Dockerfile"):
        check_container_image(SlurmConfig(container="pyxis"), Image.from_dockerfile("Dockerfile"), "train")


def test_squeue_and_sacct_parsing():
    assert parse_squeue("12\tPENDING\tResources\n", "12").reason == "Resources"
    assert parse_squeue("12\tRUNNING\tNone\n", "12").reason == ""
    assert parse_squeue("13\tRUNNING\tNone\n", "12") is None
    record = parse_sacct("12|REQUEUED|0:0\n12|FAILED|3:0\n", "12")
    assert (record.state, record.exit_code, record.ended) == ("FAILED", 3, True)
    cancelled = parse_sacct("12|CANCELLED by 1001|0:15\n", "12")
    assert (cancelled.state, cancelled.exit_code, cancelled.why()) == ("CANCELLED", 143, "was cancelled")
    assert parse_sacct("12|RUNNING|0:0\n", "12").exit_code is None
    assert [exit_code(t) for t in ("0:0", "3:0", "0:9", "2:9", "x")] == [0, 3, 137, 2, None]
    assert parse_job_id("4711\n") == "4711" and parse_job_id("4711;cluster\n") == "4711"
    assert parse_job_id("sbatch: error: nope\n") is None
    assert noted_job(["other", job_note("41", "login"), job_note("42", "login")]) == "42"


_DIRECTIVE = re.compile(r"#SBATCH --[a-z][a-z-]*(=\S+)?")
_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,20}", fullmatch=True)


@given(
    gpu=st.none() | st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
    num_gpus=st.integers(1, 64),
    min_cpu=st.none() | st.floats(0.001, 1e4),
    min_memory=st.none() | st.floats(0.001, 1e5),
    min_disk=st.none() | st.floats(0.001, 1e5),
    min_gpu_memory=st.none() | st.floats(1, 200),
    limit=st.none() | st.floats(0.001, 1e8),
    env=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), st.text(max_size=20), max_size=3),
    partition=st.none() | _names, account=st.none() | _names,
    gpu_flag=st.sampled_from(["gres", "gpus"]), requeue=st.booleans(),
)
def test_the_mapping_is_total_and_every_line_has_sbatchs_shape(
    gpu, num_gpus, min_cpu, min_memory, min_disk, min_gpu_memory, limit, env, partition, account, gpu_flag, requeue,
):
    if num_gpus > 1 and gpu is None and min_gpu_memory is None:
        num_gpus = 1
    env = {k: v.replace("\x00", "") for k, v in env.items()}
    s = spec(gpu=gpu, num_gpus=num_gpus, min_cpu=min_cpu, min_memory=min_memory, min_disk=min_disk,
             min_gpu_memory=min_gpu_memory, env=env)
    config = SlurmConfig(partition=partition, account=account, gpu_flag=gpu_flag, requeue=requeue)
    got = lines(s, config, limit)
    for line in got:
        assert _DIRECTIVE.fullmatch(line), line
    options = [line.split()[1].split("=")[0] for line in got]
    assert len(options) == len(set(options))
    for value in env.values():
        if len(value) > 3:
            assert all(value not in line for line in got)
    if s.wants_gpu:
        assert re.fullmatch(r"#SBATCH --(gres=gpu|gpus=?)(:?[a-z][a-z0-9_.-]*)?[:=]?\d+", next(
            line for line in got if "--gres" in line or "--gpus" in line)), got
    if limit is not None:
        assert re.fullmatch(r"#SBATCH --time=\d+-\d\d:\d\d:\d\d", next(line for line in got if "--time" in line))
