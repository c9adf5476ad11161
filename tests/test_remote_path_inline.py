"""Inline mode of the remote run path (Brev's container mode: the box is the
image): apt and shell steps applied on the box once, pip steps as a venv.

Over the local transport with a stand-in ``apt-get`` first on PATH, and once
over a real sshd box (a non-root login with sudo, a real apt-get)."""

from __future__ import annotations

import os
import secrets

import pytest

from runplz import Image, SshConfig
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.job_output import RecordingJobOutput
from runplz.adapters.local_transport import LocalTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.container import make_container
from runplz.domain.call import FunctionCall
from runplz.domain.errors import BuildError, ConfigError
from runplz.domain.host import parse_target
from runplz.domain.inline_plan import apt_argvs, inline_plan
from runplz.loader import load_app
from runplz.services.remote_path import RemoteRunSettings

from .jobs import make_repo

STEPS = """.apt_install("jq", "curl").run_commands('echo made >> "$INLINE_LOG"', 'pwd >> "$INLINE_LOG"')"""

JOB = '''
import os
from runplz import App, Image
app = App("inline-local")

@app.function(image=Image.from_registry("python:3.11-slim")STEPS)
def go() -> list:
    return open(os.environ["INLINE_LOG"]).read().splitlines()
'''

FAKE_APT = """#!/bin/sh
echo "apt-get $* frontend=$DEBIAN_FRONTEND" >> "$INLINE_LOG"
echo "Reading package lists..."
case " $* " in *" nosuch "*) echo "E: Unable to locate package nosuch" >&2; exit 100;; esac
"""

APT = "apt-get -o DPkg::Lock::Timeout=600"


def call(script, name, **kwargs):
    _, app = load_app(str(script))
    return FunctionCall(app.name, app.registered_functions[name].spec, str(script), [], kwargs)


@pytest.fixture
def box(tmp_path, monkeypatch):
    """An inline path over the local transport; ``box.log`` gathers what apt and the steps did."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(FAKE_APT)
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("INLINE_LOG", str(tmp_path / "inline.log"))

    class Box:
        home = tmp_path / "box 'home'"
        log = tmp_path / "inline.log"
        console = RecordingConsole()

        def path(self):
            container = make_container(str(tmp_path / "cache"))
            container.console.override(self.console)
            container.job_output.override(RecordingJobOutput())
            transport = LocalTransport(SubprocessRunner(), str(self.home), name="box")
            settings = RemoteRunSettings(outputs_dir=str(tmp_path / "out"), mode="inline")
            return container.remote_run_path(transport=transport, settings=settings)

        def runs(self):
            runs = self.home / ".runplz" / "runs"
            return list(runs.iterdir()) if runs.exists() else []

    return Box()


def repo(tmp_path, steps: str = STEPS):
    return make_repo(tmp_path / "repo", JOB.replace("STEPS", steps))


def test_steps_are_applied_in_order_on_the_box_then_skipped(box, tmp_path):
    script = repo(tmp_path)
    lines = box.path().call(call(script, "go"))
    assert lines[:3] == [
        f"{APT} update frontend=noninteractive",
        f"{APT} install -y --no-install-recommends jq curl frontend=noninteractive",
        "made",
    ]
    assert lines[3].startswith(str(box.home / ".runplz" / "runs")) and lines[3].endswith("/repo")
    assert "applying apt_install(jq, curl) on box" in box.console.infos
    assert "applying run_commands('echo made >> \"$INLINE_LOG\"') on box" in box.console.infos
    assert "Reading package lists..." in box.console.outputs
    assert not any("does not apply" in w for w in box.console.warnings)
    (marker,) = (box.home / ".runplz" / "inline").iterdir()
    assert marker.read_text().splitlines()[0] == "apt_install(jq, curl)"

    assert box.path().call(call(script, "go")) == lines  # nothing ran again
    assert any(m.startswith("box already has the image's apt/run steps") for m in box.console.infos[-6:])
    assert sum(m.startswith("applying ") for m in box.console.infos) == 3


def test_other_steps_are_applied_again(box, tmp_path):
    box.path().call(call(repo(tmp_path), "go"))
    changed = STEPS.replace("'pwd >> ", "'echo again >> \"$INLINE_LOG\"', 'pwd >> ")
    lines = box.path().call(call(repo(tmp_path, changed), "go"))
    assert lines.count("made") == 2 and "again" in lines
    assert len(list((box.home / ".runplz" / "inline").iterdir())) == 2


@pytest.mark.parametrize(
    "steps, message",
    [
        (""".run_commands("echo first; echo boom >&2; exit 3")""",
         "run_commands('echo first; echo boom >&2; exit 3') failed on box (exit 3):\nfirst\nboom"),
        (""".apt_install("jq", "nosuch")""",
         "apt_install(jq, nosuch) failed on box (exit 100):\nReading package lists...\nE: Unable to locate package nosuch"),
    ],
)
def test_a_failing_step_fails_the_run_before_it_starts(box, tmp_path, steps, message):
    script = repo(tmp_path, steps)
    with pytest.raises(BuildError) as caught:
        box.path().call(call(script, "go"))
    assert str(caught.value) == message
    assert not any(m.startswith("running go") for m in box.console.infos)
    assert box.runs() == []
    assert not (box.home / ".runplz" / "inline").exists()


def test_a_dockerfile_image_is_refused_before_connecting(box, tmp_path):
    script = repo(tmp_path, "")
    script.write_text(script.read_text().replace(
        'Image.from_registry("python:3.11-slim")', 'Image.from_dockerfile("Dockerfile")'
    ))
    with pytest.raises(ConfigError, match=r"container mode has no Dockerfile step.*BrevConfig\(mode='vm'\)"):
        box.path().call(call(script, "go"))
    assert not any(m.startswith("connecting") for m in box.console.infos)


def test_an_image_without_box_steps_runs_like_native(box, tmp_path):
    script = repo(tmp_path, "")
    box.log.write_text("before\n")
    assert box.path().call(call(script, "go")) == ["before"]
    assert not (box.home / ".runplz" / "inline").exists()


def test_apt_goes_through_sudo_unless_root():
    update, install = apt_argvs(("jq", "git"), root=False)
    assert update == ("sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o",
                      "DPkg::Lock::Timeout=600", "update")
    assert install[-5:] == ("install", "-y", "--no-install-recommends", "jq", "git")
    assert apt_argvs(("jq",), root=True)[0][0] == "env"


def test_the_plan_keys_the_box_steps_only():
    base = Image.from_registry("python:3.11-slim")
    plan = inline_plan(base.apt_install("jq").pip_install("six").run_commands("a", "b"), "go")
    assert [s.label for s in plan.steps] == ["apt_install(jq)", "run_commands('a')", "run_commands('b')"]
    assert [s.packages for s in plan.native.steps] == [("six",)] and plan.native.warnings == ()
    assert inline_plan(base.apt_install("jq").run_commands("a", "b"), "go").key == plan.key
    assert inline_plan(base.apt_install("jq").run_commands("b", "a"), "go").key != plan.key
    assert plan.marker.startswith(".runplz/inline/")


def test_settings_name_a_mode():
    with pytest.raises(ConfigError, match="mode"):
        RemoteRunSettings(outputs_dir="/tmp/out", mode="container")


REAL_JOB = '''
import os, shutil
from runplz import App, Image
app = App("inline-ssh")
image = (
    Image.from_registry("python:3.11-slim")
    .apt_install("jq")
    .pip_install("six>=1.16")
    .run_commands('echo made-TOKEN >> "$HOME/.runplz-inline-marker"')
)

@app.function(image=image)
def go() -> dict:
    import six
    with open(os.path.expanduser("~/.runplz-inline-marker")) as handle:
        made = [line for line in handle.read().splitlines() if line == "made-TOKEN"]
    return {"jq": shutil.which("jq"), "six": six.__version__, "made": made, "uid": os.getuid()}


@app.function(image=Image.from_registry("python:3.11-slim").apt_install("runplz-no-such-package"))
def broken() -> None:
    pass
'''


@pytest.mark.real
def test_inline_over_real_ssh_applies_the_steps_once(tmp_path, ssh_boxes):
    token = secrets.token_hex(6)  # steps of their own, never applied on the box before
    script = make_repo(tmp_path / "repo", REAL_JOB.replace("TOKEN", token))
    console = RecordingConsole()
    container = make_container(str(tmp_path / "cache"))
    container.console.override(console)
    container.job_output.override(RecordingJobOutput())
    target = parse_target("runplz-near", SshConfig())
    settings = RemoteRunSettings(outputs_dir=str(tmp_path / "out"), mode="inline", ready_wait_seconds=60)

    def run(name):
        transport = container.ssh_transport(target=target)
        return container.remote_run_path(transport=transport, settings=settings).call(call(script, name))

    first = run("go")
    assert first["made"] == [f"made-{token}"] and first["jq"] and first["uid"] != 0
    assert "applying apt_install(jq) on runplz-near" in console.infos
    assert any("jq" in line for line in console.outputs)  # apt's own output, through sudo
    applied = len(console.infos)
    second = run("go")
    assert second["made"] == [f"made-{token}"] and second["six"] == first["six"]
    later = console.infos[applied:]
    assert any(m.startswith("runplz-near already has the image's apt/run steps") for m in later)
    assert not any(m.startswith("applying") for m in later)

    with pytest.raises(BuildError, match=r"(?s)apt_install\(runplz-no-such-package\) failed on runplz-near "
                       r"\(exit 100\):.*Unable to locate package runplz-no-such-package"):
        run("broken")
