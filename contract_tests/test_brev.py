"""Brev contract: the CLI adapter over the emulator of the real `brev` (real
subprocesses; real sshd boxes where marked) and the in-memory fake."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from runplz.adapters.brev_cli import BrevCli
from runplz.adapters.fake_brev import BrevFaults, FakeBrev
from runplz.adapters.fake_clock import FakeClock
from runplz.adapters.ssh_transport import SshTransport
from runplz.adapters.subprocess_runner import SubprocessRunner
from runplz.adapters.system_clock import SystemClock
from runplz.adapters.fake_runner import FakeCommandRunner
from runplz.domain.brev_instances import BadListing, BrevCommandError, BrevNotInstalled
from runplz.domain.errors import ConfigError
from runplz.domain.offers import BadOffer
from runplz.domain.picker import Requirements
from runplz.domain.host import parse_target
from runplz.ports.catalog import SearchQuery
from testsupport.brev_catalog import CATALOG
from testsupport.brev_emu import BrevEmulator
from testsupport.brev_emu_boxes import MARKER

from .suites.brev import AbstractCatalogTests, AbstractInstancesTests, BrevFixtures


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    emu = BrevEmulator.make(tmp_path / "brev", CATALOG)
    monkeypatch.setenv("PATH", emu.bin_dir + os.pathsep + os.environ.get("PATH", ""))
    yield emu
    emu.shutdown()


class EmulatedCliFixtures(BrevFixtures):
    @pytest.fixture
    def make_brev(self, emulator, clock):
        def make(faults: BrevFaults) -> BrevCli:
            emulator.set_faults(faults)
            return BrevCli(SubprocessRunner(), clock)

        return make

    @pytest.fixture
    def calls(self, emulator):
        return lambda brev, verb: emulator.count(verb)

    @pytest.fixture
    def created(self, emulator):
        def created(brev, name):
            box = emulator.instances()[name]
            return {key: box[key] for key in ("instance_type", "mode", "container_image")} | {
                "min_disk": box["min_disk"]
            }

        return created


class FakeFixtures(BrevFixtures):
    @pytest.fixture
    def make_brev(self, clock):
        return lambda faults: FakeBrev(self.catalog, faults=faults, clock=clock)

    @pytest.fixture
    def calls(self):
        return lambda brev, verb: sum(call[0] == verb for call in brev.calls)

    @pytest.fixture
    def created(self):
        def created(brev, name):
            box = brev.boxes[name]
            return {"instance_type": box.instance_type, "mode": box.mode,
                    "container_image": box.container_image, "min_disk": box.min_disk_gb}

        return created


class TestBrevCliCatalog(AbstractCatalogTests, EmulatedCliFixtures):
    pass


class TestBrevCliInstances(AbstractInstancesTests, EmulatedCliFixtures):
    pass


class TestFakeBrevCatalog(AbstractCatalogTests, FakeFixtures):
    pass


class TestFakeBrevInstances(AbstractInstancesTests, FakeFixtures):
    pass


# ---------------------------------------------------------------- the adapter alone


def test_a_create_delete_cycle_makes_one_call_each(emulator, clock):
    brev = BrevCli(SubprocessRunner(), clock)
    pick = brev.search(SearchQuery(gpu_name="A10", min_vram_gb=24))
    brev.create("cycle", [offer.type for offer in pick[:3]], mode="vm", min_disk=100)
    brev.wait_usable("cycle", 60)
    brev.refresh()
    brev.delete("cycle")
    counts = {verb: emulator.count(verb) for verb in ("search --help", "search", "create", "refresh", "delete")}
    assert counts == {"search --help": 1, "search": 1, "create": 1, "refresh": 1, "delete": 1}
    assert emulator.count("ls") == 1
    assert all(call["analytics"] == "1" and not call["tty"] for call in emulator.calls())


def test_argv_follows_the_real_cli(emulator, clock):
    brev = BrevCli(SubprocessRunner(), clock)
    brev.search(SearchQuery(gpu_name="A10", min_vram_gb=24, min_vcpus=8, min_ram_gb=31.5, min_disk_gb=100,
                            stoppable=True))
    brev.search(SearchQuery(gpu=False, min_vcpus=4))
    brev.create("argv", ["g5.xlarge", "g5.2xlarge"], mode="container", container_image="python:3.11-slim",
                min_disk=99.2)
    brev.stop("argv")
    assert emulator.argvs() == [
        ["search", "--help"],
        ["search", "gpu", "--json", "--gpu-name", "A10", "--min-vram", "24", "--min-vcpu", "8",
         "--min-ram", "31.5", "--min-disk", "100", "--stoppable"],
        ["search", "cpu", "--json", "--min-vcpu", "4"],
        ["create", "argv", "--type", "g5.xlarge,g5.2xlarge", "--min-disk", "100", "--mode", "container",
         "--container-image", "python:3.11-slim"],
        ["stop", "argv"],
    ]


def test_an_update_banner_before_the_json_is_skipped(emulator, clock):
    emulator.set_faults(BrevFaults(update_banner=True))
    brev = BrevCli(SubprocessRunner(), clock)
    assert len(brev.search(SearchQuery(gpu=False))) == 3
    assert brev.list() == ()


def test_a_missing_cli_gives_an_install_hint(tmp_path, monkeypatch, clock):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrevNotInstalled) as caught:
        BrevCli(SubprocessRunner(), clock).search(SearchQuery())
    message = str(caught.value)
    assert "\n" not in message and "install the Brev CLI" in message and "brevdev/homebrew-brev/brev" in message


def _marked(marker: str) -> list[int]:
    tag = f"{MARKER}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if tag in handle.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.real
def test_instances_are_real_boxes(tmp_path, ssh_boxes, monkeypatch):
    emu = BrevEmulator.make(tmp_path / "brev", CATALOG, boxes=ssh_boxes)
    monkeypatch.setenv("PATH", emu.bin_dir + os.pathsep + os.environ["PATH"])
    brev = BrevCli(SubprocessRunner(), SystemClock())
    folder = f"brev-emu-{uuid.uuid4().hex[:8]}"
    try:
        brev.create("emu-real", ["g5.xlarge"], mode="container", container_image="python:3.11-slim")
        brev.wait_usable("emu-real", 30)
        assert ssh_boxes.ssh("emu-real", "true").returncode != 0  # no alias before refresh
        brev.refresh()
        for alias in ("emu-real", "emu-real-host"):
            result = ssh_boxes.ssh(alias, "whoami")
            assert (result.returncode, result.stdout.strip()) == (0, "runplz"), result.stderr
        (tmp_path / "payload.txt").write_text("over rsync")
        sent = subprocess.run(["rsync", "-a", "--mkpath", str(tmp_path / "payload.txt"), f"emu-real:{folder}/"],
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        transport = SshTransport(SubprocessRunner(), SystemClock(), parse_target("emu-real"))
        transport.connect(wait=30)
        assert transport.run(["cat", f"{folder}/payload.txt"]).stdout == "over rsync"
        transport.run(["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 </dev/null &"])
        transport.close()
        marker = emu.instances()["emu-real"]["marker"]
        assert _marked(marker)

        brev.stop("emu-real")
        assert ssh_boxes.ssh("emu-real", "true").returncode == 255
        assert _marked(marker) == []  # a stopped box runs nothing
        brev.start("emu-real")
        brev.wait_usable("emu-real", 30)
        brev.refresh()
        assert ssh_boxes.ssh("emu-real", "cat", f"{folder}/payload.txt").stdout == "over rsync"

        brev.delete("emu-real")
        assert ssh_boxes.ssh("emu-real", "true").returncode == 255
        assert brev.list() == ()
    finally:
        emu.shutdown()
        ssh_boxes.ssh("runplz-near", "rm", "-rf", folder)


TRANSIENT = [
    "context deadline exceeded", "rpc error: code = Unavailable", "read: connection reset by peer",
    "dial tcp: connection refused", "i/o timeout", "Temporary failure in name resolution",
    "503 Service Unavailable", "502 Bad Gateway", "504 Gateway Timeout", "unexpected EOF",
    "server returned 500",
]
FINAL = [
    "unauthorized", "rpc error: code = Unauthenticated desc = Unauthorized", "status 401", "HTTP 403",
    "quota exceeded", "provider not enabled", "provider is not configured",
    "cloudCredId or workspaceGroupId must be specified", "instance type not found",
]


@pytest.mark.parametrize("words", TRANSIENT)
def test_transient_words_are_retried(emulator, clock, words):
    emulator.set_faults(BrevFaults(transient={"ls": 2}, transient_words=words))
    assert BrevCli(SubprocessRunner(), clock).list() == ()
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("words", FINAL)
def test_other_words_fail_at_once(emulator, clock, words):
    emulator.set_faults(BrevFaults(transient={"ls": 1}, transient_words=words))
    with pytest.raises(BrevCommandError) as caught:
        BrevCli(SubprocessRunner(), clock).list()
    assert words in str(caught.value) and clock.sleeps == [] and emulator.count("ls") == 1


@pytest.mark.parametrize(
    "verb, stdout, error",
    [
        ("ls", "", BadListing), ("ls", "not json at all", BadListing), ("ls", '{"workspaces": 5}', BadListing),
        ("ls", '{"workspaces": [{"status": "RUNNING"}]}', BadListing), ("ls", "[1, 2]", BadListing),
        ("search", '{"type": "x"}', BadOffer), ("search", '[{"type": "x"}]', BadOffer),
        ("search", "[1", BadListing),
    ],
)
def test_unreadable_output_is_a_protocol_error(verb, stdout, error):
    def program(inv):
        if inv.argv[1:] == ("search", "--help"):
            return 0
        inv.out(stdout)
        return 0

    brev = BrevCli(FakeCommandRunner({"brev": program}), FakeClock())
    with pytest.raises(error):
        brev.list() if verb == "ls" else brev.search(SearchQuery())


def test_a_banner_and_nulls_in_a_listing_are_read():
    listing = 'brev v0.6.400 is out\n{"workspaces": [{"name": "a", "status": "STOPPED", "build_status": null}]}'
    runner = FakeCommandRunner({"brev": lambda inv: inv.out(listing if inv.argv[1] == "ls" else "") or 0})
    (box,) = BrevCli(runner, FakeClock()).list()
    assert (box.name, box.status, box.build_status, box.usable) == ("a", "STOPPED", "", False)
    assert all(call.env == {"BREV_NO_ANALYTICS": "1"} for call in runner.calls)


def test_a_search_query_from_requirements():
    query = SearchQuery.for_requirements(
        Requirements(gpu_model="A100", gpu_count=2, min_vram_gb=80, min_vcpus=7.5, min_ram_gb=64, min_disk_gb=200),
        stoppable=True,
    )
    assert query == SearchQuery(min_vram_gb=80, min_vcpus=8, min_ram_gb=64, min_disk_gb=200, stoppable=True)
    assert SearchQuery.for_requirements(Requirements(min_vcpus=2)) == SearchQuery(gpu=False, min_vcpus=2)
    with pytest.raises(ConfigError):
        SearchQuery(gpu=False, gpu_name="T4")
