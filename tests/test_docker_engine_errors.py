"""The Docker adapter turns a missing or silent engine into one clear error."""

import shutil

import pytest

from runplz.adapters.docker_engine import DockerEngine
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.domain.errors import EngineUnavailable


def test_missing_docker_client():
    with pytest.raises(EngineUnavailable, match="not installed.*--native"):
        DockerEngine(SubprocessRunner(), docker="runplz-no-docker-here").check()


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_engine_not_answering(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    with pytest.raises(EngineUnavailable, match="not answering.*--native"):
        DockerEngine(SubprocessRunner()).check()
