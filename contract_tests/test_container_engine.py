"""ContainerEngine contract: the real Docker engine and the fake."""

import pytest

from runplz.adapters.docker_engine import DockerEngine
from runplz.adapters.fake_engine import FakeContainerEngine
from runplz.adapters.subprocess_runner import SubprocessRunner

from .suites.container_engine import AbstractContainerEngineTests, ContainerEngineFixtures


@pytest.mark.real
class TestDockerEngine(AbstractContainerEngineTests, ContainerEngineFixtures):
    @pytest.fixture
    def engine(self, docker_engine):
        return DockerEngine(SubprocessRunner())

    @pytest.fixture
    def dead_engine(self, docker_engine, tmp_path):
        return DockerEngine(SubprocessRunner(), ["docker", "-H", f"unix://{tmp_path}/no-engine.sock"])


class TestFakeContainerEngine(AbstractContainerEngineTests, ContainerEngineFixtures):
    enforces_user = False

    @pytest.fixture
    def engine(self):
        return FakeContainerEngine(base_images={"python:3.11-slim"}, gpus=True)

    @pytest.fixture
    def dead_engine(self):
        return FakeContainerEngine(available=False)


class TestFakeContainerEngineWithoutGpus(TestFakeContainerEngine):
    @pytest.fixture
    def engine(self):
        return FakeContainerEngine(base_images={"python:3.11-slim"}, gpus=False)
