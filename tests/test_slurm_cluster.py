"""The throwaway Slurm cluster (groundwork for a Slurm backend): real slurmctld,
slurmd, slurmdbd, MariaDB and munged, driven here as root and on its login node
over the throwaway sshd, the way a backend would drive a real cluster."""

from __future__ import annotations

import time

import pytest

from testsupport.slurm_fixture import local_client

pytestmark = pytest.mark.real


@pytest.fixture(params=["local", "login"])
def slurm(request, slurm_cluster):
    """The cluster's client commands, run here as root or on the login node as runplz."""
    client = local_client(slurm_cluster) if request.param == "local" else request.getfixturevalue("slurm_login").client()
    yield client
    leftover = slurm_cluster.queue()
    if leftover:
        slurm_cluster.run("scancel", *leftover)


def _user(slurm) -> str:
    return "root" if slurm.where == "local" else "runplz"


def test_the_node_is_idle_with_two_fake_gpus_and_the_cluster_is_in_slurmdbd(slurm_cluster):
    node = slurm_cluster.run("sinfo", "-h", "-N", "-o", "%N %T %c %m %G", check=True).stdout.split()
    assert node == [slurm_cluster.node, "idle", str(slurm_cluster.cpus), str(slurm_cluster.memory_mb), "gpu:a100:2"]
    clusters = slurm_cluster.run("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster", check=True).stdout
    assert clusters.split() == ["runplz"]
    users = slurm_cluster.run("sacctmgr", "-n", "-P", "show", "user", "format=user,defaultaccount", check=True)
    assert "runplz|runplz" in users.stdout.split()


def test_a_job_reads_back_what_it_asked_for_and_completes(slurm):
    began = time.monotonic()
    job = slurm.sbatch("--cpus-per-task=1", "--mem=100M", "--time=1", "--job-name=runplz-res",
                       script="#!/bin/sh\necho hello from $SLURM_JOB_ID\n")
    shown = slurm.show_job(job)
    assert shown["JobName"] == "runplz-res"
    assert shown["CPUs/Task"] == "1"
    assert shown["MinMemoryNode"] == "100M"
    assert shown["TimeLimit"] == "00:01:00"
    assert shown["UserId"].startswith(_user(slurm) + "(")
    record = slurm.wait_sacct(job, ("COMPLETED", "FAILED", "CANCELLED"))
    turnaround = time.monotonic() - began
    assert (record["State"], record["ExitCode"], record["User"]) == ("COMPLETED", "0:0", _user(slurm))
    assert slurm.output(job) == f"hello from {job}\n"
    assert turnaround < 30, f"sbatch to sacct COMPLETED took {turnaround:.1f}s"


def test_a_job_asking_for_two_gpus_sees_cuda_visible_devices(slurm):
    script = "#!/bin/sh\necho CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES\n"
    both = slurm.sbatch("--gres=gpu:2", "--mem=100M", script=script)
    one = slurm.sbatch("--gres=gpu:a100:1", "--mem=100M", script=script)
    assert "gpu:2" in slurm.show_job(both)["TresPerNode"]
    assert slurm.wait_sacct(both, ("COMPLETED", "FAILED"))["State"] == "COMPLETED"
    assert slurm.wait_sacct(one, ("COMPLETED", "FAILED"))["State"] == "COMPLETED"
    assert slurm.output(both) == "CUDA_VISIBLE_DEVICES=0,1\n"
    assert slurm.output(one) in ("CUDA_VISIBLE_DEVICES=0\n", "CUDA_VISIBLE_DEVICES=1\n")


def test_a_job_that_exits_3_is_failed_with_exit_code_3(slurm):
    job = slurm.sbatch("--mem=100M", script="#!/bin/sh\necho about to fail\nexit 3\n")
    record = slurm.wait_sacct(job, ("COMPLETED", "FAILED", "CANCELLED"))
    assert (record["State"], record["ExitCode"]) == ("FAILED", "3:0")
    assert slurm.show_job(job)["ExitCode"] == "3:0"


def test_a_job_killed_by_a_signal_shows_the_signal_in_its_exit_code(slurm):
    job = slurm.sbatch("--mem=100M", script="#!/bin/sh\nkill -KILL $$\n")
    record = slurm.wait_sacct(job, ("COMPLETED", "FAILED", "CANCELLED"))
    assert (record["State"], record["ExitCode"]) == ("FAILED", "0:9")


def test_scancel_of_a_running_job_leaves_squeue_empty_and_sacct_cancelled(slurm):
    job = slurm.sbatch("--mem=100M", script="#!/bin/sh\nsleep 300\n")
    assert slurm.wait_squeue(job, "RUNNING") == "RUNNING"
    assert slurm.wait_sacct(job, ("RUNNING",))["State"] == "RUNNING"
    cancelled = slurm.run(["scancel", job], None)
    assert cancelled.returncode == 0, cancelled.stderr
    assert slurm.wait_squeue(job, "") == ""
    assert slurm.wait_sacct(job, ("CANCELLED",))["State"].startswith("CANCELLED")


def test_pending_jobs_show_their_reason_in_squeue(slurm, slurm_cluster):
    held = slurm.sbatch("--mem=100M", "--hold")
    later = slurm.sbatch("--mem=100M", "--begin=now+1hour")
    whole = slurm.sbatch(f"--cpus-per-task={slurm_cluster.cpus}", "--mem=100M", script="#!/bin/sh\nsleep 300\n")
    assert slurm.wait_squeue(whole, "RUNNING") == "RUNNING"
    waiting = slurm.sbatch("--cpus-per-task=1", "--mem=100M")
    assert slurm.squeue(held, "%T %r") == "PENDING JobHeldUser"
    assert slurm.squeue(later, "%T %r") == "PENDING BeginTime"
    assert slurm.wait_squeue(waiting, "PENDING Resources", "%T %r") == "PENDING Resources"
    assert slurm.run(["scancel", held, later, whole, waiting], None).returncode == 0
    for job in (held, later, whole, waiting):
        assert slurm.wait_squeue(job, "") == ""


def test_sbatch_test_only_accepts_a_valid_request_and_rejects_impossible_ones(slurm, slurm_cluster):
    valid = ["--cpus-per-task=1", "--mem=100M", "--time=10", "--gres=gpu:a100:2"]
    accepted = slurm.run(["sbatch", "--test-only", *valid, f"--chdir={slurm.shared}"], "#!/bin/sh\ntrue\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "to start at" in accepted.stderr
    impossible = {
        f"--cpus-per-task={slurm_cluster.cpus + 1}": "Requested node configuration is not available",
        "--gres=gpu:3": "Requested node configuration is not available",
        "--gres=gpu:h100:1": "Requested node configuration is not available",
        "--gres=tpu:1": "Invalid generic resource (gres) specification",
        "--partition=nowhere": "invalid partition specified",
        "--account=nobody": "Invalid account",
    }
    for option, message in impossible.items():
        refused = slurm.run(["sbatch", "--test-only", "--mem=100M", option, f"--chdir={slurm.shared}"],
                            "#!/bin/sh\ntrue\n")
        assert refused.returncode != 0, option
        assert message in refused.stderr, (option, refused.stderr)
    assert slurm_cluster.queue() == []


def test_runplz_near_reaches_the_cluster_through_the_default_config(slurm_cluster, ssh_boxes):
    if not slurm_cluster.linked_default:
        pytest.skip("/etc/slurm/slurm.conf belongs to something else here; use the runplz-slurm login node")
    done = ssh_boxes.ssh("runplz-near", "sinfo -h -o %T; sbatch --test-only --mem=100M --wrap=true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["idle"]
    assert "to start at" in done.stderr


def test_the_login_node_passes_slurm_conf_through_the_box_environment(slurm_login):
    done = slurm_login.ssh("echo $SLURM_CONF; id -un")
    assert done.stdout.split() == [slurm_login.cluster.conf, "runplz"]
