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


class TestFakeContainerEngine(AbstractContainerEngineTests, ContainerEngineFixtures):
    enforces_user = False

    @pytest.fixture
    def engine(self):
        return FakeContainerEngine(base_images={"python:3.11-slim"}, gpus=True)


class TestFakeContainerEngineWithoutGpus(TestFakeContainerEngine):
    @pytest.fixture
    def engine(self):
        return FakeContainerEngine(base_images={"python:3.11-slim"}, gpus=False)
