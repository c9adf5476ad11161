"""The Brev picker over a large synthetic catalog (medians).

    python benchmarks/picker.py [--rows N] [--runs N] [--seed N]

Builds `brev search --json`-shaped rows (fixed seed), reads them into offers
once, then times `pick` for a few typical specs. The goal is a pick in
<= 100 ms for a 100k-row catalog; reading the rows is shown for reference.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from runplz.domain.offers import offers_from_rows
from runplz.domain.picker import Requirements, pick

GOAL_MS = 100.0
GPUS = (("T4", 16), ("A10", 24), ("A10G", 24), ("L4", 24), ("L40S", 48), ("A100", 40),
        ("A100", 80), ("H100", 80), ("H200", 141), ("RTX4090", 24), ("V100", 16))
PROVIDERS = ("aws", "gcp", "shadeform", "lambda-labs", "nebius", "crusoe")

SPECS = {
    "1 x A100 >= 80 GB": Requirements(gpu_model="A100", gpu_count=1, min_vram_gb=80),
    "8 x H100, 64 vCPU, 200 GB disk": Requirements(
        gpu_model="H100", gpu_count=8, min_vcpus=64, min_disk_gb=200
    ),
    "any GPU >= 24 GB, 16 GB RAM": Requirements(gpu_count=1, min_vram_gb=24, min_ram_gb=16),
    "CPU-only, 4 vCPU, 8 GB": Requirements(min_vcpus=4, min_ram_gb=8),
    "worst: 1 x any GPU, every floor loose": Requirements(
        gpu_count=1, min_vram_gb=1, min_vcpus=1, min_ram_gb=1, min_disk_gb=1
    ),
}


def catalog(rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for index in range(rows):
        cpu_only = rng.random() < 0.15
        name, vram = ("-", 0) if cpu_only else rng.choice(GPUS)
        count = 0 if cpu_only else rng.choice((1, 1, 2, 4, 8))
        vcpus = rng.choice((2, 4, 8, 16, 32, 64, 128, 208))
        flexible = rng.random() < 0.5
        disk_min = rng.choice((0, 50, 100, 256, 512))
        out.append({
            "type": f"bench-{index:06d}", "cloud": "x", "provider": rng.choice(PROVIDERS),
            "gpu_name": name, "gpu_count": count, "vram_per_gpu_gb": vram,
            "total_vram_gb": vram * count, "capability": 8.0, "vcpus": vcpus,
            "memory": f"{vcpus * 4}GiB", "ram_gb": vcpus * 4, "arch": "x86_64",
            "disk_min_gb": disk_min, "disk_max_gb": disk_min * (40 if flexible else 1),
            "boot_time_seconds": rng.choice((0, 0, 60, 120, 300, 600, 900)),
            "stoppable": rng.random() < 0.5, "rebootable": True, "flex_ports": False,
            "price_per_hour": round(0.1 + rng.random() * (count or 0.2) * 3, 2),
        })
    return out


def timed(call, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=20260101)
    options = parser.parse_args()
    rows = catalog(options.rows, options.seed)
    offers = offers_from_rows(rows)
    table = [("read rows (reference)", f"{timed(lambda: offers_from_rows(rows), 3):.1f} ms", "", "")]
    worst = 0.0
    for label, req in SPECS.items():
        choice = pick(offers, req)
        median = timed(lambda: pick(offers, req), options.runs)
        worst = max(worst, median)
        table.append((f"pick: {label}", f"{median:.1f} ms", choice.choice.type, " ".join(choice.types[1:])))
    header = ("step", "median", "choice", "fallbacks")
    widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    verdict = "meets" if worst <= GOAL_MS else "MISSES"
    print(f"\n{len(offers)} offers from {options.rows} rows, seed {options.seed}, median of "
          f"{options.runs} runs; slowest pick {worst:.1f} ms {verdict} the goal (<= {GOAL_MS:.0f} ms)")
    if worst > GOAL_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
