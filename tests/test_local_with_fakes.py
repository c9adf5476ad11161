"""The local backend's logic, with the shipped fakes (no Docker, no network)."""

from __future__ import annotations

import pytest

from runplz import RemoteError
from runplz.domain.errors import RunTimeout, StandInWarning, UsageError
from runplz.loader import load_app
from runplz.testing import FakePythonEnvBuilder, fake_container

from .jobs import make_repo


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo", files={".env": "SECRET=1\n", "keys/id_rsa": "k", "data/in.txt": "d"})


def bound(script, tmp_path, native=False, **overrides):
    module, app = load_app(str(script))
    container = fake_container(str(tmp_path / "cache"), **overrides)
    app.bind("local", outputs_dir=str(tmp_path / "out"), native=native or None, container=container)
    return module, app, container


@pytest.mark.parametrize("native", [False, True], ids=["docker", "native"])
def test_return_value_args_env_and_outputs(repo, tmp_path, native):
    module, _, _ = bound(repo, tmp_path, native)
    value = module.work.remote(3, label="héllo")
    assert value == {
        "steps": 3, "label": "héllo", "greeting": "hi there", "cwd_has_script": True, "tuple": [1, 2]
    }
    assert (tmp_path / "out" / "result.txt").read_text() == "héllo:3"


@pytest.mark.parametrize("native", [False, True], ids=["docker", "native"])
def test_remote_exception_carries_type_message_traceback_and_outputs(repo, tmp_path, native):
    module, _, _ = bound(repo, tmp_path, native)
    with pytest.raises(RemoteError) as caught:
        module.work.remote(label="oops", fail=True)
    error = caught.value
    assert error.remote_type == "ValueError"
    assert error.remote_message == "bad label 'oops'"
    assert "Traceback" in error.remote_traceback and "job.py" in error.remote_traceback
    assert error.exit_code == 1
    assert (tmp_path / "out" / "result.txt").read_text() == "oops:1"


@pytest.mark.parametrize("native", [False, True], ids=["docker", "native"])
def test_sys_exit_code_comes_back_exactly(repo, tmp_path, native):
    module, _, _ = bound(repo, tmp_path, native)
    with pytest.raises(RemoteError) as caught:
        module.work.remote(code=7)
    assert (caught.value.remote_type, caught.value.exit_code) == ("SystemExit", 7)


def test_timeout_stops_the_run(tmp_path):
    script = make_repo(tmp_path / "repo", '''
        import time
        from runplz import App, Image
        app = App("slow")
        @app.function(image=Image.from_registry("python:3.11-slim"), timeout=1)
        def nap():
            time.sleep(60)
    ''')
    module, _, _ = bound(script, tmp_path)
    with pytest.raises(RunTimeout, match="timeout of 1s"):
        module.nap.remote()


def test_a_set_comes_back_as_a_list_and_odd_values_as_stand_ins(tmp_path):
    script = make_repo(tmp_path / "repo", '''
        from runplz import App, Image
        app = App("odd")
        @app.function(image=Image.from_registry("python:3.11-slim"))
        def odd(kind: str = "set"):
            return {2, 1} if kind == "set" else {"ok": 1, "odd": object()}
    ''')
    module, _, _ = bound(script, tmp_path)
    assert module.odd.remote() == [1, 2]
    with pytest.warns(StandInWarning, match=r"the return value\['odd'\] is a object"):
        value = module.odd.remote(kind="object")
    assert value["ok"] == 1 and value["odd"].startswith("<object object at")


def test_secrets_git_caches_and_outputs_never_enter_the_build_context(repo, tmp_path):
    (repo.parent / "out").mkdir()
    (repo.parent / "out" / "old.txt").write_text("old output")
    (repo.parent / "__pycache__").mkdir()
    (repo.parent / "__pycache__" / "x.pyc").write_bytes(b"")
    (repo.parent / "cert.pem").write_text("pem")
    module, app, container = bound(repo, tmp_path)
    app.bind("local", outputs_dir=str(repo.parent / "out"), container=container)
    module.work.remote()
    names = {item.arcname for build in container.container_engine().builds for item in build.context}
    assert "repo/job.py" in names and "repo/data/in.txt" in names
    for banned in (".env", "keys/id_rsa", "cert.pem", "out/old.txt", "__pycache__/x.pyc"):
        assert f"repo/{banned}" not in names
    assert not any(name.startswith("repo/.git") for name in names)


def test_unchanged_image_is_not_rebuilt_and_code_changes_rebuild_only_the_run_layer(repo, tmp_path):
    module, _, container = bound(repo, tmp_path)
    engine = container.container_engine()
    module.work.remote()
    assert [b.labels["runplz.kind"] for b in engine.builds] == ["base", "run"]
    module.work.remote()
    assert len(engine.builds) == 2
    (repo.parent / "data" / "in.txt").write_text("changed")
    module.work.remote()
    assert [b.labels["runplz.kind"] for b in engine.builds] == ["base", "run", "run"]


def test_no_build_reuses_the_last_image_and_says_when_there_is_none(repo, tmp_path):
    module, app, container = bound(repo, tmp_path)
    app.bind("local", outputs_dir=str(tmp_path / "out"), build=False, container=container)
    with pytest.raises(UsageError, match="without --no-build"):
        module.work.remote()
    app.bind("local", outputs_dir=str(tmp_path / "out"), container=container)
    module.work.remote()
    builds = len(container.container_engine().builds)
    (repo.parent / "data" / "in.txt").write_text("changed")
    app.bind("local", outputs_dir=str(tmp_path / "out"), build=False, container=container)
    assert module.work.remote()["steps"] == 1
    assert len(container.container_engine().builds) == builds


def test_gpu_flag_when_asked_and_supported_and_a_warning_when_not(tmp_path):
    from runplz.testing import FakeContainerEngine

    script = make_repo(tmp_path / "repo", '''
        import os
        from runplz import App, Image
        app = App("gpu")
        @app.function(image=Image.from_registry("python:3.11-slim"), gpu="A100")
        def probe():
            return os.environ.get("NVIDIA_VISIBLE_DEVICES")
    ''')
    module, _, container = bound(script, tmp_path, container_engine=FakeContainerEngine(gpus=True))
    assert module.probe.remote() == "all"
    assert container.container_engine().runs[-1].gpus == "all"
    module, _, container = bound(script, tmp_path, container_engine=FakeContainerEngine(gpus=False))
    assert module.probe.remote() is None
    assert any("NVIDIA" in w for w in container.console().warnings)


def test_native_mode_warns_about_steps_it_cannot_apply_and_refuses_dockerfiles(tmp_path):
    script = make_repo(tmp_path / "repo", '''
        from runplz import App, Image
        app = App("native")
        @app.function(image=Image.from_registry("python:3.11-slim").apt_install("jq").run_commands("echo hi"))
        def go():
            return 1
        other = App  # not an App instance
    ''')
    module, _, container = bound(script, tmp_path, native=True)
    assert module.go.remote() == 1
    (warning,) = container.console().warnings
    assert "apt_install(jq)" in warning and "run_commands('echo hi')" in warning

    script = make_repo(tmp_path / "repo2", '''
        from runplz import App, Image
        app = App("df")
        @app.function(image=Image.from_dockerfile("Dockerfile"))
        def go():
            return 1
    ''', files={"Dockerfile": "FROM python:3.11-slim\n"})
    module, _, _ = bound(script, tmp_path, native=True)
    with pytest.raises(UsageError, match="from_dockerfile"):
        module.go.remote()


def test_native_env_is_cached_by_content(tmp_path):
    script = make_repo(tmp_path / "repo", '''
        from runplz import App, Image
        app = App("cache")
        @app.function(image=Image.from_registry("python:3.11-slim").pip_install_local_dir("lib"))
        def go():
            import mylib
            return mylib.VALUE
    ''', files={"lib/pyproject.toml": "[project]\nname='mylib'\n", "lib/mylib/__init__.py": "VALUE = 5\n"})
    envs = FakePythonEnvBuilder(str(tmp_path / "envs"))
    module, _, _ = bound(script, tmp_path, native=True, python_env_builder=envs)
    assert module.go.remote() == 5
    (script.parent / "lib" / "mylib" / "__init__.py").write_text("VALUE = 6\n")
    assert module.go.remote() == 6  # editable: code changes need no new environment
    assert len({r.key for r in envs.requests}) == 1
    (script.parent / "lib" / "pyproject.toml").write_text("[project]\nname='mylib'\nversion='2'\n")
    module.go.remote()
    assert len({r.key for r in envs.requests}) == 2


def test_dockerfile_images_build_from_the_users_context(tmp_path):
    script = make_repo(tmp_path / "repo", '''
        from runplz import App, Image
        app = App("df")
        @app.function(image=Image.from_dockerfile("docker/Dockerfile", context="docker"))
        def go():
            return open("/etc/marker").read() if False else "ok"
    ''', files={"docker/Dockerfile": "FROM python:3.11-slim\nCOPY marker /etc/marker\n", "docker/marker": "m",
                "docker/.env": "SECRET"})
    module, _, container = bound(script, tmp_path)
    assert module.go.remote() == "ok"
    base = container.container_engine().builds[0]
    assert base.dockerfile.startswith("FROM python:3.11-slim")
    assert {item.arcname for item in base.context} == {"Dockerfile", "marker"}
