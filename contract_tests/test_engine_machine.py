"""The fake engine and the real Docker engine agree under random operations."""

import pytest
from hypothesis import HealthCheck, settings

from runplz.adapters.docker_engine import DockerEngine
from runplz.adapters.fake_engine import FakeContainerEngine
from runplz.adapters.subprocess_runner import SubprocessRunner

from .suites.engine_machine import engine_comparison


@pytest.mark.real
def test_fake_engine_agrees_with_docker(docker_engine):
    machine = engine_comparison(
        lambda: DockerEngine(SubprocessRunner()),
        lambda: FakeContainerEngine(base_images={"python:3.11-slim"}),
    )
    machine.TestCase.settings = settings(
        max_examples=4, stateful_step_count=6, deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    machine.TestCase().runTest()


def test_two_fakes_agree():
    machine = engine_comparison(
        lambda: FakeContainerEngine(base_images={"python:3.11-slim"}),
        lambda: FakeContainerEngine(base_images={"python:3.11-slim"}),
    )
    machine.TestCase.settings = settings(max_examples=15, stateful_step_count=8, deadline=None)
    machine.TestCase().runTest()
