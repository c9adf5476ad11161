"""A tiny job: writes a file to $RUNPLZ_OUT and returns a summary.

    runplz local --native examples/hello.py --steps=3
    runplz local examples/hello.py --steps=3          # in Docker
"""

import os
import platform

from runplz import App, Image

app = App("hello")

image = Image.from_registry("python:3.11-slim").pip_install("six")


@app.function(image=image, timeout=600)
def count(steps: int = 3, greeting: str = "hello") -> dict:
    out = os.environ["RUNPLZ_OUT"]
    lines = [f"{greeting} {i}" for i in range(steps)]
    with open(os.path.join(out, "hello.txt"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    for line in lines:
        print(line, flush=True)
    return {"steps": steps, "python": platform.python_version()}
