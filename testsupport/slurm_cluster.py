"""A throwaway single-node Slurm cluster for the tests, per shared/spec/real-parts.md.

`start()` (as root, with Debian's slurm-wlm, slurmdbd, munge and mariadb-server
installed) puts everything under one temp dir and starts, each by pid:
- munged as user munge, with its own key and socket (``AuthInfo=socket=``);
- a private mariadbd (own datadir, socket and a free port on 127.0.0.1);
  any system MariaDB service is left alone;
- slurmdbd on that database, with the cluster, an account and the users root
  and ``runplz`` (the ssh boxes' login) registered; associations are enforced;
- slurmctld and slurmd for one node at 127.0.0.1 (CPUs and RealMemory as
  ``slurmd -C`` reports them) with two fake GPUs as GRES ``gpu:a100:2``
  (``mknod`` character devices), all on free ports.
Clients find it through ``SLURM_CONF`` (`Cluster.env`); when nothing is at
/etc/slurm/slurm.conf a symlink to our config goes there while the cluster runs,
so a plain ``ssh runplz-near sbatch ...`` reaches it as well.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import attrs

from . import slurm_config
from .slurm_config import ACCOUNT, CLUSTER_NAME, GPU_COUNT, GPU_TYPE, PARTITION
from .sshd import free_port

__all__ = ["ACCOUNT", "CLUSTER_NAME", "GPU_COUNT", "GPU_TYPE", "PARTITION", "Cluster", "prerequisite", "start"]

USERS = ("root", "runplz")  # runplz: the ssh boxes' login (testsupport/sshd.py USER)
DEFAULT_CONF = "/etc/slurm/slurm.conf"
_TOOLS = {
    "munged": "munge", "slurmctld": "slurmctld", "slurmd": "slurmd", "slurmdbd": "slurmdbd",
    "sbatch": "slurm-client", "sacctmgr": "slurm-client", "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server", "mariadb": "mariadb-client",
}


@attrs.define
class Cluster:
    workdir: str
    conf: str  # slurm.conf; SLURM_CONF for every client
    node: str
    hardware: dict  # slurmd -C's fields: CPUs, Boards, SocketsPerBoard, ..., RealMemory
    shared: str  # a folder every user may write job outputs to
    daemons: list = attrs.field(factory=list)  # (name, Popen, log), in start order
    linked_default: bool = False  # we made /etc/slurm/slurm.conf point at `conf`
    started_s: float = 0.0  # seconds start() took

    @property
    def cpus(self) -> int:
        return int(self.hardware["CPUs"])

    @property
    def memory_mb(self) -> int:
        return int(self.hardware["RealMemory"])

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs on top of os.environ to reach this cluster."""
        return {"SLURM_CONF": self.conf}

    def run(self, *argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a Slurm client command (sbatch, squeue, sacct, ...) here, as root."""
        proc = subprocess.run(
            list(argv), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def queue(self) -> list[str]:
        """Ids of the jobs squeue still lists."""
        return self.run("squeue", "-h", "-o", "%i").stdout.split()

    def add_user(self, name: str) -> None:
        """Give ``name`` an association (jobs of users without one are refused)."""
        self.run("sacctmgr", "-i", "add", "user", name, f"Account={ACCOUNT}", f"Cluster={CLUSTER_NAME}")

    def stop(self) -> None:
        """Cancel what still runs, stop the daemons by pid, remove the temp dir."""
        if any(name == "slurmctld" and proc.poll() is None for name, proc, _ in self.daemons):
            jobs = self.queue()
            if jobs:
                self.run("scancel", *jobs)
                deadline = time.monotonic() + 20
                while self.queue() and time.monotonic() < deadline:
                    time.sleep(0.2)
        for name, proc, _ in reversed(self.daemons):
            _terminate(proc)
        _kill_leftovers(self.conf)
        if self.linked_default and os.path.islink(DEFAULT_CONF) and os.readlink(DEFAULT_CONF) == self.conf:
            os.unlink(DEFAULT_CONF)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, name: str, chars: int = 600) -> str:
        for daemon, _, log in self.daemons:
            if daemon == name:
                return _tail(log, chars)
        return ""


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _kill_leftovers(conf: str) -> None:
    """slurmstepd and job processes outlive slurmd; they carry SLURM_CONF=<ours>."""
    marker = f"SLURM_CONF={conf}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker not in handle.read().split(b"\0"):
                    continue
            os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _tail(path: str, chars: int = 600) -> str:
    try:
        with open(path, errors="replace") as handle:
            return handle.read()[-chars:].strip()
    except OSError:
        return ""


def prerequisite() -> str:
    """'' when this machine can run the cluster; else why not."""
    if os.geteuid() != 0:
        return "the Slurm cluster needs root (scripts/test.sh runs as root in CI)"
    missing = sorted({pkg for tool, pkg in _TOOLS.items() if not os.path.exists(_sbin(tool))})
    if missing:
        return f"Slurm tools missing: install {' '.join(missing)} (scripts/test.sh does)"
    for user in ("munge", "mysql"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"no '{user}' user (made by the {'munge' if user == 'munge' else 'mariadb-server'} package)"
    return ""


_HARDWARE = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")


def _node_hardware() -> tuple[str, dict]:
    """(node name, the node's layout and memory) as ``slurmd -C`` reports them."""
    out = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out))
    if not fields.get("CPUs", "").isdigit() or not fields.get("RealMemory", "").isdigit():
        raise _Failed(f"slurmd -C reported no CPUs/RealMemory: {out.strip()!r}")
    name = fields.get("NodeName") or socket.gethostname().split(".")[0]
    return name, {key: fields[key] for key in _HARDWARE if key in fields}


def _sbin(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"  # root's PATH may lack /usr/sbin


def _wait(check, seconds: float, procs: list) -> bool:
    """Poll ``check()`` until true; give up early when one of ``procs`` has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        if any(proc.poll() is not None for proc in procs):
            return bool(check())
        time.sleep(0.1)
    return False


def _quiet_ok(argv: list[str], env: dict | None = None, **kwargs) -> bool:
    try:
        return subprocess.run(argv, env=env, capture_output=True, timeout=15, **kwargs).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class _Failed(Exception):
    pass


def start() -> tuple[Cluster | None, str]:
    """Start the cluster; returns (cluster, reason-if-none)."""
    reason = prerequisite()
    if reason:
        return None, reason
    began = time.monotonic()
    try:
        node, hardware = _node_hardware()
    except (_Failed, OSError, subprocess.SubprocessError) as exc:
        return None, f"the Slurm cluster did not start: {exc}"
    workdir = tempfile.mkdtemp(prefix="runplz-slurm-")
    os.chmod(workdir, 0o755)  # job users read slurm.conf and reach munged's socket
    shared = os.path.join(workdir, "shared")
    os.makedirs(shared)
    os.chmod(shared, 0o1777)
    cluster = Cluster(workdir, os.path.join(workdir, "etc", "slurm.conf"), node, hardware, shared)
    try:
        _start_all(cluster)
    except (_Failed, OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        return None, f"the Slurm cluster did not start: {exc}"
    cluster.linked_default = _link_default(cluster.conf)
    cluster.started_s = time.monotonic() - began
    return cluster, ""


def _link_default(conf: str) -> bool:
    """Point /etc/slurm/slurm.conf at ``conf`` when nothing (or only a dangling link
    of an earlier, killed run) is there; True when it did."""
    if os.path.islink(DEFAULT_CONF) and not os.path.exists(DEFAULT_CONF):
        if "/runplz-slurm-" in os.readlink(DEFAULT_CONF):
            os.unlink(DEFAULT_CONF)
    if os.path.lexists(DEFAULT_CONF) or not os.path.isdir(os.path.dirname(DEFAULT_CONF)):
        return False
    os.symlink(conf, DEFAULT_CONF)
    return True


def _spawn(cluster: Cluster, name: str, argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    log = os.path.join(cluster.workdir, "log", f"{name}.out")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, **kwargs,
        )
    cluster.daemons.append((name, proc, log))
    return proc


def _start_all(cluster: Cluster) -> None:
    w = cluster.workdir
    for folder in ("etc", "log", "state", "spool", "dev"):
        os.makedirs(os.path.join(w, folder), exist_ok=True)
    os.chmod(os.path.join(w, "log"), 0o755)
    munge_socket = _start_munge(cluster)
    db_port = _start_mariadb(cluster)
    ports = {"ctld": free_port(), "slurmd": free_port(), "dbd": free_port()}
    slurm_config.write(cluster, munge_socket, db_port, ports)
    env = {**os.environ, **cluster.env}
    dbd = _spawn(cluster, "slurmdbd", [_sbin("slurmdbd"), "-D"], env=env)
    if not _wait(lambda: _quiet_ok(["sacctmgr", "-n", "show", "cluster"], env), 60, [dbd]):
        raise _Failed(f"slurmdbd does not answer: {cluster.log_tail('slurmdbd')}")
    for argv in (
        ["add", "cluster", CLUSTER_NAME],
        ["add", "account", ACCOUNT, f"Cluster={CLUSTER_NAME}", "Description=runplz tests", "Organization=runplz"],
        ["add", "user", ",".join(USERS), f"Account={ACCOUNT}", f"Cluster={CLUSTER_NAME}"],
    ):
        done = subprocess.run(["sacctmgr", "-i", *argv], env=env, capture_output=True, text=True, timeout=30)
        if done.returncode != 0 and "Nothing new added" not in done.stdout + done.stderr:
            raise _Failed(f"sacctmgr {' '.join(argv)}: {done.stdout.strip()} {done.stderr.strip()}")
    ctld = _spawn(cluster, "slurmctld", [_sbin("slurmctld"), "-D", "-i"], env=env)
    if not _wait(lambda: _quiet_ok(["scontrol", "ping"], env), 30, [ctld]):
        raise _Failed(f"slurmctld does not answer: {cluster.log_tail('slurmctld')}")
    slurmd = _spawn(cluster, "slurmd", [_sbin("slurmd"), "-D", "-N", cluster.node], env=env)

    def idle() -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True, timeout=15)
        return out.stdout.strip() == "idle"

    if not _wait(idle, 30, [ctld, slurmd]):
        raise _Failed(f"the node never became idle: {cluster.log_tail('slurmd')} {cluster.log_tail('slurmctld')}")
    listed = subprocess.run(["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"], env=env,
                            capture_output=True, text=True, timeout=15).stdout.split()
    if CLUSTER_NAME not in listed:
        raise _Failed(f"sacctmgr does not list cluster {CLUSTER_NAME}: {listed}")


def _start_munge(cluster: Cluster) -> str:
    folder = os.path.join(cluster.workdir, "munge")
    os.makedirs(folder)
    entry = pwd.getpwnam("munge")
    key = os.path.join(folder, "munge.key")
    with open(key, "wb") as handle:
        handle.write(os.urandom(1024))
    os.chmod(key, 0o400)
    for path in (folder, key):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o755)  # clients of any user connect to the socket inside
    sock = os.path.join(folder, "munge.socket")
    proc = _spawn(
        cluster, "munged",
        ["munged", "-F", f"--socket={sock}", f"--key-file={key}", f"--pid-file={folder}/munged.pid",
         f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed"],
        user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
    )

    def answers() -> bool:
        made = subprocess.run(["munge", "-n", "-S", sock], capture_output=True, timeout=15)
        return made.returncode == 0 and _quiet_ok(["unmunge", "-S", sock], input=made.stdout)

    if not _wait(lambda: os.path.exists(sock) and answers(), 15, [proc]):
        raise _Failed(f"munged did not start: {cluster.log_tail('munged')} {_tail(folder + '/munged.log')}")
    return sock


def _start_mariadb(cluster: Cluster) -> int:
    folder = os.path.join(cluster.workdir, "mariadb")
    os.makedirs(folder)
    entry = pwd.getpwnam("mysql")
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, sock, port = os.path.join(folder, "data"), os.path.join(folder, "mysqld.sock"), free_port()
    installed = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
         "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
        capture_output=True, text=True, timeout=120,
    )
    if installed.returncode != 0:
        raise _Failed(f"mariadb-install-db: {(installed.stdout + installed.stderr)[-400:]}")
    proc = _spawn(
        cluster, "mariadbd",
        [_sbin("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--pid-file={folder}/mariadbd.pid", "--user=mysql",
         "--skip-name-resolve", "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0"],
    )
    client = ["mariadb", "--no-defaults", "-S", sock, "-u", "root"]
    if not _wait(lambda: _quiet_ok([*client, "-e", "select 1"]), 60, [proc]):
        raise _Failed(f"mariadbd did not start: {cluster.log_tail('mariadbd')}")
    grant = (
        f"CREATE USER '{slurm_config.DB_USER}'@'127.0.0.1' IDENTIFIED BY '{slurm_config.DB_PASSWORD}';"
        f"GRANT ALL ON {slurm_config.DB_NAME}.* TO '{slurm_config.DB_USER}'@'127.0.0.1';"
    )
    done = subprocess.run([*client, "-e", grant], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise _Failed(f"could not make the slurm database user: {done.stderr.strip()}")
    return port
