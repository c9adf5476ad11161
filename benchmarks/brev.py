"""Brev CLI calls and ssh connections per ephemeral run (medians), over the emulator.

    python benchmarks/brev.py [--runs N] [--no-picker]

As root, it starts a throwaway sshd setup the way the tests do and the `brev`
emulator (testsupport/brev_emulator.py), whose instances are real sshd boxes;
then it runs `runplz brev noop.py` (ephemeral, vm mode, native) in a few
scenarios and counts, per run, the emulator's logged calls by verb and the
connections each box's sshd accepted. The goal: search 1, create 1, refresh 1,
delete 1, `ls` polls with backoff, and 1 ssh connection. At the end it prints
benchmarks/picker.py's figure (the picker over a 100k-row catalog).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VERBS = ("search --help", "search", "ls", "create", "refresh", "start", "stop", "delete")
SCENARIOS = (
    ("box boots at once", {}),
    ("slow boot (3 polls)", {"boot_polls": 3}),
    ("first type has no capacity", {"no_capacity": ("cpu-2x8-nostop",)}),
    ("transient ls error (1)", {"transient": {"ls": 1}}),
)


def make_repo() -> str:
    repo = tempfile.mkdtemp(prefix="runplz-bench-brev-")
    os.mkdir(os.path.join(repo, ".git"))
    with open(os.path.join(HERE, "noop.py")) as handle:
        source = handle.read()
    source = source.replace("from runplz import App, Image", "from runplz import App, BrevConfig, Image")
    source = source.replace(
        'App("bench-noop")', 'App("bench-noop", brev_config=BrevConfig(mode="vm", use_docker=False))'
    )
    with open(os.path.join(repo, "noop.py"), "w") as handle:
        handle.write(source)
    os.chmod(repo, 0o755)
    return repo


def accepted(emu, name: str) -> int:
    try:
        with open(os.path.join(emu.root, "boxes", f"{name}.log"), errors="replace") as handle:
            return sum("Accepted publickey" in line for line in handle)
    except FileNotFoundError:
        return 0


def one_run(emu, env: dict, repo: str) -> tuple[float, collections.Counter, int]:
    before = len(emu.argvs())
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "runplz", "brev", "noop.py"], cwd=repo, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"runplz brev failed:\n{done.stderr[-3000:]}")
    argvs = emu.argvs()[before:]
    counts = collections.Counter(
        "search --help" if argv[:1] == ["search"] and "--help" in argv else argv[0] for argv in argvs
    )
    names = [argv[1] for argv in argvs if argv[:1] == ["create"]]
    if emu.instances():
        raise SystemExit(f"boxes left behind: {sorted(emu.instances())}")
    return seconds, counts, sum(accepted(emu, name) for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-picker", action="store_true", help="skip benchmarks/picker.py's figure")
    options = parser.parse_args()
    sys.path.insert(0, ROOT)
    from runplz.adapters.fake_brev import BrevFaults
    from testsupport import sshd
    from testsupport.brev_catalog import CATALOG
    from testsupport.brev_emu import BrevEmulator

    boxes, why = sshd.start_boxes()
    if boxes is None:
        raise SystemExit(f"no throwaway sshd: {why}")
    work = tempfile.mkdtemp(prefix="runplz-bench-brev-state-")
    rows = []
    try:
        repo = make_repo()
        emu = BrevEmulator.make(os.path.join(work, "brev"), CATALOG, boxes=boxes)
        env = {
            **os.environ,
            "PATH": os.pathsep.join((emu.bin_dir, boxes.wrapper_dir, os.environ["PATH"])),
            "RUNPLZ_STATE_DIR": os.path.join(work, "state"),
            "RUNPLZ_CACHE_DIR": os.path.join(work, "cache"),
        }
        one_run(emu, env, repo)  # cold: bundle, venv on the box
        for label, faults in SCENARIOS:
            times, tallies, connections = [], [], []
            for _ in range(options.runs):
                emu.set_faults(BrevFaults(**faults))
                seconds, counts, accepted_ = one_run(emu, env, repo)
                times.append(seconds)
                tallies.append(counts)
                connections.append(accepted_)
            per_verb = [max(t[verb] for t in tallies) for verb in VERBS]
            rows.append((label, *[str(n) for n in per_verb], str(max(connections)),
                         f"{statistics.median(times) * 1000:.0f} ms"))
        emu.shutdown()
    finally:
        boxes.stop()
    header = ("scenario", *VERBS, "ssh conns", "warm run")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print(f"\nbrev calls per ephemeral `runplz brev noop.py` (the most in {options.runs} runs each), counted by "
          "the emulator; goals: search 1, create 1, refresh 1, delete 1, ls polls with backoff, 1 ssh connection")
    if not options.no_picker:
        print("\nThe picker (benchmarks/picker.py):\n", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "picker.py"), "--runs", "5"], check=False)


if __name__ == "__main__":
    main()
