"""Driver overhead of `.map()` on local native: a no-op function over N inputs.

    python benchmarks/map.py [--sizes 10,50,100] [--concurrency K]

For each N it prints: the `.map()` call itself (reading and JSON-checking the
inputs: "submit"), the wall time to the last result ("total"), the slowest
input's own run time as the job measured it ("slowest item"), and the cost
per input: total * K / N, the time one slot spends per input (process start,
payload, result, record), against the floor of starting a bare Python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

JOB = '''
import time
from runplz import App, Image

app = App("bench-map")


@app.function(image=Image.from_registry("python:3.11-slim"))
def noop(i: int) -> float:
    started = time.perf_counter()
    return time.perf_counter() - started
'''


def python_floor(runs: int = 10) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        subprocess.run([sys.executable, "-S", "-c", "pass"], check=True)
    return (time.perf_counter() - started) / runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    options = parser.parse_args()
    from runplz.adapters.fake_console import RecordingConsole
    from runplz.container import make_container
    from runplz.loader import load_app

    root = tempfile.mkdtemp(prefix="runplz-bench-map-")
    os.makedirs(os.path.join(root, "repo", ".git"))
    script = os.path.join(root, "repo", "job.py")
    with open(script, "w") as handle:
        handle.write(JOB)
    os.environ.setdefault("RUNPLZ_STATE_DIR", os.path.join(root, "state"))
    container = make_container(os.path.join(root, "cache"))
    container.console.override(RecordingConsole())
    module, app = load_app(script)
    app.bind("local", outputs_dir=os.path.join(root, "repo", "out"), native=True, container=container)
    module.noop.remote(0)  # make the venv once, outside the timings
    k = options.concurrency
    floor = python_floor()
    print(f"K = {k}; a bare `python -S -c pass` takes {floor * 1000:.0f} ms")
    print(f"{'N':>5} {'submit':>10} {'total':>9} {'slowest item':>13} {'per input (slot)':>17} {'per input (wall)':>17}")
    for n in (int(size) for size in options.sizes.split(",")):
        started = time.perf_counter()
        results = module.noop.map(range(n), concurrency=k)
        submitted = time.perf_counter() - started
        values = list(results)
        total = time.perf_counter() - started
        print(
            f"{n:>5} {submitted * 1000:>8.2f}ms {total:>8.2f}s {max(values) * 1000:>11.3f}ms "
            f"{total * min(k, n) / n * 1000:>15.0f}ms {total / n * 1000:>15.0f}ms"
        )


if __name__ == "__main__":
    main()
