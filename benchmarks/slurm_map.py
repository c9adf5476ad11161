"""Driver overhead of `.map()` on Slurm (ONE job array): a no-op function over N inputs.

    python benchmarks/slurm_map.py [--sizes 10,50,100] [--concurrency K]

Needs root and the Slurm packages (scripts/test.sh installs them): it starts
the throwaway single-node cluster the tests use (testsupport/slurm_cluster.py)
and runs the driver on this machine as the login node (no ssh hop: the
numbers are the driver's and Slurm's own). Each N is a fresh map in the same
repo (the venv is built once, by a warm-up map of one input).

For each N it prints:
- setup: from the `.map()` call to the sbatch submission (connect, probe,
  upload of the changes, the cached venv found);
- submit: writing the N task folders and the one ``sbatch --array``;
- total: the `.map()` call to its last result; slowest item: the longest
  task as the task itself measured it (its process's start, from /proc, to
  its return: python, runplz's entry, the import of the script); span: first
  task start to last task end as the node's clock saw them; lag: last task
  end to the driver holding every result;
- per item: (total - setup) / N, the cost one input adds, and how it grows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "src")]

JOB = '''
import os, time
from runplz import App, Image, SlurmConfig

app = App("bench-slurm-map", slurm_config=SlurmConfig(workdir=WORKDIR, poll_seconds=0.5, max_poll_seconds=5))


@app.function(image=Image.from_registry("python:3.11-slim"), min_memory=0.05)
def noop(i: int) -> list:
    """[when this task's process started, when it returned] (the node's clock)."""
    with open("/proc/self/stat") as handle:
        ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as handle:
        boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
    return [boot + ticks / os.sysconf("SC_CLK_TCK"), time.time()]
'''


class StampedConsole:
    """A console that notes when each message came."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []

    def info(self, message: str) -> None:
        self.events.append((time.perf_counter(), "info", message))

    def warn(self, message: str) -> None:
        self.events.append((time.perf_counter(), "warn", message))

    def output(self, line: str) -> None:
        pass

    def progress(self, message: str) -> None:
        pass

    def at(self, words: str, after: float) -> float | None:
        return next((t for t, _, m in self.events if t >= after and words in m), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--concurrency", type=int, default=8)
    options = parser.parse_args()
    from testsupport import slurm_cluster

    cluster, why = slurm_cluster.start()
    if cluster is None:
        sys.exit(f"no Slurm cluster: {why}")
    try:
        os.environ["SLURM_CONF"] = cluster.conf
        run(cluster, [int(n) for n in options.sizes.split(",")], options.concurrency)
    finally:
        cluster.stop()


def run(cluster, sizes: list[int], concurrency: int) -> None:
    from runplz.container import make_container
    from runplz.loader import load_app

    root = tempfile.mkdtemp(prefix="runplz-bench-slurm-map-", dir=cluster.shared)
    os.makedirs(os.path.join(root, "repo", ".git"))
    script = os.path.join(root, "repo", "job.py")
    with open(script, "w") as handle:
        handle.write(JOB.replace("WORKDIR", repr(os.path.join(root, "work"))))
    os.environ.setdefault("RUNPLZ_STATE_DIR", os.path.join(root, "state"))
    container = make_container(os.path.join(root, "cache"))
    console = StampedConsole()
    container.console.override(console)
    module, app = load_app(script)
    app.bind("slurm", outputs_dir=os.path.join(root, "repo", "out"), container=container)
    began = time.perf_counter()
    list(module.noop.map(range(1)))
    print(f"cluster: {cluster.cpus} CPUs, started in {cluster.started_s:.1f}s; warm-up map (venv build) "
          f"{time.perf_counter() - began:.1f}s; K = {concurrency}")
    print(f"{'N':>5} {'setup':>7} {'submit':>7} {'total':>7} {'slowest':>8} {'span':>7} {'lag':>6} {'per item':>9}")
    for n in sizes:
        began = time.perf_counter()
        wall_began = time.time()
        results = list(module.noop.map(range(n), concurrency=concurrency))
        total = time.perf_counter() - began
        wall_done = time.time()
        running = console.at("running noop on", began) or began
        submitted = console.at("as job array", began) or running
        slowest = max(end - start for start, end in results)
        first = min(start for start, _ in results)
        last = max(end for _, end in results)
        setup = submitted - began
        lag = wall_done - last
        print(f"{n:>5} {setup:>6.2f}s {submitted - running:>6.2f}s {total:>6.1f}s {slowest:>7.2f}s "
              f"{last - first:>6.1f}s {lag:>5.2f}s {(total - setup) / n * 1000:>7.0f}ms"
              f"   (first task started {first - wall_began:.1f}s after the call)")


if __name__ == "__main__":
    main()
