"""Job scripts the tests write into throwaway repos."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

BASIC = '''
import json, os, sys
from runplz import App, Image

app = App("basic")
image = Image.from_registry("python:3.11-slim")


@app.function(image=image, env={"GREETING": "hi there"}, timeout=300)
def work(steps: int = 1, label: str = "x", fail: bool = False, code: int = 0) -> dict:
    out = os.environ["RUNPLZ_OUT"]
    with open(os.path.join(out, "result.txt"), "w") as handle:
        handle.write(f"{label}:{steps}")
    print(f"working {steps} {label}", flush=True)
    if code:
        sys.exit(code)
    if fail:
        raise ValueError(f"bad label {label!r}")
    return {"steps": steps, "label": label, "greeting": os.environ.get("GREETING"),
            "cwd_has_script": os.path.exists("job.py"), "tuple": (1, 2)}
'''


def make_repo(root: Path, script: str = BASIC, name: str = "job.py", files: dict | None = None) -> Path:
    """A throwaway repo (a .git folder marks its root) holding the job script."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".git").mkdir(exist_ok=True)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(script))
    for rel, content in (files or {}).items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return path


def chdir(path: Path):
    class _Chdir:
        def __enter__(self):
            self.old = os.getcwd()
            os.chdir(path)

        def __exit__(self, *exc):
            os.chdir(self.old)

    return _Chdir()
