"""`runplz --help` side by side with an argparse CLI of the same shape (medians).

    python benchmarks/help.py [--runs N]

The stand-in for "the original's argparse CLI" is written here, to a temporary
file: the same commands (local, ssh, brev, modal, plan <backend>, ps, status,
logs, down) with the same options and help texts, built with argparse the
usual way (every parser made, then the help printed). Each round runs both,
in turn, so load on the machine hits them alike; also timed: `runplz ssh
--help` against the stand-in's `ssh --help`, and plain `python -c pass`.

Bytecode is compiled first, as pip does when it installs runplz. The goal:
`runplz --help` takes at most 1.0 times the stand-in.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
GOAL = 1.0

ARGPARSE_CLI = r'''
import argparse

SCRIPT_HELP = "runplz's own options come before SCRIPT; everything after SCRIPT goes to the script's entrypoint."


def driver_options(parser):
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="Show only warnings and errors from runplz (the job's output still shows).")
    parser.add_argument("-v", "--verbose", action="store_true", help="Also show every command runplz runs.")
    parser.add_argument("--log-file", metavar="PATH",
                        help="Write the driver log here (default: the run's folder in runplz's state directory).")
    parser.add_argument("--no-log-file", action="store_true", help="Keep no driver log.")
    parser.add_argument("--detach", action="store_true",
                        help="Start the run in the background, print its id and return; "
                        "`runplz logs -f RUN` follows it, `runplz down RUN` stops it.")


def script(parser, plan=False):
    parser.add_argument("--outputs-dir", metavar="PATH", default="out",
                        help="Where files the function writes to $RUNPLZ_OUT come back to. (default: out)")
    if plan:
        parser.add_argument("--json", action="store_true", help="Print the plan as JSON (schema: docs/plan.md).")
    else:
        driver_options(parser)
    parser.add_argument("script", metavar="SCRIPT")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ENTRYPOINT ARGS")


def backends(commands, plan=False):
    local = commands.add_parser("local", help="Run SCRIPT on this machine, in Docker (default) or natively.")
    local.add_argument("--no-build", action="store_true", help="Reuse the last image built for the function.")
    local.add_argument("--native", action="store_true", help="No Docker: run in a cached venv on this machine.")
    script(local, plan)
    ssh = commands.add_parser("ssh", help="Run SCRIPT on a box you own, over ssh (Docker or a venv there).")
    ssh.add_argument("--host", required=True, metavar="[USER@]HOST[:PORT]",
                     help="Any ssh target: host, user@host:port, or a ~/.ssh/config alias.")
    script(ssh, plan)
    brev = commands.add_parser(
        "brev", help="Run SCRIPT on a Brev box: ephemeral (made and deleted per call) or --instance NAME.")
    brev.add_argument("--instance", metavar="NAME", help="Attach to this Brev box (default: ephemeral).")
    script(brev, plan)
    modal = commands.add_parser(
        "modal", help="Run SCRIPT on Modal (needs the modal package: pip install 'runplz[modal]').")
    script(modal, plan)


def parser():
    top = argparse.ArgumentParser(
        prog="runplz", description="Run one decorated Python function locally, over ssh, on Brev or on Modal.",
        epilog=SCRIPT_HELP)
    top.add_argument("--version", action="version", version="runplz 0.1.0")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    backends(commands)
    plan = commands.add_parser("plan", help="Show what `runplz <backend> SCRIPT ...` would do, doing none of it.")
    backends(plan.add_subparsers(dest="backend", metavar="BACKEND"), plan=True)
    ps = commands.add_parser("ps", help="List recent runs across backends, newest first, with their state.")
    ps.add_argument("-n", "--limit", type=int, default=30, metavar="N", help="Show the N newest runs. (default: 30)")
    status = commands.add_parser("status", help="Show RUN's phase, last event, exit code, runtime and cost.")
    status.add_argument("run", metavar="RUN", nargs="?", default="last")
    logs = commands.add_parser("logs", help="Print RUN's driver log: everything its run showed, with timestamps.")
    logs.add_argument("run", metavar="RUN", nargs="?", default="last")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="Keep printing until the run ends (or its driver is gone).")
    down = commands.add_parser("down", help="Stop RUN: its own job only, then the teardown it was due.")
    down.add_argument("run", metavar="RUN")
    return top


parser().parse_args()
'''


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env.pop("COLUMNS", None)
    return env


def once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}")
    return took


def side_by_side(pairs: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Medians; the commands take turns within each round."""
    for argv in pairs.values():
        once(argv, env)  # warm: bytecode, page cache
    samples: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(runs):
        for name, argv in pairs.items():
            samples[name].append(once(argv, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    import runplz

    compileall.compile_dir(os.path.dirname(runplz.__file__), quiet=1)
    folder = tempfile.mkdtemp(prefix="runplz-bench-help-")
    stand_in = os.path.join(folder, "argparse_cli.py")
    with open(stand_in, "w") as handle:
        handle.write(ARGPARSE_CLI)
    runplz_cli = os.path.join(BIN, "runplz")
    env = clean_env()
    times = side_by_side({
        "python -c pass": [sys.executable, "-c", "pass"],
        "runplz --help": [runplz_cli, "--help"],
        "argparse --help": [sys.executable, stand_in, "--help"],
        "runplz ssh --help": [runplz_cli, "ssh", "--help"],
        "argparse ssh --help": [sys.executable, stand_in, "ssh", "--help"],
    }, runs, env)
    os.unlink(stand_in)
    os.rmdir(folder)
    rows = [
        ("`runplz --help`", times["runplz --help"], times["argparse --help"]),
        ("`runplz ssh --help`", times["runplz ssh --help"], times["argparse ssh --help"]),
    ]
    print("| command | runplz | argparse stand-in | ratio | goal |")
    print("|---|---|---|---|---|")
    for label, ours, theirs in rows:
        print(f"| {label} | {ours * 1000:.1f} ms | {theirs * 1000:.1f} ms | {ours / theirs:.2f}x | <= {GOAL:.1f}x |")
    print(f"\n{runs} rounds, medians; `python -c pass`: {times['python -c pass'] * 1000:.1f} ms; "
          f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
