"""The slurm backend and the cluster's limits: a map past MaxArraySize is refused
before anything is uploaded; a job without a time limit is told which
partition limit holds it (a warning when there is none); old run folders under
``.runplz/slurm-runs`` are pruned by the box's rule, never one whose job is in
squeue or whose run is followed.

The fast tests answer for scontrol and squeue with fakes (a `FakeTransport`
program, squeue's text); the ``real`` ones use the single-node cluster through
its login node over the real sshd."""

from __future__ import annotations

import inspect
import os
import re
import time

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_transport import FakeTransport
from runplz.cli.main import cli
from runplz.domain.errors import ConfigError
from runplz.domain.slurm_limits import (
    PartitionTime,
    array_refusal,
    directive,
    max_array_size,
    partition_time,
    partitions,
    script_run,
    time_notice,
    time_seconds,
)
from runplz.runtime import prune as box_prune
from runplz.runtime import slurm_prune
from runplz.services.slurm_backend import ArrayGate
from runplz.services.slurm_limits import ClusterLimits, NoticingScheduler
from runplz.testing import FakeSlurm, fake_container

from .jobs import chdir, make_repo

CONFIG = "Configuration data as of 2026-11-29T10:00:00\nAccountingStorageType   = accounting_storage/slurmdbd\n" \
         "MaxArraySize            = 4\nMaxJobCount             = 10000\n"
PARTITIONS = (
    "PartitionName=debug AllowGroups=ALL Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO "
    "MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 Nodes=node1 State=UP\n"
    "PartitionName=short AllowGroups=ALL Default=NO DefaultTime=00:10:00 MaxTime=1-00:00:00 Nodes=node1 State=UP\n"
    "PartitionName=long AllowGroups=ALL Default=NO DefaultTime=NONE MaxTime=7-00:00:00 Nodes=node1 State=UP\n"
)
NO_LIMIT_SCRIPT = "#!/bin/bash\n#SBATCH --job-name=x\n#SBATCH --chdir=HOME/.runplz/slurm-runs/run-1/repo\n" \
                  "#SBATCH --output=HOME/job.log\ntrue\n"
LIMITED_SCRIPT = "#!/bin/bash\n#SBATCH --chdir=HOME/.runplz/slurm-runs/run-2/repo\n#SBATCH --output=HOME/job.log\n" \
                 "#SBATCH --time=0-00:05:00\ntrue\n"


def scontrol(config: str = CONFIG, partitions_text: str = PARTITIONS, asked: list | None = None):
    """A fake ``scontrol`` (show config / show partition -o [NAME])."""

    def program(inv) -> int:
        if asked is not None:
            asked.append(tuple(inv.argv))
        if inv.argv[1:3] == ("show", "config"):
            inv.out(config, end="")
            return 0
        if inv.argv[1:4] == ("show", "partition", "-o"):
            name = inv.argv[4] if len(inv.argv) > 4 else None
            rows = [r for r in partitions_text.splitlines() if name is None or f"PartitionName={name} " in r]
            if not rows:
                inv.err(f"Partition {name} not found")
                return 1
            inv.out("\n".join(rows))
            return 0
        return 1

    return program


# ---------------------------------------------------------------- pure


def test_scontrols_words_read_as_limits():
    assert max_array_size(CONFIG) == 4
    assert max_array_size("MaxArraySize = x\n") is None and max_array_size("") is None
    found = partitions(PARTITIONS)
    assert [p["PartitionName"] for p in found] == ["debug", "short", "long"]
    assert partition_time(found, None) == PartitionTime("debug", "MaxTime", "UNLIMITED", None)
    assert partition_time(found, "short") == PartitionTime("short", "DefaultTime", "00:10:00", 600.0)
    assert partition_time(found, "long") == PartitionTime("long", "MaxTime", "7-00:00:00", 7 * 86400.0)
    assert partition_time(found, "gone") is None
    assert [time_seconds(t) for t in ("5", "5:30", "1:00:00", "2-3", "2-3:04", "1-00:00:01", "INFINITE")] == [
        300.0, 330.0, 3600.0, 183600.0, 183840.0, 86401.0, None]
    with pytest.raises(ValueError):
        time_seconds("NONE")


def test_the_lines_runplz_says():
    assert array_refusal(4, 4, "login") is None
    assert array_refusal(1002, 1001, "login") == (
        "a .map() of 1002 inputs is more than the cluster's MaxArraySize of 1001 on login (a job array's tasks "
        "are numbered 0-1000); split it into .map() calls of at most 1001 inputs each")
    warn, line = time_notice(PartitionTime("debug", "MaxTime", "UNLIMITED", None), "train", "r1")
    assert warn and line.startswith("no timeout: if this driver dies, train's Slurm job (run r1) may run until "
                                    "`runplz down r1` or scancel") and "set timeout=" in line
    warn, line = time_notice(PartitionTime("short", "DefaultTime", "00:10:00", 600.0), "train", "r1")
    assert not warn and line == "no timeout: train's Slurm job gets partition short's time limit (DefaultTime=00:10:00)"
    assert directive(LIMITED_SCRIPT, "time") == "0-00:05:00" and directive(NO_LIMIT_SCRIPT, "time") is None
    assert directive(NO_LIMIT_SCRIPT, "output") == "HOME/job.log"
    assert script_run(NO_LIMIT_SCRIPT) == "run-1"


# ---------------------------------------------------------------- MaxArraySize


def test_the_gate_asks_once_right_after_connecting_and_refuses_past_the_limit():
    asked: list = []
    transport = FakeTransport({"scontrol": scontrol(asked=asked)}, name="login")
    gate = ArrayGate(transport, 4)
    gate.connect(5)
    gate.connect(5)  # a reconnect asks nothing
    assert asked == [("scontrol", "show", "config")]
    with pytest.raises(ConfigError, match=r"a \.map\(\) of 5 inputs is more than the cluster's MaxArraySize of 4 on "
                                          r"login .*split it into \.map\(\) calls of at most 4 inputs each"):
        ArrayGate(FakeTransport({"scontrol": scontrol()}, name="login"), 5).connect(5)
    ArrayGate(FakeTransport({}, name="no-scontrol"), 5000).connect(5)  # nothing to ask: sbatch stays the judge


MAP_JOB = '''
from runplz import App, Image

app = App("big-map")


@app.function(image=Image.from_registry("python:3.11-slim"), timeout=60)
def square(x: int) -> int:
    return x * x


@app.local_entrypoint()
def main(n: int = 5):
    print(sum(square.map(range(n))))
'''


def test_a_map_past_max_array_size_is_one_line_exit_2_with_nothing_uploaded(tmp_path):
    transport = FakeTransport({"scontrol": scontrol()}, name="login")
    slurm = FakeSlurm(folder=str(tmp_path / "slurm"))
    container = fake_container(str(tmp_path / "cache"))
    container.ssh_transport.override(providers.Callable(lambda target: transport))
    container.slurm_scheduler.override(providers.Callable(lambda transport: slurm))
    make_repo(tmp_path / "repo", MAP_JOB)
    with chdir(tmp_path / "repo"):
        result = CliRunner().invoke(cli, ["slurm", "--host", "login", "job.py", "--n", "5"], obj=container)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("runplz: error")]
    assert len(errors) == 1 and "MaxArraySize of 4" in errors[0] and "Traceback" not in result.output
    assert transport.connections == 1
    assert transport.files == {} and slurm.submitted == []  # refused before the upload, nothing queued


# ---------------------------------------------------------------- no --time


def noticing(home, partition=None, programs=None):
    console = RecordingConsole()
    slurm = FakeSlurm(folder=str(home / "slurm"))
    asked: list = []
    transport = FakeTransport(programs if programs is not None else {"scontrol": scontrol(asked=asked)}, name="login")
    transport.connect()
    return NoticingScheduler(slurm, ClusterLimits(transport), console, partition, "train"), console, slurm, asked


def test_a_job_without_time_is_told_its_partitions_limit_before_it_is_submitted(tmp_path):
    untimed, timed = (text.replace("HOME", str(tmp_path)) for text in (NO_LIMIT_SCRIPT, LIMITED_SCRIPT))
    scheduler, console, slurm, asked = noticing(tmp_path)
    job = scheduler.submit(untimed)
    assert [w for w in console.warnings if w.startswith("no timeout")] == [
        "no timeout: if this driver dies, train's Slurm job (run run-1) may run until `runplz down run-1` or "
        "scancel, since partition debug has no time limit (MaxTime=UNLIMITED); set timeout= on the function or "
        "SlurmConfig(max_runtime_seconds=...)"]
    assert asked == [("scontrol", "show", "partition", "-o")] and slurm.submitted == [untimed]
    slurm.cancel(job)

    scheduler, console, slurm, asked = noticing(tmp_path, "short")
    slurm.cancel(scheduler.submit(untimed))
    assert asked == [("scontrol", "show", "partition", "-o", "short")] and console.warnings == []
    assert "no timeout: train's Slurm job gets partition short's time limit (DefaultTime=00:10:00)" in console.infos

    scheduler, console, slurm, asked = noticing(tmp_path)
    slurm.cancel(scheduler.submit(timed))
    assert asked == [] and console.warnings == [] and console.infos == []  # --time set: nothing to ask

    scheduler, console, slurm, _ = noticing(tmp_path, programs={})
    slurm.cancel(scheduler.submit(untimed))
    assert console.infos == ["no timeout: train's Slurm job gets the default partition's time limit (could not read it)"]


def plan(tmp_path, timeout: str) -> str:
    make_repo(tmp_path, MAP_JOB.replace("timeout=60", timeout))
    with chdir(tmp_path):
        result = CliRunner().invoke(cli, ["plan", "slurm", "job.py"], obj=fake_container(str(tmp_path / "cache")))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_plan_says_partition_default_without_asking_the_cluster(tmp_path):
    text = plan(tmp_path / "a", "min_cpu=1")
    assert "# --time: partition default" in text and "sbatch --parsable" in text
    assert re.search(r"run .*--time: partition default", text)
    assert "partition default" not in plan(tmp_path / "b", "timeout=60")


# ---------------------------------------------------------------- pruning

PRUNE_STATES = "state" in inspect.signature(box_prune.prune).parameters
needs_states = pytest.mark.skipif(
    not PRUNE_STATES, reason="runtime/prune.py takes no state= yet (the change proposed in this task's report)")
DAY = 86400.0


def make_run(runs, name, *, age_days, submitted=True, ended=True, outputs=False, tasks=0, following=None):
    """A slurm run folder as runplz leaves it, its files ``age_days`` old."""
    folder = runs / name
    (folder / "ctl").mkdir(parents=True)
    (folder / "repo").mkdir()
    (folder / "repo" / "job.py").write_text("x")
    (folder / "out").mkdir()
    if outputs:
        (folder / "out" / "model.bin").write_text("w")
    paths = [folder / "ctl" / "payload.json"]
    if submitted:
        paths += [folder / "ctl" / "job.sh", folder / "ctl" / "job.log"]
    if ended:
        paths.append(folder / "ctl" / "exit_code")
    for index in range(tasks):
        (folder / "tasks" / str(index) / "out").mkdir(parents=True)
        paths += [folder / "tasks" / str(index) / "job.log", folder / "tasks" / str(index) / "exit_code"]
    when = time.time() - age_days * DAY
    for path in paths:
        path.write_text("0")
        os.utime(path, (when, when))
    if following is not None:
        (folder / "ctl" / "following").write_text("")
        os.utime(folder / "ctl" / "following", (following, following))
    os.utime(folder, (when, when))
    return folder


def squeue_text(runs, *names):
    return "".join(f"{runs.resolve()}/{name}/repo\n" for name in names) + "/elsewhere/job\n"


@needs_states
def test_slurm_runs_are_pruned_by_the_box_rule_with_the_schedulers_liveness(tmp_path):
    runs = tmp_path / ".runplz" / "slurm-runs"
    old = [make_run(runs, f"old-{i:02d}", age_days=20 + i) for i in range(12)]
    queued = make_run(runs, "queued", age_days=30, ended=False)  # in squeue: pending for a month
    followed = make_run(runs, "followed", age_days=30, following=time.time() - 60)
    fresh = make_run(runs, "fresh", age_days=0.001, ended=False)  # just submitted, not in squeue's answer yet
    unstarted = make_run(runs, "unstarted", age_days=2, submitted=False, ended=False)
    young_unstarted = make_run(runs, "uploading", age_days=0.5, submitted=False, ended=False)
    waiting = make_run(runs, "waiting", age_days=40, outputs=True, tasks=2)
    count, freed = slurm_prune.prune_runs(str(runs), squeue_text(runs, "queued"))
    # 13 finished: the 10 newest stay; of the 3 oldest, "old-10", "old-11" go, "waiting" (40 days) goes too
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == sorted(
        [f"old-{i:02d}" for i in range(10)] + ["queued", "followed", "fresh", "uploading"])
    assert count == 4 and freed > 0 and not unstarted.exists() and not waiting.exists()
    for kept in old[:10]:
        assert not (kept / "repo").exists() and (kept / "ctl" / "exit_code").exists()  # finished: code gone
    for live in (queued, followed, fresh, young_unstarted):
        assert (live / "repo" / "job.py").exists()


@needs_states
def test_outputs_still_out_keep_a_run_and_a_silent_squeue_prunes_nothing(tmp_path):
    runs = tmp_path / "slurm-runs"
    for i in range(11):
        make_run(runs, f"r{i:02d}", age_days=2 + i)
    outputs = make_run(runs, "array-with-outputs", age_days=11.5, tasks=3)
    (outputs / "tasks" / "1" / "out" / "part.txt").write_text("not home yet")
    assert slurm_prune.prune_runs(str(runs), None) is None  # squeue did not answer
    assert len(list(runs.iterdir())) == 12 and (runs / "r00" / "repo").exists()
    slurm_prune.prune_runs(str(runs), "")
    assert (outputs / "tasks" / "1" / "out" / "part.txt").exists() and not (runs / "r10").exists()


@needs_states
def test_a_run_without_an_end_of_its_own_is_kept_until_it_is_abandoned(tmp_path):
    """squeue may not list a live job (a hidden partition, another cluster sharing
    $HOME, a job held for long): without its own exit code a run is kept whole,
    until nothing in it changed for 30 days."""
    runs = tmp_path / "slurm-runs"
    for i in range(11):
        make_run(runs, f"r{i:02d}", age_days=2 + i)
    unlisted = make_run(runs, "unlisted", age_days=20, ended=False)  # not in squeue's answer, no exit code
    array = make_run(runs, "array-unfinished", age_days=20, ended=False, tasks=2)
    os.remove(array / "tasks" / "1" / "exit_code")  # task 1 has not ended
    abandoned = make_run(runs, "abandoned", age_days=31, ended=False)
    slurm_prune.prune_runs(str(runs), "")
    for kept in (unlisted, array):
        assert (kept / "repo" / "job.py").exists() and (kept / "ctl" / "job.sh").exists()
    assert not abandoned.exists()  # counted finished at its last change: past the 10 newest, outputs home


def test_without_prune_states_nothing_is_touched(tmp_path, monkeypatch):
    runs = tmp_path / "slurm-runs"
    for i in range(12):
        make_run(runs, f"r{i:02d}", age_days=20 + i)
    monkeypatch.setattr(box_prune, "prune", lambda runs: (_ for _ in ()).throw(AssertionError("box rule ran")))
    assert slurm_prune.prune_runs(str(runs), "") is None
    assert len(list(runs.iterdir())) == 12


# ================================================================ the real cluster

from . import test_slurm_backend as _backend  # noqa: E402

Bound = _backend.Bound
cache, cluster = _backend.cache, _backend.cluster  # its fixtures, for the tests below

REAL = '''
import os, time
from runplz import App, Image, SlurmConfig

app = App("slurm-limits", slurm_config=SlurmConfig(account="runplz", poll_seconds=0.3, max_poll_seconds=1,
                                                   partition=PARTITION))
image = Image.from_registry("python:3.11-slim")


@app.function(image=image, min_memory=0.1)
def untimed(x: int = 0) -> dict:
    return {"x": x, "job": os.environ["SLURM_JOB_ID"]}


@app.function(image=image, min_memory=0.1, timeout=300)
def timed(x: int = 0) -> int:
    return x
'''


def real_bound(tmp_path, cache, partition=None):
    script = make_repo(tmp_path / "repo", REAL.replace("PARTITION", repr(partition)))
    return Bound(script, tmp_path / "out", cache)


def login_runs(slurm_login) -> list[str]:
    done = slurm_login.ssh("ls -1 .runplz/slurm-runs 2>/dev/null; true")
    return sorted(done.stdout.split())


@pytest.mark.real
def test_real_a_map_one_past_max_array_size_is_refused_before_the_upload(tmp_path, cache, cluster, slurm_login):
    text = cluster.run("scontrol", "show", "config", check=True).stdout
    limit = max_array_size(text)
    assert limit is not None and limit >= 2
    bound = real_bound(tmp_path, cache)
    before = login_runs(slurm_login)
    with pytest.raises(ConfigError, match=rf"more than the cluster's MaxArraySize of {limit} on runplz-slurm"):
        list(bound.module.timed.map(range(limit + 1)))
    assert login_runs(slurm_login) == before  # no run folder: nothing was uploaded
    assert cluster.queue() == [] and not any("to Slurm on" in m for m in bound.console.infos)


@pytest.mark.real
def test_real_no_timeout_warns_on_the_unlimited_partition_and_names_a_limited_ones_limit(tmp_path, cache, cluster):
    shown = cluster.run("scontrol", "show", "partition", "-o", check=True).stdout
    (default,) = [p for p in partitions(shown) if p.get("Default") == "YES"]
    assert (default["DefaultTime"], default["MaxTime"]) == ("NONE", "UNLIMITED")  # the test cluster's debug
    bound = real_bound(tmp_path / "a", cache)
    value = bound.module.untimed.remote(1)
    (warning,) = [w for w in bound.console.warnings if w.startswith("no timeout")]
    assert f"partition {default['PartitionName']} has no time limit (MaxTime=UNLIMITED)" in warning
    assert cluster.run("scontrol", "show", "job", value["job"]).stdout.count("TimeLimit=UNLIMITED") == 1
    bound.module.timed.remote(2)
    assert len([w for w in bound.console.warnings if w.startswith("no timeout")]) == 1  # a timeout: nothing said

    name = f"rpzlim{os.getpid()}"
    cluster.run("scontrol", "create", f"PartitionName={name}", "Nodes=ALL", "DefaultTime=00:07:00",
                "MaxTime=00:30:00", "State=UP", check=True)
    try:
        limited = real_bound(tmp_path / "b", cache, partition=name)
        value = limited.module.untimed.remote(3)
        assert f"no timeout: untimed's Slurm job gets partition {name}'s time limit (DefaultTime=00:07:00)" \
            in limited.console.infos
        assert not any(w.startswith("no timeout") for w in limited.console.warnings)
        assert "TimeLimit=00:07:00" in cluster.run("scontrol", "show", "job", value["job"]).stdout
    finally:
        cluster.run("scontrol", "delete", f"PartitionName={name}")


PLANT = '''
import os, sys, time
runs = os.path.expanduser("~/.runplz/slurm-runs")
now = time.time()
for name, age, submitted, ended in [(f"zz-old-{i:02d}", 20 + i, True, True) for i in range(12)] + [
        ("zz-queued", 30, True, False), ("zz-unstarted", 2, False, False)]:
    folder = os.path.join(runs, name)
    for sub in ("ctl", "repo", "out"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    files = [os.path.join(folder, "repo", "job.py")]
    files += [os.path.join(folder, "ctl", n) for n in (("job.sh", "job.log") if submitted else ()) + (("exit_code",) if ended else ())]
    for path in files:
        open(path, "w").write("0")
        os.utime(path, (now - age * 86400, now - age * 86400))
    os.utime(folder, (now - age * 86400, now - age * 86400))
print(os.path.realpath(runs))
'''


@pytest.mark.real
@needs_states
def test_real_old_runs_are_pruned_after_a_submit_but_not_a_queued_one(tmp_path, cache, cluster, slurm_login):
    planted = slurm_login.ssh("python3 -", stdin=PLANT)
    assert planted.returncode == 0, planted.stderr
    runs = planted.stdout.strip()
    client = slurm_login.client()
    blocker = client.sbatch("--account=runplz", "--mem=50M", f"--chdir={runs}/zz-queued/repo", "--hold",
                            script="#!/bin/sh\nsleep 300\n")
    try:
        bound = real_bound(tmp_path, cache)
        assert bound.module.timed.remote(4) == 4
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "zz-unstarted" in login_runs(slurm_login):
            time.sleep(0.5)
        left = login_runs(slurm_login)
        assert "zz-unstarted" not in left and "zz-queued" in left
        # the newest 10 finished runs stay (runs of other tests, ended more than an hour ago, count too)
        assert "zz-old-11" not in left and "zz-old-10" not in left
        assert slurm_login.ssh(f"test -f {runs}/zz-queued/repo/job.py").returncode == 0
        for name in (n for n in left if n.startswith("zz-old-")):
            assert slurm_login.ssh(f"test -e {runs}/{name}/repo").returncode != 0  # finished: code gone
    finally:
        client.run(["scancel", blocker], None)
        slurm_login.ssh(f"rm -rf {runs}/zz-*")
