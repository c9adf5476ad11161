"""The slurm backend end to end: the real single-node cluster (slurmctld, slurmd,
slurmdbd), reached through its login node over the real sshd; native mode (a
cached venv in the login's home, which the node shares)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from runplz import RemoteError
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.job_output import RecordingJobOutput
from runplz.container import make_container
from runplz.loader import load_app

from .jobs import make_repo
from testsupport.signals import default_signals

pytestmark = pytest.mark.real

SECRET = "s3cret 'value' $(nope)"
JOB = '''
import json, os, subprocess, sys, time
from runplz import App, Image, SlurmConfig

app = App("slurm-e2e", slurm_config=SlurmConfig(account="runplz", poll_seconds=0.5, max_poll_seconds=2))
image = Image.from_registry("python:3.11-slim")


@app.function(image=image, min_cpu=1, min_memory=0.25, timeout=600, env={"TOKEN": SECRET})
def specs(code: int = 0) -> dict:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "where.txt"), "w") as handle:
        handle.write(os.getcwd())
    print("running as job", os.environ["SLURM_JOB_ID"], flush=True)
    if code:
        sys.exit(code)
    return {"job": os.environ["SLURM_JOB_ID"], "token": os.environ["TOKEN"]}


@app.function(image=image, gpu="A100", num_gpus=2, min_memory=0.1)
def gpus() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


@app.function(image=image, min_memory=0.1, timeout=600)
def sleeper() -> None:
    print("sleeper-started", flush=True)
    time.sleep(300)
'''.replace("SECRET", repr(SECRET))


class Bound:
    def __init__(self, script, outputs, cache):
        self.console = RecordingConsole()
        self.output = RecordingJobOutput()
        container = make_container(str(cache))
        container.console.override(self.console)
        container.job_output.override(self.output)
        self.module, self.app = load_app(str(script))
        self.app.bind("slurm", host="runplz-slurm", outputs_dir=str(outputs), container=container)
        self.outputs = outputs

    def job_id(self) -> str:
        line = next(m for m in reversed(self.console.infos) if "to Slurm on" in m)
        return re.search(r"as job (\d+)", line).group(1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cluster(slurm_queue_emptied):
    return slurm_queue_emptied


@pytest.fixture
def bound(tmp_path, cache, cluster):
    script = make_repo(tmp_path / "repo", JOB)
    return Bound(script, tmp_path / "out", cache)


def show_job(cluster, job: str) -> dict[str, str]:
    text = cluster.run("scontrol", "show", "job", job, check=True).stdout
    return dict(re.findall(r"(?:^|\s)([\w/:]+)=(\S*)", text))


def test_a_job_with_specs_gets_its_resources_and_env_without_showing_it(bound, cluster):
    value = bound.module.specs.remote()
    job = bound.job_id()
    assert value == {"job": job, "token": SECRET}
    shown = show_job(cluster, job)
    assert shown["CPUs/Task"] == "1"
    assert shown["MinMemoryNode"] == "256M"
    assert shown["TimeLimit"] == "00:10:00"
    assert shown["Account"] == "runplz"
    assert shown["JobName"] == "runplz-slurm-e2e-specs"
    assert shown["Requeue"] == "0"
    assert shown["UserId"].startswith("runplz(")
    assert "/.runplz/slurm-runs/" in shown["WorkDir"]
    assert (bound.outputs / "where.txt").read_text() == shown["WorkDir"]
    assert "running as job " + job in bound.output.data.decode()
    everything = cluster.run("scontrol", "show", "job", "-d", job).stdout
    everything += cluster.run("squeue", "-a", "-h", "-o", "%all").stdout
    everything += cluster.run("scontrol", "write", "batch_script", job, "-").stdout
    assert "s3cret" not in everything
    record = cluster.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "State,ExitCode").stdout.split()
    assert record == ["COMPLETED|0:0"]


def test_a_gpu_job_sees_two_devices(bound, cluster):
    assert bound.module.gpus.remote() == "0,1"
    assert "gpu:a100:2" in show_job(cluster, bound.job_id())["TresPerNode"]


def test_a_failing_job_gives_its_exact_exit_code(bound, cluster):
    with pytest.raises(RemoteError) as caught:
        bound.module.specs.remote(code=7)
    assert caught.value.exit_code == 7
    deadline = time.monotonic() + 30
    record = []
    while record != ["FAILED|7:0"] and time.monotonic() < deadline:
        time.sleep(0.3)
        record = cluster.run("sacct", "-n", "-P", "-X", "-j", bound.job_id(), "-o", "State,ExitCode").stdout.split()
    assert record == ["FAILED|7:0"]


def test_a_pending_job_shows_its_reason_and_runs_when_the_node_frees(bound, cluster):
    blocker = cluster.run(
        "sbatch", "--parsable", f"--cpus-per-task={cluster.cpus}", "--mem=100M", f"--chdir={cluster.shared}",
        "--output=/dev/null", "--wrap=sleep 300", check=True,
    ).stdout.strip()
    results: list = []
    worker = threading.Thread(target=lambda: results.append(bound.module.specs.remote()))
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("is PENDING (Resources)" in m for m in bound.console.infos):
            time.sleep(0.2)
        assert any(re.search(r"Slurm job \d+ is PENDING \(Resources\); waited \d+s so far", m)
                   for m in bound.console.infos), bound.console.infos
    finally:
        cluster.run("scancel", blocker)
        worker.join(timeout=180)
    assert results and results[0]["token"] == SECRET


# `runplz slurm` as cli/main.py registers it (the shim stands in until it does).
CLI = (
    "import sys\nfrom runplz.cli.main import cli, run\n"
    "if 'slurm' not in cli.commands:\n"
    "    from runplz.cli.slurm import slurm\n    cli.add_command(slurm)\n"
    "run(sys.argv[1:])\n"
)


def _cli(args, cwd, cache):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )


def test_the_cli_runs_a_job_and_ctrl_c_cancels_it_leaving_nothing_in_squeue(tmp_path, cache, cluster):
    script = make_repo(tmp_path / "repo", JOB + "\n@app.local_entrypoint()\ndef main():\n    sleeper.remote()\n")
    done = _cli(["slurm", "--host", "runplz-slurm", "job.py", "--help"], script.parent, cache)
    assert done.communicate(timeout=60)[0]  # the entrypoint's own help
    (script.parent / "single.py").write_text(
        "import os\nfrom runplz import App, Image, SlurmConfig\n"
        "app = App('slurm-cli', slurm_config=SlurmConfig(poll_seconds=0.5, max_poll_seconds=2))\n"
        "@app.function(image=Image.from_registry('python:3.11-slim'), min_memory=0.1, env={'TOKEN': 'x'})\n"
        "def hello(name: str = 'world') -> dict:\n"
        "    open(os.path.join(os.environ['RUNPLZ_OUT'], 'hi.txt'), 'w').write(name)\n"
        "    return {'hello': name, 'token': os.environ['TOKEN']}\n"
    )
    single = _cli(["slurm", "--host", "runplz-slurm", "single.py", "--name", "slurm"], script.parent, cache)
    out, err = single.communicate(timeout=180)
    assert single.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"hello": "slurm", "token": "x"}
    assert (script.parent / "out" / "hi.txt").read_text() == "slurm"
    driver = _cli(["slurm", "--host", "runplz-slurm", "job.py"], script.parent, cache)
    for line in driver.stdout:
        if "sleeper-started" in line:
            break
    assert len(cluster.queue()) == 1
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert re.search(r"cancelled Slurm job \d+", err), err
    assert cluster.queue() == []


def test_a_killed_driver_leaves_a_job_that_runplz_down_cancels(tmp_path, cache, cluster):
    script = make_repo(tmp_path / "repo", JOB)
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    driver_py = tmp_path / "repo" / "drive.py"
    driver_py.write_text(
        "import sys\nfrom runplz.loader import load_app\n"
        "module, app = load_app(sys.argv[1])\n"
        "app.bind('slurm', host='runplz-slurm', outputs_dir=sys.argv[2])\n"
        "module.sleeper.remote()\n"
    )
    driver = subprocess.Popen(
        [sys.executable, str(driver_py), str(script), str(tmp_path / "out")], cwd=script.parent, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )
    for line in driver.stdout:
        if "sleeper-started" in line:
            break
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    (job,) = cluster.queue()
    assert show_job(cluster, job)["TimeLimit"] == "00:10:00"  # it ends at its --time even if nobody cancels it
    down = subprocess.run([sys.executable, "-m", "runplz", "down", "last"], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=180)
    assert down.returncode == 0 and f"cancelled Slurm job {job}" in down.stdout, down.stdout + down.stderr
    assert cluster.queue() == []


def test_without_host_this_machine_is_the_login_node(tmp_path, cache, cluster, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", cluster.conf)
    script = make_repo(tmp_path / "repo", JOB.replace('account="runplz", ', f'workdir="{tmp_path}/work", '))
    console = RecordingConsole()
    container = make_container(str(cache))
    container.console.override(console)
    container.job_output.override(RecordingJobOutput())
    module, app = load_app(str(script))
    app.bind("slurm", outputs_dir=str(tmp_path / "out"), container=container)
    value = module.specs.remote()
    assert value["token"] == SECRET
    assert (tmp_path / "out" / "where.txt").read_text().startswith(f"{tmp_path}/work/.runplz/slurm-runs/")
    assert oct(os.stat(next((tmp_path / "work" / ".runplz" / "slurm-runs").glob("*/ctl/env"))).st_mode & 0o777) == "0o600"
    assert json.loads(json.dumps(value))["job"] == show_job(cluster, value["job"])["JobId"]


# --- the spec-to-sbatch mapping, sampled against the real sbatch --test-only ---

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from runplz import Image, SlurmConfig  # noqa: E402
from runplz.domain.slurm import job_name, sbatch_directives  # noqa: E402
from runplz.domain.spec import function_spec  # noqa: E402

_gpu = st.sampled_from([None, "A100", "a100", "A100-80GB", "any"])


@st.composite
def _fitting(draw):
    gpu = draw(_gpu)
    spec = function_spec(
        draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
        image=Image.from_registry("python:3.11-slim"),
        gpu=gpu, num_gpus=draw(st.integers(1, 2)) if gpu else 1,
        min_cpu=draw(st.none() | st.floats(0.1, 2.0)),
        min_memory=draw(st.none() | st.floats(0.01, 0.5)),
        timeout=draw(st.none() | st.integers(1, 10 * 86400)),
    )
    config = SlurmConfig(
        account=draw(st.sampled_from([None, "runplz"])), partition=draw(st.sampled_from([None, "debug"])),
        gpu_flag=draw(st.sampled_from(["gres", "gpus"])), requeue=draw(st.booleans()),
        extra_directives=draw(st.sampled_from([(), ("--nice=10",), ("#SBATCH --comment=runplz",)])),
    )
    return spec, config


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_fitting())
def test_sampled_directives_pass_sbatch_test_only(cluster, slurm_login, case):
    spec, config = case
    lines = sbatch_directives(spec, config, name=job_name("app", spec.name), chdir=cluster.shared,
                              output=f"{cluster.shared}/%j.out", limit_seconds=spec.timeout)
    script = "#!/bin/bash\n" + "\n".join(lines) + "\ntrue\n"
    done = slurm_login.ssh("sbatch --test-only", stdin=script)
    assert done.returncode == 0, (lines, done.stderr)
    assert "to start at" in done.stderr
