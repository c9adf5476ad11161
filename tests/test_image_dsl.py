import json
import shlex

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runplz import Image
from runplz.domain.dockerfile import local_dirs, render_base, render_run_layer
from runplz.domain.image import (
    AptInstall,
    DockerfileBase,
    LocalDir,
    PipInstall,
    RegistryBase,
    RunCommands,
)

BASE = Image.from_registry("python:3.11-slim")
PROPS = settings(max_examples=100, deadline=None)

GOLDEN_CHAIN = (
    Image.from_registry("pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime")
    .apt_install("rsync", "build-essential", "libfoo~1")
    .pip_install("pandas>=2.0", "scikit-learn", index_url="https://pypi.example.com/simple")
    .pip_install_local_dir(".", editable=True)
    .pip_install_local_dir("./libs/tool/", editable=False)
    .run_commands("echo 'hi' > /tmp/x", 'printf "a\\nb" | wc -l')
)

PIP = '"env", "PIP_BREAK_SYSTEM_PACKAGES=1", "PIP_ROOT_USER_ACTION=ignore", "PIP_DISABLE_PIP_VERSION_CHECK=1", "python3", "-m", "pip", "install", "--no-cache-dir"'

GOLDEN_DOCKERFILE = f"""\
FROM pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime
USER root
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rsync build-essential 'libfoo~1' && rm -rf /var/lib/apt/lists/*
RUN [{PIP}, "--index-url", "https://pypi.example.com/simple", "pandas>=2.0", "scikit-learn"]
COPY ["repo/", "/runplz/repo/"]
RUN [{PIP}, "-e", "/runplz/repo"]
COPY ["repo/libs/tool", "/runplz/repo/libs/tool/"]
RUN [{PIP}, "/runplz/repo/libs/tool"]
RUN ["/bin/sh", "-c", "echo 'hi' > /tmp/x"]
RUN ["/bin/sh", "-c", "printf \\"a\\\\nb\\" | wc -l"]
"""


def _run_argvs(dockerfile):
    return [json.loads(line[len("RUN "):]) for line in dockerfile.split("\n") if line.startswith("RUN [")]


# ---------------------------------------------------------------- golden


def test_golden_dockerfile():
    assert render_base(GOLDEN_CHAIN) == GOLDEN_DOCKERFILE


def test_golden_chain_ops():
    assert GOLDEN_CHAIN.base == RegistryBase("pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime")
    assert GOLDEN_CHAIN.ops == (
        AptInstall(("rsync", "build-essential", "libfoo~1")),
        PipInstall(("pandas>=2.0", "scikit-learn"), "https://pypi.example.com/simple"),
        LocalDir(".", True),
        LocalDir("libs/tool", False),
        RunCommands(("echo 'hi' > /tmp/x", 'printf "a\\nb" | wc -l')),
    )


def test_bare_image_renders_from_and_user():
    assert render_base(BASE) == "FROM python:3.11-slim\nUSER root\n"


def test_run_layer_golden_with_owner():
    assert render_run_layer("runplz-base:abc123", 1000, 1001) == (
        "FROM runplz-base:abc123\n"
        'COPY --chown=1000:1001 ["repo/", "/runplz/repo/"]\n'
        'COPY ["bundle/", "/runplz/bundle/"]\n'
        "WORKDIR /runplz/repo\n"
    )


def test_run_layer_as_root_has_no_chown():
    assert render_run_layer("base:1", 0, 0) == (
        "FROM base:1\n"
        'COPY ["repo/", "/runplz/repo/"]\n'
        'COPY ["bundle/", "/runplz/bundle/"]\n'
        "WORKDIR /runplz/repo\n"
    )


def test_render_base_refuses_dockerfile_images():
    with pytest.raises(ValueError):
        render_base(Image.from_dockerfile("docker/Dockerfile"))


# ---------------------------------------------------------------- immutability


@pytest.mark.parametrize(
    "step",
    [
        lambda i: i.apt_install("git"),
        lambda i: i.pip_install("numpy"),
        lambda i: i.pip_install("numpy", index_url="https://x.example/simple"),
        lambda i: i.pip_install_local_dir(),
        lambda i: i.pip_install_local_dir("pkg", editable=False),
        lambda i: i.run_commands("true", "false"),
    ],
)
def test_each_step_returns_a_new_image(step):
    original = BASE.pip_install("first")
    before_ops = original.ops
    result = step(original)
    assert result is not original
    assert isinstance(result, Image)
    assert original.ops == before_ops
    assert result.ops[: len(before_ops)] == before_ops
    assert len(result.ops) == len(before_ops) + 1
    assert result.base == original.base


def test_branches_do_not_share_steps():
    root = BASE.apt_install("git")
    a = root.pip_install("a")
    b = root.pip_install("b")
    assert a.ops[-1] == PipInstall(("a",))
    assert b.ops[-1] == PipInstall(("b",))
    assert root.ops == (AptInstall(("git",)),)


def test_images_are_frozen_and_hashable():
    image = BASE.pip_install("x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        image.ops = ()
    assert image == BASE.pip_install("x")
    assert hash(image) == hash(BASE.pip_install("x"))
    assert image != BASE.pip_install("y")


def test_ops_are_tuples():
    image = BASE.apt_install("a", "b").pip_install("c").run_commands("d")
    assert isinstance(image.ops, tuple)
    assert image.ops[0].packages == ("a", "b")
    assert image.ops[2].commands == ("d",)


# ---------------------------------------------------------------- from_dockerfile


def test_from_dockerfile_normalises_paths():
    image = Image.from_dockerfile("./docker//Dockerfile", context="docker\\ctx/")
    assert image.base == DockerfileBase("docker/Dockerfile", "docker/ctx")
    assert image.is_dockerfile
    assert image.ops == ()
    assert Image.from_dockerfile("Dockerfile").base == DockerfileBase("Dockerfile", None)
    assert Image.from_dockerfile("Dockerfile", context=".").base.context == "."
    assert not BASE.is_dockerfile


@pytest.mark.parametrize(
    "method, args",
    [
        ("apt_install", ("git",)),
        ("pip_install", ("numpy",)),
        ("pip_install_local_dir", (".",)),
        ("run_commands", ("echo hi",)),
    ],
)
def test_chaining_on_a_dockerfile_image_is_refused_with_guidance(method, args):
    image = Image.from_dockerfile("Dockerfile")
    with pytest.raises(ValueError) as info:
        getattr(image, method)(*args)
    message = str(info.value)
    assert method in message and "from_dockerfile" in message and "Dockerfile instead" in message
    assert image.ops == ()


@pytest.mark.parametrize(
    "path, context",
    [
        ("", None),
        ("   ", None),
        (".", None),
        ("./", None),
        ("/abs/Dockerfile", None),
        ("../Dockerfile", None),
        ("a/../../Dockerfile", None),
        ("a\x00b", None),
        (None, None),
        (3, None),
        ("Dockerfile", "../ctx"),
        ("Dockerfile", "/ctx"),
        ("Dockerfile", ""),
        ("Dockerfile", 5),
    ],
)
def test_from_dockerfile_rejects(path, context):
    with pytest.raises(ValueError, match="from_dockerfile"):
        Image.from_dockerfile(path, context=context)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("ref", ["", "   ", "python 3.11", "python:3.11\n", "\tpython", None, 3, ["python"]])
def test_from_registry_rejects(ref):
    with pytest.raises(ValueError, match="from_registry"):
        Image.from_registry(ref)


@pytest.mark.parametrize(
    "args",
    [("",), ("  ",), ("-y",), ("git; rm -rf /",), ("git curl",), ("$(x)",), ("a\x00",), (1,), (None,), ("git", "")],
)
def test_apt_install_rejects(args):
    with pytest.raises(ValueError, match="apt_install"):
        BASE.apt_install(*args)


@pytest.mark.parametrize("args", [("",), ("   ",), ("a\x00b",), (1,), (None,), (["numpy"],), ("numpy", " ")])
def test_pip_install_rejects_packages(args):
    with pytest.raises(ValueError, match="pip_install"):
        BASE.pip_install(*args)


@pytest.mark.parametrize("index_url", ["", "  ", "https://a b", "https://x\n", 5, True])
def test_pip_install_rejects_index_url(index_url):
    with pytest.raises(ValueError, match="index_url"):
        BASE.pip_install("numpy", index_url=index_url)


@pytest.mark.parametrize(
    "path, editable",
    [("/abs", True), ("..", True), ("pkg/../..", True), ("", True), (None, True), ("a\x00", True), (".", "yes"), (".", 1), (".", None)],
)
def test_pip_install_local_dir_rejects(path, editable):
    with pytest.raises(ValueError, match="pip_install_local_dir"):
        BASE.pip_install_local_dir(path, editable=editable)


@pytest.mark.parametrize("args", [("",), (" \n ",), ("a\x00",), (None,), (b"echo",)])
def test_run_commands_rejects(args):
    with pytest.raises(ValueError, match="run_commands"):
        BASE.run_commands(*args)


def test_rejected_step_leaves_the_image_usable():
    image = BASE.pip_install("x")
    with pytest.raises(ValueError):
        image.apt_install("bad name")
    assert image.ops == (PipInstall(("x",)),)


# ---------------------------------------------------------------- local_dirs


def test_local_dirs_in_order_and_normalised():
    image = (
        BASE.pip_install_local_dir("./pkg/")
        .pip_install("x")
        .pip_install_local_dir()
        .pip_install_local_dir("a/./b", editable=False)
    )
    assert local_dirs(image) == ("pkg", ".", "a/b")


def test_local_dirs_empty():
    assert local_dirs(BASE) == ()
    assert local_dirs(BASE.apt_install("git").run_commands("true")) == ()


def test_local_dir_copies_then_installs():
    dockerfile = render_base(BASE.pip_install_local_dir("src/pkg"))
    lines = dockerfile.split("\n")
    assert lines[2] == 'COPY ["repo/src/pkg", "/runplz/repo/src/pkg/"]'
    assert json.loads(lines[3][4:])[-2:] == ["-e", "/runplz/repo/src/pkg"]


# ---------------------------------------------------------------- exec form properties

_requirement = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=30).filter(str.strip)


def test_version_specifier_is_not_a_shell_redirect():
    dockerfile = render_base(BASE.pip_install("pandas>=2.0", "numpy<2"))
    (run,) = [line for line in dockerfile.split("\n") if line.startswith("RUN")]
    assert run.startswith("RUN [")
    assert json.loads(run[4:])[-2:] == ["pandas>=2.0", "numpy<2"]


@PROPS
@given(packages=st.lists(_requirement, min_size=1, max_size=5))
def test_pip_packages_survive_exec_form(packages):
    dockerfile = render_base(BASE.pip_install(*packages))
    lines = dockerfile.split("\n")
    assert lines[:2] == ["FROM python:3.11-slim", "USER root"]
    assert lines[3:] == [""]
    assert lines[2].startswith("RUN ")
    argv = json.loads(lines[2][len("RUN "):])
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert argv[-len(packages):] == packages
    assert argv[: -len(packages)] == json.loads(f"[{PIP}]")


@PROPS
@given(
    packages=st.lists(_requirement, min_size=1, max_size=3),
    index_url=st.text(st.characters(blacklist_categories=["Cs", "Zs", "Zl", "Zp", "Cc"]), min_size=1, max_size=30),
)
def test_pip_index_url_survives_exec_form(packages, index_url):
    (argv,) = _run_argvs(render_base(BASE.pip_install(*packages, index_url=index_url)))
    assert argv[-len(packages) - 2:] == ["--index-url", index_url, *packages]


@PROPS
@given(chain=st.lists(st.lists(_requirement, min_size=1, max_size=3), min_size=1, max_size=4))
def test_every_run_line_parses(chain):
    image = BASE
    for packages in chain:
        image = image.pip_install(*packages)
    argvs = _run_argvs(render_base(image))
    assert len(argvs) == len(chain)
    for argv, packages in zip(argvs, chain):
        assert argv[-len(packages):] == packages


@PROPS
@given(commands=st.lists(_requirement, min_size=1, max_size=4))
def test_run_commands_round_trip(commands):
    dockerfile = render_base(BASE.run_commands(*commands))
    lines = dockerfile.split("\n")
    assert len(lines) == 3 + len(commands)
    assert _run_argvs(dockerfile) == [["/bin/sh", "-c", c] for c in commands]


def test_run_commands_with_newlines_and_quotes():
    commands = ["echo \"it's\"\necho done", "cat <<'EOF'\n$HOME \\ `x`\nEOF", "a && b || c > d"]
    dockerfile = render_base(BASE.run_commands(*commands))
    assert dockerfile.count("\n") == 2 + len(commands)
    assert _run_argvs(dockerfile) == [["/bin/sh", "-c", c] for c in commands]


_apt_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9+.:=~_/-]{0,20}", fullmatch=True)


@PROPS
@given(names=st.lists(_apt_name, min_size=1, max_size=5))
def test_apt_names_are_shell_quoted(names):
    dockerfile = render_base(BASE.apt_install(*names))
    lines = dockerfile.split("\n")
    assert len(lines) == 4
    words = shlex.split(lines[2][len("RUN "):])
    start = words.index("--no-install-recommends") + 1
    assert words[start: start + len(names)] == names
    assert words[start + len(names)] == "&&"


# ---------------------------------------------------------------- regressions


def test_apt_name_with_trailing_newline_rejected():
    with pytest.raises(ValueError, match="apt_install"):
        BASE.apt_install("curl\n")
