"""The Image DSL as a real modal.Image chain, read back offline (no token, no network)."""

import os
import subprocess
import sys

import attrs
import pytest

from runplz.adapters.modal_image import KeepOnly, ModalPlaces, modal_image
from runplz.domain.image import Image
from runplz.domain.layout import BUNDLE_DIR, REPO_DIR
from runplz.domain.modal_image_plan import keeps, local_dir_install, needs_python, repository_path, under
from runplz.domain.modal_resources import modal_resources
from runplz.domain.spec import function_spec

import modal  # noqa: E402 (a dev dependency, pinned: these tests read its objects)

PIP_ENV = "env PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1"


# ---------------------------------------------------------------- modal internals (1.6.4), here only


@attrs.frozen
class Layer:
    kind: str  # "build" (a Dockerfile layer), "dockerfile" (from_dockerfile) or "mount" (copy=False add)
    commands: tuple[str, ...]
    files: dict | None  # {container path: local path} the layer sends from this machine, or None


def layers(image):
    """The layers of a modal.Image, base first, with the local files each sends.

    The one place that reads modal 1.6.4 internals: the loader closures of
    `_Image._from_args`, `_add_mount_layer_or_copy`, `from_registry` and
    `from_dockerfile`, evaluated at the newest image builder version, and the
    client's own file selection (`modal.mount._select_files`)."""
    from modal._image import LATEST_IMAGE_BUILDER_VERSION as version
    from modal._utils.async_utils import synchronizer
    from modal.mount import _select_files

    def cells(function):
        names, values = function.__code__.co_freevars, function.__closure__ or ()
        return {name: cell.cell_contents for name, cell in zip(names, values)}

    def files(mount):
        if mount is None or mount._entries is None:  # none, or one Modal hosts (add_python's)
            return None
        return {str(remote): str(local) for local, remote in _select_files(mount.entries)}

    found = []
    impl = synchronizer._translate_in(image)
    while impl is not None:
        closure = cells(impl._load)
        if "mount" in closure:
            found.append(Layer("mount", (), files(closure["mount"])))
            impl = closure["base_image"]
        elif "split_image" in closure:  # from_registry(add_python=...)
            impl = closure["split_image"]
        elif "dockerfile_image" in closure:
            context = cells(closure["dockerfile_image"])["context_mount_function"](version)
            commands = (f"FILE {closure['path']}", f"PYTHON {closure['add_python']}")
            found.append(Layer("dockerfile", commands, files(context)))
            impl = None
        else:
            spec = closure["dockerfile_function"](version)
            mount_fn = closure["context_mount_function"]
            found.append(Layer("build", tuple(spec.commands), files(mount_fn(version) if mount_fn else None)))
            impl = next(iter((closure["base_images"] or {}).values()), None)
    return found[::-1]


# ---------------------------------------------------------------- a repo with secrets in it


@pytest.fixture
def places(tmp_path):
    repo = tmp_path / "repo"
    files = {
        "main.py": "print('hi')\n",
        "pkg/pyproject.toml": "[project]\nname='pkg'\n",
        "pkg/src/pkg/__init__.py": "",
        "pkg/.env": "TOKEN=pkg-secret\n",
        ".env": "TOKEN=secret\n",
        "id_rsa": "PRIVATE\n",
        "keys/server.pem": "PEM\n",
        "docker/Dockerfile": "FROM python:3.11-slim\nCOPY . /app\nRUN echo built\n",
        "docker/extra.txt": "x\n",
    }
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    outside = tmp_path / "outside-secret"
    outside.write_text("stolen\n")
    os.symlink(outside, repo / "leak")
    bundle = tmp_path / "bundle"
    (bundle / "runplz").mkdir(parents=True)
    (bundle / "runplz" / "__init__.py").write_text("")
    keep = frozenset(
        {"main.py", "pkg", "pkg/pyproject.toml", "pkg/src", "pkg/src/pkg", "pkg/src/pkg/__init__.py",
         "docker", "docker/Dockerfile", "docker/extra.txt", "leak"}
    )  # "leak" is listed on purpose: a link out of the repo must stay home anyway
    return ModalPlaces(str(repo), keep, str(bundle), None)


def _repo_mount_files(image):
    repo, bundle = layers(image)[-2:]
    assert repo.kind == bundle.kind == "mount"
    return repo.files, bundle.files


# ---------------------------------------------------------------- registry images


def test_registry_steps_become_layers_and_repo_and_bundle_are_mounted_last(places):
    image = (
        Image.from_registry("pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime")
        .apt_install("bzip2", "rsync")
        .pip_install("pandas>=2.0", index_url="https://example.org/simple")
        .run_commands("echo hi", "echo there")
    )
    found = layers(modal_image(image, places))
    assert [layer.commands for layer in found[:-2]] == [
        ("FROM pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",),
        ("FROM base", "RUN apt-get update", "RUN apt-get install -y bzip2 rsync"),
        ("FROM base", "RUN python -m pip install 'pandas>=2.0' --index-url https://example.org/simple"),
        ("FROM base", "RUN echo hi", "RUN echo there"),
    ]
    assert [layer.kind for layer in found] == ["build"] * 4 + ["mount", "mount"]


def test_repo_mount_holds_exactly_the_kept_files(places):
    repo_files, bundle_files = _repo_mount_files(modal_image(Image.from_registry("python:3.11-slim"), places))
    assert set(repo_files) == {
        f"{REPO_DIR}/main.py",
        f"{REPO_DIR}/pkg/pyproject.toml",
        f"{REPO_DIR}/pkg/src/pkg/__init__.py",
        f"{REPO_DIR}/docker/Dockerfile",
        f"{REPO_DIR}/docker/extra.txt",
    }
    bundle_init = os.path.join(places.bundle_dir, "runplz", "__init__.py")
    assert bundle_files == {f"{BUNDLE_DIR}/runplz/__init__.py": bundle_init}


def test_the_keep_list_alone_decides(places):
    widened = attrs.evolve(places, repo_keep=places.repo_keep | {".env"})
    repo_files, _ = _repo_mount_files(modal_image(Image.from_registry("python:3.11-slim"), widened))
    assert f"{REPO_DIR}/.env" in repo_files  # so the filter, not modal, kept it out above


def test_add_python_goes_to_from_registry(places):
    image = Image.from_registry("ubuntu:22.04").apt_install("git")
    found = layers(modal_image(image, attrs.evolve(places, add_python="3.11")))
    assert found[0].commands == ("FROM ubuntu:22.04",)
    assert found[1].commands[:2] == ("FROM base", "COPY /python/. /usr/local")
    plain = layers(modal_image(image, places))
    assert not any("COPY /python/. /usr/local" in layer.commands for layer in plain)


@pytest.mark.parametrize("path, editable", [(".", True), ("pkg", True), ("pkg", False)])
def test_local_dir_is_copied_then_pip_installed_with_the_docker_backends_flags(places, path, editable):
    image = Image.from_registry("python:3.11-slim").pip_install_local_dir(path, editable=editable)
    found = layers(modal_image(image, places))
    copy, install = found[1], found[2]
    target = REPO_DIR if path == "." else f"{REPO_DIR}/{path}"
    assert copy.kind == "build" and copy.commands == ("FROM base", "COPY . /")
    flag = " -e" if editable else ""
    assert install.commands == ("FROM base", f"RUN {PIP_ENV} python -m pip install --no-cache-dir{flag} {target}")
    kept = {"pkg/pyproject.toml", "pkg/src/pkg/__init__.py"}
    if path == ".":
        kept |= {"main.py", "docker/Dockerfile", "docker/extra.txt"}
    assert set(copy.files) == {f"{REPO_DIR}/{name}" for name in kept}  # no .env, id_rsa, pem, leak
    assert [layer.kind for layer in found[-2:]] == ["mount", "mount"]


def test_mounts_come_after_every_build_step(places):
    image = (
        Image.from_registry("python:3.11").pip_install_local_dir("pkg").run_commands("true").pip_install("x")
    )
    kinds = [layer.kind for layer in layers(modal_image(image, places))]
    assert kinds == ["build"] * (len(kinds) - 2) + ["mount", "mount"]


# ---------------------------------------------------------------- Dockerfile images


def test_dockerfile_context_sends_no_secret(places):
    found = layers(modal_image(Image.from_dockerfile("docker/Dockerfile", context="."), places))
    dockerfile = found[0]
    assert dockerfile.kind == "dockerfile"
    assert dockerfile.commands == (f"FILE {places.repo_root}/docker/Dockerfile", "PYTHON None")
    sent = dockerfile.files
    assert set(sent) == {"/main.py", "/pkg/pyproject.toml", "/pkg/src/pkg/__init__.py", "/docker/Dockerfile",
                         "/docker/extra.txt"}
    assert [layer.kind for layer in found[1:]] == ["mount", "mount"]


def test_dockerfile_context_defaults_to_the_repo_root_and_a_subfolder_is_filtered_too(places):
    default = layers(modal_image(Image.from_dockerfile("docker/Dockerfile"), places))[0]
    assert "/main.py" in default.files
    sub = layers(modal_image(Image.from_dockerfile("docker/Dockerfile", context="pkg"), places))[0]
    assert set(sub.files) == {"/pyproject.toml", "/src/pkg/__init__.py"}  # not pkg/.env


def test_dockerfile_gets_add_python(places):
    found = layers(modal_image(Image.from_dockerfile("docker/Dockerfile"), attrs.evolve(places, add_python="3.12")))
    assert found[0].commands[1] == "PYTHON 3.12"


# ---------------------------------------------------------------- the keep-only predicate


def test_keep_only_takes_relative_and_absolute_paths(places, tmp_path):
    from pathlib import Path

    predicate = KeepOnly(places.repo_root, ".", places.repo_keep)
    assert predicate(Path("main.py")) is False
    assert predicate(Path(places.repo_root) / "main.py") is False
    assert predicate(Path(".env")) is True
    assert predicate(Path("leak")) is True  # kept by name, but it leads outside the repo
    assert predicate(tmp_path / "elsewhere.py") is True
    assert KeepOnly(os.path.join(places.repo_root, "pkg"), "pkg", places.repo_keep)(Path("pyproject.toml")) is False


def test_plan_helpers():
    keep = frozenset({"a", "a/b.py", "c.py"})
    assert under(".", "c.py") == "c.py" and under("a", "b.py") == "a/b.py" and under("a", ".") == "a"
    assert keeps(keep, "a", "b.py") and keeps(keep, ".", "c.py") and not keeps(keep, "a", "c.py")
    assert local_dir_install("my pkg", False) == f"{PIP_ENV} python -m pip install --no-cache-dir '{REPO_DIR}/my pkg'"


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("ubuntu:22.04", True),
        ("docker.io/library/ubuntu:22.04", True),
        ("library/debian:bookworm-slim", True),
        ("nvidia/cuda:12.1.0-cudnn8-runtime-ubuntu22.04", True),
        ("nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04", True),
        ("public.ecr.aws/amazonlinux/amazonlinux:2023", True),
        ("quay.io/centos/centos:stream9", True),
        ("rockylinux:9", True),
        ("almalinux:9", True),
        ("fedora:40", True),
        ("alpine:3.20", True),
        ("busybox", True),
        ("localhost:5000/ubuntu:22.04", True),
        ("ubuntu@sha256:" + "a" * 64, True),
        ("python:3.11-slim", False),
        ("pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", False),
        ("nvcr.io/nvidia/pytorch:24.05-py3", False),
        ("ghcr.io/acme/ubuntu-ml:1", False),
        ("acme/ubuntu:1", False),
    ],
)
def test_needs_python(ref, expected):
    assert needs_python(ref) is expected


def test_repository_path():
    assert repository_path("registry.example.com:5000/library/Alpine:3@sha256:abc") == "alpine"


# ---------------------------------------------------------------- the real client accepts our parameters


def some_global_fn():
    return 1


def test_function_info_reports_our_resources(places):
    spec = function_spec("train", image=Image.from_registry("python:3.11-slim"), gpu="a100-80gb", num_gpus=4,
                         min_cpu=4, min_memory=16, timeout=600)
    res = modal_resources(spec)
    app = modal.App("runplz-test")
    function = app.function(
        image=modal_image(spec.image, places), gpu=res.gpu, cpu=res.cpu, memory=res.memory_mib, timeout=res.timeout
    )(some_global_fn)
    info = function.info()
    assert (info.cpu, info.memory_mib, info.gpus, info.timeout) == (4.0, 16384, [("A100-80GB", 4)], 600)


def test_importing_the_adapter_does_not_import_modal():
    code = "import sys, runplz.adapters.modal_image, runplz.domain.modal_resources; print('modal' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
