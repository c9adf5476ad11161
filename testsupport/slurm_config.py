"""The config files of the throwaway Slurm cluster (see slurm_cluster.py)."""

from __future__ import annotations

import os

CLUSTER_NAME = "runplz"
ACCOUNT = "runplz"
PARTITION = "debug"
GPU_TYPE = "a100"
GPU_COUNT = 2
DB_USER, DB_PASSWORD, DB_NAME = "slurm", "runplz-slurm", "slurm_acct_db"


def write(cluster, munge_socket: str, db_port: int, ports: dict[str, int]) -> None:
    """slurm.conf, gres.conf (two ``mknod`` devices standing in for /dev/nvidia0-1) and
    slurmdbd.conf (mode 600, as slurmdbd demands) next to ``cluster.conf``."""
    w, etc = cluster.workdir, os.path.dirname(cluster.conf)
    devices = []
    for index in range(GPU_COUNT):
        device = os.path.join(w, "dev", f"nvidia{index}")
        os.mknod(device, 0o666 | 0o020000, os.makedev(195, index))  # a character device like /dev/nvidiaN
        devices.append(device)
    auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket}\n"
    hardware = " ".join(f"{key}={value}" for key, value in cluster.hardware.items())
    slurm_conf = f"""\
ClusterName={CLUSTER_NAME}
SlurmctldHost={cluster.node}(127.0.0.1)
SlurmctldPort={ports['ctld']}
SlurmdPort={ports['slurmd']}
SlurmUser=root
SlurmdUser=root
{auth}CredType=cred/munge
StateSaveLocation={w}/state
SlurmdSpoolDir={w}/spool
SlurmctldPidFile={w}/state/slurmctld.pid
SlurmdPidFile={w}/spool/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
KillWait=5
MinJobAge=600
GresTypes=gpu
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['dbd']}
AccountingStorageEnforce=associations
AccountingStoragePass={munge_socket}
NodeName={cluster.node} NodeAddr=127.0.0.1 NodeHostname={cluster.node} {hardware} Gres=gpu:{GPU_TYPE}:{GPU_COUNT} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    gres_conf = f"AutoDetect=off\nNodeName={cluster.node} Name=gpu Type={GPU_TYPE} File={','.join(devices)}\n"
    dbd_conf = f"""\
{auth}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports['dbd']}
SlurmUser=root
PidFile={w}/state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser={DB_USER}
StoragePass={DB_PASSWORD}
StorageLoc={DB_NAME}
"""
    for name, text, mode in (("slurm.conf", slurm_conf, 0o644), ("gres.conf", gres_conf, 0o644),
                             ("slurmdbd.conf", dbd_conf, 0o600)):
        path = os.path.join(etc, name)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
    os.chmod(etc, 0o755)
