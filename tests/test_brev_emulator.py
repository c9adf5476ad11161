"""The brev emulator itself follows shared/spec/brev-cli.md in every output shape."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runplz.adapters.fake_brev import BrevFaults
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator

ROW_KEYS = [
    "type", "cloud", "provider", "gpu_name", "gpu_count", "vram_per_gpu_gb", "total_vram_gb", "capability",
    "vcpus", "memory", "ram_gb", "arch", "disk_min_gb", "disk_max_gb", "disk_price_per_gb_mo",
    "boot_time_seconds", "stoppable", "rebootable", "flex_ports", "target_disk_gb", "price_per_hour",
]
LS_KEYS = ["name", "id", "status", "build_status", "shell_status", "health_status", "instance_type",
           "instance_kind", "gpu"]


@pytest.fixture
def emu(tmp_path):
    emulator = BrevEmulator.make(tmp_path / "brev", CATALOG)
    yield emulator
    emulator.shutdown()


def brev(emu, *args, check=None):
    result = subprocess.run([emu.brev, *args], capture_output=True, text=True, timeout=60)
    if check is not None:
        assert result.returncode == check, result.stderr
    return result


def rows(emu, *args):
    return json.loads(brev(emu, "search", *args, "--json", check=0).stdout)


def test_search_row_shape(emu):
    found = {row["type"]: row for row in rows(emu, "gpu", "--min-disk", "500")}
    t4 = found["n1-highmem-4:nvidia-tesla-t4:1"]
    assert list(t4) == ROW_KEYS
    assert t4["target_disk_gb"] == 500  # flexible disk: the asked size
    assert found["lambda_A10_1x"]["target_disk_gb"] == 1400
    plain = {row["type"]: row for row in rows(emu)}["g5.xlarge"]
    assert list(plain) == [k for k in ROW_KEYS if k != "disk_price_per_gb_mo"]
    assert plain["memory"] == "16GiB" and plain["ram_gb"] == 16


def test_search_defaults_to_gpu_sorted_by_price_nvidia_only(emu):
    found = rows(emu)
    assert all(row["gpu_count"] > 0 for row in found)
    assert "amd_mi300x_1x" not in {row["type"] for row in found}
    assert [row["price_per_hour"] for row in found] == sorted(row["price_per_hour"] for row in found)
    assert found[0]["type"] == "free-t4"  # the CLI lists unpriced rows (price 0); runplz skips them


def test_gpu_name_is_a_case_insensitive_substring(emu):
    assert {row["gpu_name"] for row in rows(emu, "--gpu-name", "a10")} == {"A10", "A10G", "A100"}
    assert {row["gpu_name"] for row in rows(emu, "--gpu-name=A100")} == {"A100"}


def test_sort_and_desc(emu):
    by_boot = [row["boot_time_seconds"] for row in rows(emu, "--sort", "boot-time")]
    known = [b for b in by_boot if b]
    assert by_boot[: len(known)] == sorted(known) and not any(by_boot[len(known):])
    prices = [row["price_per_hour"] for row in rows(emu, "--desc")]
    assert prices == sorted(prices, reverse=True)


def test_cpu_search_and_empty_result(emu):
    assert {row["type"] for row in rows(emu, "cpu")} == {"cpu-4x16", "cpu-16x64", "cpu-2x8-nostop"}
    assert brev(emu, "search", "--gpu-name", "B200", "--json", check=0).stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args, words",
    [
        (["search", "--min-gpus", "2"], "unknown flag: --min-gpus"),
        (["search", "--min-vcpu", "4.5"], 'invalid argument "4.5" for "--min-vcpu"'),
        (["search", "--gpu-name"], "flag needs an argument: --gpu-name"),
        (["search", "tpu"], 'unknown command "tpu"'),
        (["exec", "box"], 'unknown command "exec"'),
        (["create", "x", "--type", "g5.xlarge", "--type2", "y"], "unknown flag: --type2"),
    ],
)
def test_errors_exit_1_with_words_on_stderr(emu, args, words):
    result = brev(emu, *args, check=1)
    assert words in result.stderr and result.stdout == ""


def test_help_and_the_old_cli(emu):
    assert brev(emu, "search", "--help", check=0).stdout.startswith("Usage:")
    emu.set_faults(BrevFaults(old_cli=True))
    assert 'unknown command "search"' in brev(emu, "search", "--help", check=1).stderr
    assert "unknown flag: --json" in brev(emu, "ls", "--json", check=1).stderr


def test_ls_is_null_when_empty_and_a_table_without_json(emu):
    assert json.loads(brev(emu, "ls", "--json", check=0).stdout) == {"workspaces": None}
    brev(emu, "create", "one", "--type", "g5.xlarge", check=0)
    (row,) = json.loads(brev(emu, "ls", "--json", check=0).stdout)["workspaces"]
    assert list(row) == LS_KEYS
    assert (row["status"], row["build_status"], row["shell_status"]) == ("RUNNING", "COMPLETED", "READY")
    table = brev(emu, "ls", check=0).stdout
    assert table.startswith("NAME") and "one" in table and not table.lstrip().startswith("{")


def test_piped_lifecycle_prints_only_names(emu):
    created = brev(emu, "create", "box", "--type", "g5.xlarge", "--mode", "container",
                   "--container-image", "python:3.11-slim", check=0)
    assert created.stdout == "box\n" and "box" in created.stderr
    assert brev(emu, "stop", "box", check=0).stdout == "box\n"
    assert brev(emu, "start", "box", check=0).stdout == "box\n"
    assert brev(emu, "delete", "box", check=0).stdout == "box\n"
    assert emu.instances() == {}


def test_create_rules(emu):
    assert "duplicate environment" in (brev(emu, "create", "a", "--type", "g5.xlarge", check=0) and
                                       brev(emu, "create", "a", "--type", "g5.xlarge", check=1)).stderr
    assert brev(emu, "create", "-bad", "--type", "g5.xlarge").returncode == 1
    assert "requires --mode container" in brev(emu, "create", "b", "--type", "g5.xlarge", "--container-image",
                                               "img", check=1).stderr
    assert brev(emu, "create", "c", check=0).stdout == "c\n"  # without --type: the CLI's own default
    box = emu.instances()["c"]
    assert (box["instance_type"], box["min_disk"]) == ("lambda_A10_1x", 500)  # cheapest with >= 20 GB VRAM


def test_fallback_and_failure_faults(emu):
    emu.set_faults(BrevFaults(no_capacity=("g5.xlarge",), create_fails=True, boot_polls=1))
    made = brev(emu, "create", "f", "--type", "g5.xlarge,g5.2xlarge", check=0)
    assert "g5.xlarge has no capacity" in made.stderr
    states = [json.loads(brev(emu, "ls", "--json", check=0).stdout)["workspaces"][0] for _ in range(2)]
    assert [(s["status"], s["build_status"]) for s in states] == [("DEPLOYING", "PENDING"),
                                                                   ("FAILURE", "CREATE_FAILED")]
    assert states[1]["instance_type"] == "g5.2xlarge"


def test_stop_of_a_type_that_cannot_stop(emu):
    brev(emu, "create", "ns", "--type", "lambda_A10_1x", check=0)
    assert "cannot be stopped" in brev(emu, "stop", "ns", check=1).stderr


def test_transient_and_auth_faults(emu):
    emu.set_faults(BrevFaults(transient={"ls": 1}))
    assert "rpc error" in brev(emu, "ls", "--json", check=1).stderr
    brev(emu, "ls", "--json", check=0)
    emu.set_faults(BrevFaults(unauthorized=True))
    assert "unauthorized" in brev(emu, "search", "--json", check=1).stderr


def test_refresh_writes_both_aliases_and_every_call_is_logged(emu):
    brev(emu, "create", "web", "--type", "cpu-4x16", check=0)
    brev(emu, "refresh", check=0)
    with open(emu.ssh_config) as handle:
        text = handle.read()
    assert "Host web\n" in text and "Host web-host\n" in text and "RequestTTY yes" in text
    assert emu.argvs() == [["create", "web", "--type", "cpu-4x16"], ["refresh"]]
    assert os.path.exists(emu.brev)
