"""Pytest fixtures for the throwaway Slurm cluster (testsupport/slurm_cluster.py).

- ``slurm_cluster``: the running cluster, started once per session; its
  `env` (SLURM_CONF) lets local client commands reach it.
- ``slurm_login``: a login node for it: one more sshd next to the ssh boxes
  (alias ``runplz-slurm``, user ``runplz``, same key and client config) whose
  sessions get SLURM_CONF through the box environment, like a real cluster's
  login host. (``runplz-near`` reaches the cluster too, through the default
  /etc/slurm/slurm.conf symlink, when start() could place it.)

Import them into a test module (``from testsupport.slurm_fixture import
slurm_cluster, slurm_login  # noqa: F401``) or into a conftest.py; both need
their ``_..._session`` fixtures importable from the same place.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from typing import Callable

import attrs
import pytest

from . import slurm_cluster as _cluster
from . import sshd
from .real import unavailable

LOGIN_ALIAS = "runplz-slurm"


@attrs.define
class SlurmClient:
    """Slurm client commands run one way (here as root, or on the login node over
    ssh); ``run(argv, stdin)`` does the running. Job outputs go to the cluster's
    shared folder as ``<jobid>.out``."""

    where: str
    run: Callable[[list[str], str | None], subprocess.CompletedProcess]
    shared: str

    def sbatch(self, *options: str, script: str = "#!/bin/sh\ntrue\n") -> str:
        """Submit ``script`` (on stdin) with ``options``; returns the job id."""
        argv = ["sbatch", "--parsable", f"--chdir={self.shared}", f"--output={self.shared}/%j.out", *options]
        done = self.run(argv, script)
        if done.returncode != 0:
            raise AssertionError(f"{self.where}: sbatch {' '.join(options)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout.strip().split(";")[0]

    def output(self, job: str) -> str:
        return self.run(["cat", f"{self.shared}/{job}.out"], None).stdout

    def show_job(self, job: str) -> dict[str, str]:
        """``scontrol show job`` as a dict of its KEY=VALUE fields."""
        text = self.run(["scontrol", "show", "job", job], None).stdout
        return dict(re.findall(r"(?:^|\s)([\w/:]+)=(\S*)", text))

    def sacct(self, job: str) -> dict[str, str]:
        """The allocation's accounting record (State, ExitCode, ...); {} until slurmdbd has it."""
        fields = ("JobID", "State", "ExitCode", "User", "Account", "AllocCPUS", "Elapsed")
        done = self.run(["sacct", "-n", "-P", "-X", "-j", job, "-o", ",".join(fields)], None)
        for line in done.stdout.splitlines():
            values = line.split("|")
            if len(values) == len(fields) and values[0] == job:
                return dict(zip(fields, values))
        return {}

    def wait_sacct(self, job: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, str]:
        """Poll sacct until the job's State (first word) is one of ``states``."""
        deadline = time.monotonic() + timeout
        record: dict[str, str] = {}
        while time.monotonic() < deadline:
            record = self.sacct(job)
            if record and record["State"].split()[0] in states:
                return record
            time.sleep(0.2)
        raise AssertionError(f"{self.where}: job {job} never reached {states} in sacct; last record {record}")

    def squeue(self, job: str, fmt: str = "%T") -> str:
        """squeue's ``fmt`` line for ``job``; '' once squeue no longer lists it."""
        return self.run(["squeue", "-h", "-j", job, "-o", fmt], None).stdout.strip()

    def wait_squeue(self, job: str, expected: str, fmt: str = "%T", timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        seen = self.squeue(job, fmt)
        while seen != expected and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = self.squeue(job, fmt)
        return seen


def local_client(cluster: _cluster.Cluster) -> SlurmClient:
    """Client commands run here as root with the cluster's env."""

    def run(argv: list[str], stdin: str | None) -> subprocess.CompletedProcess:
        return subprocess.run(argv, input=stdin, env={**os.environ, **cluster.env}, capture_output=True,
                              text=True, timeout=60)

    return SlurmClient("local", run, cluster.shared)


@attrs.define
class LoginNode:
    alias: str
    user: str
    box: sshd.Box
    boxes: sshd.Boxes
    client_config: str  # the Host block for `alias`, included into the boxes' client config
    cluster: _cluster.Cluster

    def ssh(self, command: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``command`` (a shell line) on the login node as `user`, through the ssh wrapper."""
        argv = [os.path.join(self.boxes.wrapper_dir, "ssh"), "-T", "-o", "StrictHostKeyChecking=accept-new",
                self.alias, command]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)

    def client(self) -> SlurmClient:
        """Client commands run on the login node (as `user`, over ssh)."""
        return SlurmClient(self.alias, lambda argv, stdin: self.ssh(shlex.join(argv), stdin), self.cluster.shared)

    def stop(self) -> None:
        self.boxes.exclude(self.client_config)
        pid = self.box.pid()
        if pid:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass


def start_login(cluster: _cluster.Cluster, boxes: sshd.Boxes) -> tuple[LoginNode | None, str]:
    """Start the login node's sshd on a free port of 127.0.0.1; returns (login, reason-if-none)."""
    folder = os.path.join(cluster.workdir, "login")
    os.makedirs(folder, exist_ok=True)
    port = sshd.free_port()
    env = {**boxes.env, **cluster.env}
    error, log, pidfile = sshd.start_sshd(folder, "login", port, boxes.keys_dir, env)
    if error:
        return None, error
    config = os.path.join(folder, "ssh_config")
    with open(config, "w") as handle:
        handle.write(f"Host {LOGIN_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {sshd.USER}\n")
    boxes.include(config)
    box = sshd.Box(LOGIN_ALIAS, "127.0.0.1", port, log, pidfile)
    return LoginNode(LOGIN_ALIAS, sshd.USER, box, boxes, config, cluster), ""


@pytest.fixture(scope="session")
def _slurm_cluster_session():
    cluster, reason = _cluster.start()
    if cluster is None:
        yield None, reason
        return
    try:
        yield cluster, ""
    finally:
        cluster.stop()


@pytest.fixture
def slurm_cluster(_slurm_cluster_session) -> _cluster.Cluster:
    """A running single-node Slurm cluster with slurmdbd (sacct) and GRES gpu:a100:2."""
    cluster, reason = _slurm_cluster_session
    if cluster is None:
        unavailable(reason)
    return cluster


@pytest.fixture(scope="session")
def _slurm_login_session(_slurm_cluster_session, _ssh_boxes_session):
    cluster, reason = _slurm_cluster_session
    boxes, box_reason = _ssh_boxes_session
    if cluster is None or boxes is None:
        yield None, reason or box_reason
        return
    login, reason = start_login(cluster, boxes)
    if login is None:
        yield None, reason
        return
    try:
        yield login, ""
    finally:
        login.stop()


@pytest.fixture
def slurm_login(_slurm_login_session) -> LoginNode:
    """The cluster's login node, reached as ``ssh runplz-slurm`` (SLURM_CONF set there)."""
    login, reason = _slurm_login_session
    if login is None:
        unavailable(reason)
    return login


@pytest.fixture
def slurm_queue_emptied(slurm_cluster, slurm_login) -> _cluster.Cluster:
    """The cluster with its login node and an empty queue (what an earlier test
    left is cancelled first, so nothing of it holds the node's CPUs); whatever
    the test leaves is cancelled after it."""
    _empty(slurm_cluster)
    yield slurm_cluster
    leftover = slurm_cluster.queue()
    if leftover:
        slurm_cluster.run("scancel", *leftover)


def _empty(cluster: _cluster.Cluster, wait: float = 60) -> None:
    leftover = cluster.queue()
    if not leftover:
        return
    cluster.run("scancel", *leftover)
    deadline = time.monotonic() + wait
    while cluster.queue() and time.monotonic() < deadline:
        time.sleep(0.2)
