"""Fixtures shared by tests/ and contract_tests/: real parts started by the tests themselves."""

from __future__ import annotations

import os

import pytest

from testsupport import docker_daemon
from testsupport.real import unavailable


@pytest.fixture(scope="session")
def _docker_engine_session():
    engine, reason = docker_daemon.start()
    if engine is None:
        yield None, reason
        return
    old = {key: os.environ.get(key) for key in ("DOCKER_HOST", "PATH")}
    os.environ["DOCKER_HOST"] = engine.host
    os.environ["PATH"] = engine.hook_dir + os.pathsep + os.environ.get("PATH", "")
    problem = docker_daemon.ensure_base_image(engine)
    try:
        yield (None, problem) if problem else (engine, "")
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        engine.stop()


@pytest.fixture
def docker_engine(_docker_engine_session):
    """A real Docker engine (DOCKER_HOST set) with the base image python:3.11-slim."""
    engine, reason = _docker_engine_session
    if engine is None:
        unavailable(reason)
    return engine
