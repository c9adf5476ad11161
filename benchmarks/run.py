"""Measure runplz against its floors and print a table (medians of several runs).

    python benchmarks/run.py [--runs N]

Rows that need a Docker engine are skipped when `docker version` fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)


def timed(argv: list[str], runs: int, env: dict | None = None, cwd: str | None = None) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def imports_modal(runplz: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", runplz, "--help"], capture_output=True, text=True
    ).stderr
    return any(line.split("|")[-1].strip().split(".")[0] == "modal" for line in out.splitlines())


def docker_ok() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "version"], capture_output=True
    ).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    import compileall

    import runplz

    # pip compiles bytecode when it installs a package; an editable checkout
    # (with PYTHONDONTWRITEBYTECODE set) would otherwise recompile every run.
    compileall.compile_dir(os.path.dirname(runplz.__file__), quiet=1)
    runplz = os.path.join(BIN, "runplz")
    rows: list[tuple[str, str, str, str]] = []

    bare = timed([sys.executable, "-c", "pass"], runs)
    help_time = timed([runplz, "--help"], runs)
    rows.append(("`python -c pass`", f"{bare * 1000:.0f} ms", "", ""))
    rows.append(("`runplz --help`", f"{help_time * 1000:.0f} ms", f"{help_time / bare:.2f}x bare", "<= 2x"))
    rows.append(("modal imported by `runplz --help`", "yes" if imports_modal(runplz) else "no", "", "no"))
    modal = shutil.which("modal", path=BIN + os.pathsep + os.environ.get("PATH", ""))
    if modal:
        modal_time = timed([modal, "--help"], max(3, runs // 2))
        rows.append(("`modal --help` (for scale)", f"{modal_time * 1000:.0f} ms", f"{modal_time / bare:.1f}x bare", ""))

    cache = tempfile.mkdtemp(prefix="runplz-bench-cache-")
    env = {**os.environ, "RUNPLZ_CACHE_DIR": cache}
    repo = tempfile.mkdtemp(prefix="runplz-bench-repo-")
    os.mkdir(os.path.join(repo, ".git"))
    shutil.copy(os.path.join(HERE, "noop.py"), repo)
    native = [runplz, "local", "--native", "noop.py"]
    subprocess.run(native, env=env, cwd=repo, check=True, capture_output=True)  # warm the venv
    native_time = timed(native, runs, env, repo)
    venv_python = next(
        os.path.join(root, "bin", "python")
        for root in (os.path.join(cache, "venvs", d) for d in os.listdir(os.path.join(cache, "venvs")))
        if os.path.isdir(root)
    )
    floor = timed([venv_python, "-c", "pass"], runs)
    rows.append(("native no-op run, warm venv", f"{native_time * 1000:.0f} ms", f"+{(native_time - floor) * 1000:.0f} ms over plain python", "< +500 ms"))

    if docker_ok():
        cmd = [runplz, "local", "noop.py"]
        subprocess.run(cmd, env=env, cwd=repo, check=True, capture_output=True)  # build once
        image = subprocess.run(
            ["docker", "images", "--filter", "label=runplz.app=bench-noop", "--filter", "label=runplz.kind=run",
             "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True,
        ).stdout.split()[0]
        cached = timed(cmd, runs, env, repo)
        raw = timed(["docker", "run", "--rm", image, "python3", "-c", "pass"], runs)
        rows.append(("docker re-run, cached image", f"{cached * 1000:.0f} ms", f"{cached / raw:.2f}x raw `docker run` ({raw * 1000:.0f} ms)", ""))
    else:
        rows.append(("docker re-run, cached image", "skipped", "no Docker engine answers", ""))
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(repo, ignore_errors=True)

    widths = [max(len(r[i]) for r in rows + [("what", "median", "against", "goal")]) for i in range(4)]
    header = ("what", "median", "against", "goal")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print(f"\n{runs} runs each; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
