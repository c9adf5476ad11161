"""Fixtures shared by tests/ and contract_tests/: real parts started by the tests themselves."""

from __future__ import annotations

import os

import pytest

from testsupport import docker_daemon
from testsupport.real import unavailable

pytest_plugins = ["testsupport.slurm_fixture"]  # the throwaway Slurm cluster and its login node


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


@pytest.fixture(scope="session")
def _ssh_boxes_session(_docker_engine_session):
    from testsupport import sshd

    engine, _ = _docker_engine_session
    env = {}
    if engine is not None:
        env = {"DOCKER_HOST": engine.host, "PATH": f"{engine.hook_dir}:/usr/local/bin:/usr/bin:/bin"}
    boxes, reason = sshd.start_boxes(env)
    if boxes is None:
        yield None, reason
        return
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = boxes.wrapper_dir + os.pathsep + old_path
    try:
        yield boxes, ""
    finally:
        os.environ["PATH"] = old_path
        boxes.stop()


@pytest.fixture
def ssh_boxes(_ssh_boxes_session):
    """Throwaway sshd boxes (aliases runplz-near and runplz-far) reached through an ssh wrapper on PATH."""
    boxes, reason = _ssh_boxes_session
    if boxes is None:
        unavailable(reason)
    return boxes


@pytest.fixture
def far_box(ssh_boxes):
    if ssh_boxes.far is None:
        unavailable("could not make the network-namespace box (needs ip netns and veth)")
    return ssh_boxes.far
