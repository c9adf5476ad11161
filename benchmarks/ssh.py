"""Warm no-op runs over ssh against their raw floor (medians), per mode.

    python benchmarks/ssh.py [--host HOST] [--runs N]

Without --host, as root, it starts a throwaway sshd on 127.0.0.1 (and a
Docker engine for docker mode) the way the tests do, and can then count
connections from sshd's log. The floor is what a hand-written script needs:
rsync the repo up, one ssh that runs the job, rsync the outputs down, each on
a fresh connection.
"""

from __future__ import annotations

import argparse
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


def timed(argv, env, cwd) -> tuple[float, float, str]:
    cpu = child_cpu()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, child_cpu() - cpu, done.stderr


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


def floor(host: str, repo: str, job: str, runs: int) -> float:
    samples = []
    local_out = tempfile.mkdtemp(prefix="runplz-bench-floor-out-")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["rsync", "-a", "--delete", "--rsync-path=mkdir -p bench-floor && rsync",
                        f"{repo}/", f"{host}:bench-floor/"], check=True, capture_output=True)
        subprocess.run(["ssh", "-T", host, f"cd bench-floor && mkdir -p out && {job}"], check=True, capture_output=True)
        subprocess.run(["rsync", "-a", f"{host}:bench-floor/out/", f"{local_out}/"], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


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
        rows.append((label, f"{quick * 1000:.0f} ms", f"{exact * 1000:.0f} ms", f"+{(exact - quick) * 1000:.0f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="an ssh target you own (default: a throwaway loopback sshd, as root)")
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    sys.path.insert(0, ROOT)
    cleanups = []
    env = dict(os.environ)
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
    runplz = os.path.join(BIN, "runplz")
    rows = []
    try:
        for mode in ("docker", "native"):
            if mode == "docker" and not docker_ok:
                rows.append((mode, "skipped: no Docker engine", "", "", "", "", ""))
                continue
            repo = make_repo(mode == "docker")
            argv = [runplz, "ssh", "--host", host, "noop.py"]
            timed(argv, env, repo)  # cold: image or venv, bundle, first upload
            times, cpus, connections, uploads = [], [], [], []
            for _ in range(options.runs):
                before = box.accepted() if box else 0
                seconds, cpu, stderr = timed(argv, env, repo)
                times.append(seconds)
                cpus.append(cpu)
                if box:
                    connections.append(box.accepted() - before)
                match = re.search(r"uploaded ([\d.]+) (B|KB|MB)", stderr)
                uploads.append(float(match.group(1)) * {"B": 1, "KB": 1024, "MB": 1 << 20}[match.group(2)])
            job = "docker run --rm python:3.11-slim python3 -c pass" if mode == "docker" else "python3 -c pass"
            raw = floor(host, repo, job, options.runs)
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
    header = ("mode", "warm run", "raw floor", "vs floor", "connections/run", "driver CPU", "unchanged re-upload")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print(f"\n{options.runs} runs each over loopback ssh; goals: <= 1.5x the floor, 1 connection, upload <= 1% of the repo")
    print("\nThe exact upload check (unchanged re-upload, fresh connections, medians):\n")
    print("| repo | size+time (quick check) | content (-c, what runplz does) | cost |")
    print("|---|---|---|---|")
    for row in checks:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
