"""Warm no-op runs over ssh against their raw floor (medians), per mode.

    python benchmarks/ssh.py [--host HOST] [--runs N]

Without --host, as root, it starts a throwaway sshd on 127.0.0.1 (and a
Docker engine for docker mode) the way the tests do, and can then count
connections from sshd's log. The floor is what a hand-written script needs:
rsync the repo up, one ssh that runs the job, rsync the outputs down, each on
a fresh connection.

Where a warm run's time goes comes from its run record (the driver's phases,
in a throwaway state folder): driver start (Python, imports, the record
begun), planning before the connection, connect (the connection and the
probe), upload, build, the job's start, run, collect, and the teardown (the
rest, to the driver's exit); beside them the floor's own three steps.
Bytecode is compiled first, as pip does when it installs runplz.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv, env, cwd) -> tuple[float, float, str, float, float]:
    """(seconds, child CPU seconds, stderr, wall clock at the start and at the end)."""
    cpu = child_cpu()
    began = time.time()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{done.stderr[-2000:]}")
    return took, child_cpu() - cpu, done.stderr, began, time.time()


PHASES = ("connect", "upload", "build", "run", "collect")
ROWS = (
    ("driver start (Python, imports, the record begun)", "startup"),
    ("planning before the connection", "planning"),
    ("connect (connection + probe)", "connect"),
    ("upload", "upload"),
    ("build (image or venv, cached)", "build"),
    ("starting the job", "start"),
    ("run (the job, its log followed)", "run"),
    ("collect (outputs home)", "collect"),
    ("teardown (the rest, to exit)", "teardown"),
)


def phases_of(state: str, stderr: str, began: float, ended: float) -> dict[str, float]:
    """Seconds per step of one run, from its record (see ROWS)."""
    from runplz.adapters.file_run_store import FileRunStore

    match = re.search(r"runplz: run (\S+?)[;\s]", stderr)
    if match is None:
        raise SystemExit(f"no run id in the driver's output:\n{stderr[-2000:]}")
    events = FileRunStore(os.path.join(state, "runs")).events(match.group(1))
    started = next(e.at for e in events if type(e).__name__ == "Started")
    opened = {e.name: e.at for e in events if type(e).__name__ == "Phase"}
    done = {e.name: (e.seconds, e.at) for e in events if type(e).__name__ == "PhaseDone"}
    steps = {"startup": started - began}
    if "connect" in opened:
        steps["planning"] = opened["connect"] - started
    steps.update({name: done[name][0] for name in PHASES if name in done})
    if "run" in opened and "build" in done:
        steps["start"] = opened["run"] - done["build"][1]
    steps["teardown"] = ended - max((at for _, at in done.values()), default=started)
    return steps


def make_repo(use_docker: bool) -> str:
    repo = tempfile.mkdtemp(prefix="runplz-bench-ssh-")
    os.mkdir(os.path.join(repo, ".git"))
    os.mkdir(os.path.join(repo, "data"))
    for index in range(50):
        with open(os.path.join(repo, "data", f"part{index:02d}.txt"), "w") as handle:
            handle.write(f"{index}\n" * 4000)
    with open(os.path.join(HERE, "noop.py")) as handle:
        source = handle.read()
    source = source.replace('App("bench-noop")', f'App("bench-noop", ssh_config=SshConfig(use_docker={use_docker}))')
    source = source.replace("from runplz import App, Image", "from runplz import App, Image, SshConfig")
    with open(os.path.join(repo, "noop.py"), "w") as handle:
        handle.write(source)
    os.chmod(repo, 0o755)
    return repo


def repo_size(repo: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(repo) for f in fs)


def floor(host: str, repo: str, job: str, runs: int) -> dict[str, float]:
    """Medians of the floor's steps and of its total."""
    samples: dict[str, list[float]] = {"rsync up": [], "ssh (the job)": [], "rsync down": [], "total": []}
    local_out = tempfile.mkdtemp(prefix="runplz-bench-floor-out-")
    steps = (
        ("rsync up", ["rsync", "-a", "--delete", "--rsync-path=mkdir -p bench-floor && rsync",
                      f"{repo}/", f"{host}:bench-floor/"]),
        ("ssh (the job)", ["ssh", "-T", host, f"cd bench-floor && mkdir -p out && {job}"]),
        ("rsync down", ["rsync", "-a", f"{host}:bench-floor/out/", f"{local_out}/"]),
    )
    for _ in range(runs):
        total = 0.0
        for name, argv in steps:
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            took = time.perf_counter() - started
            samples[name].append(took)
            total += took
        samples["total"].append(total)
    shutil.rmtree(local_out, ignore_errors=True)
    return {name: statistics.median(values) for name, values in samples.items()}


def upload_check_cost(host: str, runs: int) -> list[tuple[str, str, str, str]]:
    """An unchanged re-upload by size and time (rsync's quick check) against the
    exact content comparison runplz makes (-c), for a small and a large repo."""
    rows = []
    for label, files, size in (("50 files, 390 KB", 50, 8000), ("64 files, 256 MB", 64, 4 << 20)):
        repo = tempfile.mkdtemp(prefix="runplz-bench-check-")
        for index in range(files):
            with open(os.path.join(repo, f"f{index:03d}.bin"), "wb") as handle:
                handle.write(os.urandom(size))
        target = f"bench-check-{os.getpid()}"
        base = ["rsync", "-lpt", "-r", f"--rsync-path=mkdir -p {target} && rsync", f"{repo}/", f"{host}:{target}/"]
        subprocess.run(base, check=True, capture_output=True)
        figures = []
        for extra in ([], ["-c"]):
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                subprocess.run(base[:1] + extra + base[1:], check=True, capture_output=True)
                samples.append(time.perf_counter() - started)
            figures.append(statistics.median(samples))
        subprocess.run(["ssh", "-T", host, f"rm -rf {target}"], capture_output=True)
        shutil.rmtree(repo, ignore_errors=True)
        quick, exact = figures
        rows.append((label, f"{quick * 1000:.0f} ms", f"{exact * 1000:.0f} ms", f"{(exact - quick) * 1000:+.0f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="an ssh target you own (default: a throwaway loopback sshd, as root)")
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    sys.path.insert(0, ROOT)
    import runplz

    compileall.compile_dir(os.path.dirname(runplz.__file__), quiet=1)  # as pip install does
    cleanups = []
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    box = None
    host = options.host
    docker_ok = True
    if host is None:
        from testsupport import docker_daemon, sshd

        engine, why = docker_daemon.start()
        if engine is not None:
            cleanups.append(engine.stop)
            docker_daemon.ensure_base_image(engine)
            env["DOCKER_HOST"] = engine.host
        docker_ok = engine is not None
        extra = {"DOCKER_HOST": engine.host, "PATH": f"{engine.hook_dir}:/usr/local/bin:/usr/bin:/bin"} if engine else {}
        boxes, why = sshd.start_boxes(extra)
        if boxes is None:
            raise SystemExit(f"no throwaway sshd: {why}; pass --host")
        cleanups.append(boxes.stop)
        env["PATH"] = boxes.wrapper_dir + os.pathsep + env["PATH"]
        os.environ["PATH"] = env["PATH"]
        host, box = "runplz-near", boxes.near
        boxes.ssh(host, "true")  # learn the host key
    env["RUNPLZ_CACHE_DIR"] = tempfile.mkdtemp(prefix="runplz-bench-cache-")
    state = env["RUNPLZ_STATE_DIR"] = tempfile.mkdtemp(prefix="runplz-bench-state-")
    runplz = os.path.join(BIN, "runplz")
    rows = []
    steps: dict[str, dict[str, float]] = {}
    floors: dict[str, dict[str, float]] = {}
    try:
        for mode in ("docker", "native"):
            if mode == "docker" and not docker_ok:
                rows.append((mode, "skipped: no Docker engine", "", "", "", "", ""))
                continue
            repo = make_repo(mode == "docker")
            argv = [runplz, "ssh", "--host", host, "noop.py"]
            timed(argv, env, repo)  # cold: image or venv, bundle, first upload
            times, cpus, connections, uploads = [], [], [], []
            per_step: dict[str, list[float]] = {}
            for _ in range(options.runs):
                before = box.accepted() if box else 0
                seconds, cpu, stderr, began, ended = timed(argv, env, repo)
                times.append(seconds)
                cpus.append(cpu)
                for name, value in phases_of(state, stderr, began, ended).items():
                    per_step.setdefault(name, []).append(value)
                if box:
                    connections.append(box.accepted() - before)
                match = re.search(r"uploaded ([\d.]+) (B|KB|MB)", stderr)
                uploads.append(float(match.group(1)) * {"B": 1, "KB": 1024, "MB": 1 << 20}[match.group(2)])
            job = "docker run --rm python:3.11-slim python3 -c pass" if mode == "docker" else "python3 -c pass"
            floors[mode] = floor(host, repo, job, options.runs)
            raw = floors[mode]["total"]
            steps[mode] = {name: statistics.median(values) for name, values in per_step.items()}
            steps[mode]["total"] = statistics.median(times)
            size = repo_size(repo)
            median = statistics.median(times)
            rows.append((
                mode,
                f"{median * 1000:.0f} ms",
                f"{raw * 1000:.0f} ms",
                f"{median / raw:.2f}x",
                str(max(connections)) if connections else "n/a",
                f"{statistics.median(cpus) * 1000:.0f} ms",
                f"{statistics.median(uploads):.0f} B of {size / 1024:.0f} KB ({100 * statistics.median(uploads) / size:.2f}%)",
            ))
            shutil.rmtree(repo, ignore_errors=True)
        checks = upload_check_cost(host, options.runs)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
        shutil.rmtree(state, ignore_errors=True)
    header = ("mode", "warm run", "raw floor", "vs floor", "connections/run", "driver CPU", "unchanged re-upload")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print(f"\n{options.runs} runs each over loopback ssh; goals: native <= 1.3x the floor, 1 connection, "
          "upload <= 1% of the repo")
    print_steps(steps, floors)
    print("\nThe exact upload check (unchanged re-upload, fresh connections, medians):\n")
    print("| repo | size+time (quick check) | content (-c, what runplz does) | cost |")
    print("|---|---|---|---|")
    for row in checks:
        print("| " + " | ".join(row) + " |")


def print_steps(steps: dict[str, dict[str, float]], floors: dict[str, dict[str, float]]) -> None:
    """Where a warm run's time goes (medians per step), beside the floor's steps."""
    modes = [mode for mode in ("native", "docker") if mode in steps]
    if not modes:
        return
    print("\nWhere the time goes (medians of each step, ms; a column's steps need not add up to its total):\n")
    print("| step | " + " | ".join(f"{mode} run" for mode in modes) + " |")
    print("|---|" + "---|" * len(modes))
    for label, key in ROWS + (("**total**", "total"),):
        cells = [f"{steps[mode].get(key, 0.0) * 1000:.0f}" for mode in modes]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| floor step | " + " | ".join(f"{mode} floor" for mode in modes) + " |")
    print("|---|" + "---|" * len(modes))
    for key in ("rsync up", "ssh (the job)", "rsync down", "total"):
        label = "**total**" if key == "total" else key
        print(f"| {label} | " + " | ".join(f"{floors[mode][key] * 1000:.0f}" for mode in modes) + " |")


if __name__ == "__main__":
    main()
