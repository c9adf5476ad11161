"""The `ContainerEngine` contract: the real Docker engine and the fake agree."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from runplz.domain.errors import BuildError, CommandTimeout, ContainerError, EngineUnavailable, GpuUnavailable
from runplz.ports.container_engine import (
    BuildRequest,
    ContainerEngine,
    ContainerInfo,
    ContainerRun,
    ContextBytes,
    ContextFile,
    Mount,
)

BASE = "python:3.11-slim"
PY = "import os, sys; "


class ContainerEngineFixtures:
    """Provide ``engine`` and ``dead_engine`` (one whose engine does not
    answer); capability flag ``enforces_user``."""

    enforces_user = True

    @pytest.fixture
    def engine(self) -> ContainerEngine:
        raise NotImplementedError

    @pytest.fixture
    def dead_engine(self) -> ContainerEngine:
        raise NotImplementedError


def _tag() -> str:
    return f"runplz-contract:{uuid.uuid4().hex[:12]}"


def _name() -> str:
    return f"runplz-contract-{uuid.uuid4().hex[:12]}"


def _python(code: str) -> tuple[str, ...]:
    return ("python3", "-c", PY + code)


class AbstractContainerEngineTests:
    def test_is_an_engine(self, engine):
        assert isinstance(engine, ContainerEngine)
        engine.check()

    def test_build_then_has_image(self, engine):
        tag = _tag()
        assert not engine.has_image(tag)
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        assert engine.has_image(tag)

    def test_unknown_base_is_a_build_error(self, engine):
        with pytest.raises(BuildError):
            engine.build(BuildRequest(_tag(), "FROM runplz-contract-no-such-base:never\n"))

    def test_copy_of_a_missing_context_path_is_a_build_error(self, engine):
        with pytest.raises(BuildError):
            engine.build(BuildRequest(_tag(), f'FROM {BASE}\nCOPY ["absent/", "/app/"]\n'))

    def test_build_output_goes_to_on_line(self, engine):
        lines: list[str] = []
        engine.build(BuildRequest(_tag(), f"FROM {BASE}\nWORKDIR /app\n"), on_line=lines.append)
        assert any("WORKDIR" in line for line in lines)

    def test_latest_image_by_labels(self, engine):
        label = {"runplz.contract": uuid.uuid4().hex}
        assert engine.latest_image(label) is None
        first, second = _tag(), _tag()
        engine.build(BuildRequest(first, f"FROM {BASE}\n", labels=label))
        engine.build(BuildRequest(second, f"FROM {BASE}\nWORKDIR /w\n", labels=label))
        assert engine.latest_image(label) == second
        assert engine.latest_image({**label, "other": "x"}) is None

    def test_an_image_inherits_its_parents_labels(self, engine):
        label = {"runplz.contract": uuid.uuid4().hex}
        parent, child = _tag(), _tag()
        engine.build(BuildRequest(parent, f"FROM {BASE}\n", labels={**label, "kind": "parent"}))
        engine.build(BuildRequest(child, f"FROM {parent}\nWORKDIR /x\n", labels={"kind": "child"}))
        assert engine.latest_image(label) == child
        assert engine.latest_image({**label, "kind": "parent"}) == parent

    def _image_with_files(self, engine, tmp_path) -> str:
        source = tmp_path / "tool.sh"
        source.write_text("#!/bin/sh\necho tool-ran > \"$DEST\"\n")
        tag = _tag()
        engine.build(
            BuildRequest(
                tag,
                f'FROM {BASE}\nCOPY ["ctx/", "/app/"]\nWORKDIR /app\n',
                (
                    ContextBytes("ctx/hello.txt", "héllo\n".encode()),
                    ContextBytes("ctx/deep/er/file.txt", b"deep"),
                    ContextFile("ctx/tool.sh", str(source), executable=True),
                ),
            )
        )
        return tag

    def test_context_files_land_where_copied(self, engine, tmp_path):
        tag = self._image_with_files(engine, tmp_path)
        out = tmp_path / "out"
        out.mkdir()
        code = engine.run(
            ContainerRun(
                tag,
                ("cp", "/app/hello.txt", "/app/deep/er/file.txt", "/out/"),
                _name(),
                mounts=(Mount(str(out), "/out"),),
            )
        )
        assert code == 0
        assert (out / "hello.txt").read_text() == "héllo\n"
        assert (out / "file.txt").read_bytes() == b"deep"

    def test_executable_bit_survives(self, engine, tmp_path):
        tag = self._image_with_files(engine, tmp_path)
        out = tmp_path / "out"
        out.mkdir()
        run = ContainerRun(tag, ("/app/tool.sh",), _name(), env={"DEST": "/out/t"}, mounts=(Mount(str(out), "/out"),))
        assert engine.run(run) == 0
        assert (out / "t").read_text() == "tool-ran\n"

    @pytest.mark.parametrize("code", [0, 3, 42])
    def test_exit_code_of_argv(self, engine, code):
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        assert engine.run(ContainerRun(tag, _python(f"sys.exit({code})"), _name())) == code

    def test_env_and_workdir(self, engine, tmp_path):
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        out = tmp_path / "out"
        out.mkdir()
        hostile = "a b $(x) `y` 'q' \"d\" é\nnext"
        run = ContainerRun(
            tag,
            _python("open('rel.txt', 'w').write(os.environ['GREETING'])"),
            _name(),
            env={"GREETING": hostile},
            mounts=(Mount(str(out), "/out"),),
            workdir="/out",
        )
        assert engine.run(run) == 0
        assert (out / "rel.txt").read_text() == hostile

    def test_read_only_mount(self, engine, tmp_path):
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        src = tmp_path / "src"
        src.mkdir()
        (src / "in.txt").write_text("data")
        out = tmp_path / "out"
        out.mkdir()
        run = ContainerRun(
            tag,
            _python("open(os.environ['DEST'], 'w').write(open(os.environ['SRC']).read())"),
            _name(),
            env={"SRC": "/src/in.txt", "DEST": "/out/copy.txt"},
            mounts=(Mount(str(src), "/src", read_only=True), Mount(str(out), "/out")),
        )
        assert engine.run(run) == 0
        assert (out / "copy.txt").read_text() == "data"

    def test_missing_image_is_a_container_error(self, engine):
        with pytest.raises(ContainerError):
            engine.run(ContainerRun("runplz-contract:absent-" + uuid.uuid4().hex[:8], ("true",), _name()))

    def test_gpus(self, engine, tmp_path):
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        out = tmp_path / "out"
        out.mkdir()
        run = ContainerRun(
            tag,
            _python("open(os.environ['DEST'], 'w').write(os.environ.get('NVIDIA_VISIBLE_DEVICES', 'unset'))"),
            _name(),
            env={"DEST": "/out/gpu"},
            mounts=(Mount(str(out), "/out"),),
            gpus="all",
        )
        if not engine.supports_gpus():
            with pytest.raises(GpuUnavailable):
                engine.run(run)
            return
        assert engine.run(run) == 0
        assert (out / "gpu").read_text() == "all"

    def test_timeout_stops_the_container(self, engine):
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        with pytest.raises(CommandTimeout):
            engine.run(ContainerRun(tag, _python("import time; time.sleep(60)"), _name(), timeout=2))

    def test_files_written_in_mounts_belong_to_the_user(self, engine, tmp_path):
        if not self.enforces_user:
            pytest.skip("this engine runs containers as the calling user only")
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        out = tmp_path / "out"
        out.mkdir()
        os.chmod(out, 0o777)
        run = ContainerRun(
            tag,
            _python("open('/out/owned', 'w').write(str(os.getuid()))"),
            _name(),
            mounts=(Mount(str(out), "/out"),),
            user="4321:4321",
        )
        assert engine.run(run) == 0
        assert (out / "owned").stat().st_uid == 4321

    def test_remove_is_idempotent(self, engine):
        engine.remove(_name())


    def test_containers_lists_a_labelled_container_while_it_exists(self, engine, tmp_path):
        tag = _tag()
        engine.build(BuildRequest(tag, f"FROM {BASE}\n"))
        gate = tmp_path / "gate"
        gate.mkdir()
        os.chmod(gate, 0o777)
        label = f"runplz.contract.{uuid.uuid4().hex[:10]}"
        name = _name()
        wait = "import time; [time.sleep(0.05) for _ in iter(lambda: os.path.exists(os.environ['GATE']), True)]"
        run = ContainerRun(tag, _python(wait), name, env={"GATE": "/gate/go"}, mounts=(Mount(str(gate), "/gate"),),
                           labels={label: "one", "runplz.contract": "x"}, timeout=120)
        assert engine.containers(label) == ()
        codes: list[int] = []
        runner = threading.Thread(target=lambda: codes.append(engine.run(run)))
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while not engine.containers(label) and time.monotonic() < deadline:
                time.sleep(0.1)
            (found,) = engine.containers(label)
            assert isinstance(found, ContainerInfo)
            assert (found.name, found.state, found.exit_code) == (name, "running", None)
            assert found.labels[label] == "one" and found.labels["runplz.contract"] == "x"
            assert engine.containers(label + ".absent") == ()
        finally:
            (gate / "go").write_text("go")
            runner.join(120)
        assert codes == [0]
        assert engine.containers(label) == ()  # run removes its container

    def test_containers_of_an_engine_that_does_not_answer(self, dead_engine):
        with pytest.raises(EngineUnavailable):
            dead_engine.containers("runplz.run")
