"""A small Brev catalog for the tests, as `brev search --json` rows (plus the
API's ``manufacturer`` the CLI filters on and hides). Types are opaque tokens."""

from __future__ import annotations


def _gpu(kind, provider, gpu, count, vram, vcpus, ram, price, *, stoppable=True, boot=0, disk=(100, 100), **more):
    row = {
        "type": kind, "cloud": provider, "provider": provider, "gpu_name": gpu, "gpu_count": count,
        "vram_per_gpu_gb": vram, "total_vram_gb": vram * count, "capability": 8.0, "vcpus": vcpus,
        "memory": f"{ram}GiB", "ram_gb": ram, "arch": "x86_64", "disk_min_gb": disk[0], "disk_max_gb": disk[1],
        "boot_time_seconds": boot, "stoppable": stoppable, "rebootable": True, "flex_ports": False,
        "price_per_hour": price,
    }
    row.update(more)
    return row


CATALOG = [
    _gpu("g5.xlarge", "aws", "A10G", 1, 24, 4, 16, 1.006, boot=300),
    _gpu("g5.2xlarge", "aws", "A10G", 1, 24, 8, 32, 1.212, boot=300),
    _gpu("n1-highmem-4:nvidia-tesla-t4:1", "gcp", "T4", 1, 16, 4, 26, 0.48, boot=180, disk=(10, 16000),
         disk_price_per_gb_mo=0.1),
    _gpu("lambda_A10_1x", "lambda", "A10", 1, 24, 30, 200, 0.75, stoppable=False, disk=(1400, 1400)),
    _gpu("a2-highgpu-1g:nvidia-tesla-a100:1", "gcp", "A100", 1, 40, 12, 85, 3.67, disk=(10, 16000)),
    _gpu("hyperstack_A100x2", "hyperstack", "A100", 2, 80, 62, 360, 3.5, stoppable=False, boot=600),
    _gpu("gpu-h100-sxm.1gpu-16vcpu-200gb", "nebius", "H100", 1, 80, 16, 200, 2.95, boot=420),
    _gpu("amd_mi300x_1x", "crusoe", "MI300X", 1, 192, 32, 256, 2.0, manufacturer="AMD"),
    _gpu("free-t4", "gcp", "T4", 1, 16, 4, 15, 0),
    _gpu("cpu-4x16", "aws", "", 0, 0, 4, 16, 0.12, boot=60),
    _gpu("cpu-16x64", "aws", "", 0, 0, 16, 64, 0.48, boot=60, disk=(50, 2000)),
    _gpu("cpu-2x8-nostop", "lambda", "", 0, 0, 2, 8, 0.05, stoppable=False),
]
