"""BatchScheduler contract: Slurm's client commands on the real cluster's login
node (over the real sshd), and the fake."""


import pytest


from runplz.adapters.fake_slurm import FakeSlurm
from runplz.adapters.slurm_cli import SlurmCli
from runplz.adapters.ssh_transport import SshTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.system_clock import SystemClock
from runplz.domain.host import parse_target
from runplz.domain.slurm_state import SchedulerError

from .suites.scheduler import AbstractSchedulerTests, SchedulerFixtures


@pytest.mark.real
class TestSlurmCliOnTheLoginNode(AbstractSchedulerTests, SchedulerFixtures):
    @pytest.fixture
    def scheduler(self, slurm_login, slurm_cluster):
        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target(slurm_login.alias))
        transport.connect(wait=30)
        yield SlurmCli(transport)
        transport.close()
        leftover = slurm_cluster.queue()
        if leftover:
            slurm_cluster.run("scancel", *leftover)

    @pytest.fixture
    def shared(self, slurm_cluster):
        return slurm_cluster.shared

    @pytest.fixture
    def requeue(self, slurm_cluster):
        def requeue(task: str) -> None:
            done = slurm_cluster.run("scontrol", "requeue", task)
            if done.returncode != 0:
                raise SchedulerError(f"scontrol requeue failed: {done.stderr.strip()}")
            # Slurm holds a requeued job back (BeginTime) for a while; an admin may start it now
            slurm_cluster.run("scontrol", "update", f"JobId={task}", "StartTime=now", check=True)

        return requeue

    @pytest.fixture
    def cpus(self, slurm_cluster):
        return slurm_cluster.cpus


class TestFakeSlurm(AbstractSchedulerTests, SchedulerFixtures):
    @pytest.fixture
    def scheduler(self, tmp_path):
        fake = FakeSlurm(cpus=2, folder=str(tmp_path / "fake"))
        yield fake
        for job in fake.queue():
            fake.cancel(job)

    @pytest.fixture
    def shared(self, tmp_path):
        return str(tmp_path)

    @pytest.fixture
    def cpus(self):
        return 2

    @pytest.fixture
    def requeue(self, scheduler):
        return scheduler.requeue
