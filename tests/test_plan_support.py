"""Shared by the plan tests: job repos, a CLI group with `plan`, golden files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
from click.testing import CliRunner

from runplz.cli.main import RunplzGroup
from runplz.cli.plan import plan

from .jobs import make_repo

GOLDEN = Path(__file__).parent / "golden" / "plan"
UPDATE = os.environ.get("RUNPLZ_UPDATE_GOLDEN") == "1"

JOB = '''
from runplz import App, BrevConfig, Image, ModalConfig, SshConfig

app = App("demo", CONFIG)
image = (
    Image.from_registry("ubuntu:22.04")
    .apt_install("curl")
    .pip_install("numpy==1.26.4")
    .run_commands("echo ready > /tmp/ready")
)


@app.function(image=image, min_gpu_memory=16, TIMEOUT env={"WANDB_PROJECT": "demo"})
def train(steps: int = 1, lr: float = 0.1) -> dict:
    return {"steps": steps}
'''

TWO = '''
from runplz import App, Image

app = App("pair")
image = Image.from_registry("python:3.11-slim").pip_install("requests")


@app.function(image=image, min_cpu=2, timeout=600)
def prepare() -> int:
    return 1


@app.function(image=image, min_cpu=2, timeout=1200)
def train(n: int = 1) -> int:
    return n


@app.local_entrypoint()
def main(n: int = 2):
    prepare.remote()
    train.remote(n=n)
'''


def job_repo(root: Path, config: str = "", timeout: str = "timeout=3600,", script: str | None = None) -> Path:
    """A repo with the job, some data, and an outputs folder that must not travel."""
    source = script or JOB.replace("CONFIG", config).replace("TIMEOUT", timeout)
    path = make_repo(root, source, files={"README.md": "demo\n", "src/model.py": "W = 1\n" * 40})
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "weights.bin").write_bytes(b"\0" * 300_000)
    (root / "data" / "small.bin").write_bytes(b"\1" * 2_000)
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "old-result.bin").write_bytes(b"\2" * 900_000)
    return path


def group() -> click.Group:
    @click.group(cls=RunplzGroup)
    def root() -> None:
        """A test-local runplz with `plan`."""

    root.add_command(plan)
    return root


def run_plan(container, *args: str, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(group(), ["plan", *args], obj=container, catch_exceptions=False)
    finally:
        os.chdir(old)


_HEX = re.compile(r"\b[0-9a-f]{12,64}\b")


def normalize(text: str, repo: Path, cache: Path) -> str:
    text = text.replace(str(repo), "<repo>").replace(str(cache), "<cache>")
    return _HEX.sub("<hash>", text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            raise AssertionError(f"wrote the missing golden file {path}; check it and run again")
        return
    assert text == path.read_text(), f"{name} differs from its golden file (RUNPLZ_UPDATE_GOLDEN=1 rewrites it)"
