"""The `Catalog` and `Instances` contracts: the brev CLI adapter (over the emulator
of the real CLI) and the in-memory fake behave alike, faults included."""

from __future__ import annotations

import pytest

from runplz.adapters.fake_brev import BrevFaults
from runplz.domain.brev_instances import (
    BadInstanceName,
    BrevCommandError,
    BrevTooOld,
    InstanceFailed,
    InstanceMissing,
    InstanceNotReady,
)
from runplz.domain.errors import ConfigError
from runplz.ports.catalog import Catalog, SearchQuery
from runplz.ports.instances import Instances
from testsupport.brev_catalog import CATALOG

GPU_TYPES = {
    "g5.xlarge", "g5.2xlarge", "n1-highmem-4:nvidia-tesla-t4:1", "lambda_A10_1x",
    "a2-highgpu-1g:nvidia-tesla-a100:1", "hyperstack_A100x2", "gpu-h100-sxm.1gpu-16vcpu-200gb",
}
IMAGE = "python:3.11-slim"


class BrevFixtures:
    """Provide ``make_brev(faults)`` (one object serving both ports, retrying and
    waiting on the ``clock`` fixture, a FakeClock), ``calls(brev, verb)`` (how many
    CLI calls of a verb were made; "search --help" apart) and ``created(brev, name)``
    (what a create recorded: instance_type, mode, container_image, min_disk)."""

    catalog = CATALOG

    @pytest.fixture
    def make_brev(self, clock):
        raise NotImplementedError

    @pytest.fixture
    def calls(self):
        raise NotImplementedError

    @pytest.fixture
    def created(self):
        raise NotImplementedError

    @pytest.fixture
    def brev(self, make_brev):
        return make_brev(BrevFaults())


def _types(offers) -> list[str]:
    return [offer.type for offer in offers]


class AbstractCatalogTests:
    def test_is_a_catalog(self, brev):
        assert isinstance(brev, Catalog)

    def test_search_lists_nvidia_gpu_types_cheapest_first(self, brev):
        offers = brev.search(SearchQuery())
        assert set(_types(offers)) == GPU_TYPES  # no AMD, no unpriced row, no CPU type
        prices = [offer.price_per_hour for offer in offers]
        assert prices == sorted(prices)

    def test_gpu_name_is_a_case_insensitive_substring(self, brev):
        offers = brev.search(SearchQuery(gpu_name="a10"))
        assert {offer.gpu_name for offer in offers} == {"A10", "A10G", "A100"}

    @pytest.mark.parametrize(
        "query, expected",
        [
            (SearchQuery(min_vram_gb=40), {"a2-highgpu-1g:nvidia-tesla-a100:1", "hyperstack_A100x2",
                                           "gpu-h100-sxm.1gpu-16vcpu-200gb"}),
            (SearchQuery(min_vcpus=16), {"lambda_A10_1x", "hyperstack_A100x2", "gpu-h100-sxm.1gpu-16vcpu-200gb"}),
            (SearchQuery(min_ram_gb=200), {"lambda_A10_1x", "hyperstack_A100x2", "gpu-h100-sxm.1gpu-16vcpu-200gb"}),
            (SearchQuery(min_disk_gb=1000), {"n1-highmem-4:nvidia-tesla-t4:1", "lambda_A10_1x",
                                             "a2-highgpu-1g:nvidia-tesla-a100:1"}),
            (SearchQuery(stoppable=True), GPU_TYPES - {"lambda_A10_1x", "hyperstack_A100x2"}),
            (SearchQuery(gpu_name="A100", min_vram_gb=80), {"hyperstack_A100x2"}),
        ],
    )
    def test_floors_are_inclusive(self, brev, query, expected):
        assert set(_types(brev.search(query))) == expected

    def test_there_is_no_gpu_count_filter(self, brev):
        counts = {offer.gpu_count for offer in brev.search(SearchQuery(gpu_name="A100"))}
        assert counts == {1, 2}

    def test_cpu_search_lists_cpu_only_types(self, brev):
        offers = brev.search(SearchQuery(gpu=False))
        assert _types(offers) == ["cpu-2x8-nostop", "cpu-4x16", "cpu-16x64"]
        assert all(offer.gpu_count == 0 for offer in offers)
        assert _types(brev.search(SearchQuery(gpu=False, min_vcpus=8, stoppable=True))) == ["cpu-16x64"]

    def test_nothing_matching_is_empty(self, brev):
        assert brev.search(SearchQuery(gpu_name="B200")) == ()

    def test_transient_errors_are_retried(self, make_brev, calls, clock):
        brev = make_brev(BrevFaults(transient={"search": 2}))
        assert set(_types(brev.search(SearchQuery()))) == GPU_TYPES
        assert clock.sleeps == [1.0, 2.0]
        assert calls(brev, "search") == 3

    def test_final_errors_fail_at_once_in_the_clis_words(self, make_brev, calls, clock):
        brev = make_brev(BrevFaults(unauthorized=True))
        with pytest.raises(BrevCommandError, match="unauthorized") as caught:
            brev.search(SearchQuery())
        assert not caught.value.transient
        assert clock.sleeps == [] and calls(brev, "search") == 1

    def test_an_old_cli_says_upgrade(self, make_brev):
        brev = make_brev(BrevFaults(old_cli=True))
        with pytest.raises(BrevTooOld, match="upgrade brev"):
            brev.search(SearchQuery())


class AbstractInstancesTests:
    def test_is_instances(self, brev):
        assert isinstance(brev, Instances)

    def test_no_boxes_is_empty(self, brev):
        assert brev.list() == ()

    def test_create_then_usable(self, brev, created):
        types = ["g5.xlarge", "n1-highmem-4:nvidia-tesla-t4:1"]
        brev.create("job-1", types, mode="container", container_image=IMAGE, min_disk=99.5)
        box = brev.wait_usable("job-1", 60)
        assert (box.name, box.instance_type, box.usable, box.failed) == ("job-1", "g5.xlarge", True, False)
        assert created(brev, "job-1") == {
            "instance_type": "g5.xlarge", "mode": "container", "container_image": IMAGE, "min_disk": 100,
        }
        assert [b.name for b in brev.list()] == ["job-1"]

    def test_a_type_without_capacity_falls_through_to_the_next(self, make_brev, calls):
        brev = make_brev(BrevFaults(no_capacity=("g5.xlarge",)))
        brev.create("job-2", ["g5.xlarge", "g5.2xlarge"])
        assert brev.wait_usable("job-2", 60).instance_type == "g5.2xlarge"
        assert calls(brev, "create") == 1

    def test_no_capacity_for_any_type(self, make_brev):
        brev = make_brev(BrevFaults(no_capacity=("g5.xlarge", "g5.2xlarge")))
        with pytest.raises(BrevCommandError, match="no capacity"):
            brev.create("job-3", ["g5.xlarge", "g5.2xlarge"])
        assert brev.list() == ()

    def test_an_existing_name_is_refused(self, brev):
        brev.create("twice", ["g5.xlarge"])
        with pytest.raises(BrevCommandError, match="twice"):
            brev.create("twice", ["g5.2xlarge"])
        assert [b.instance_type for b in brev.list()] == ["g5.xlarge"]

    def test_a_create_that_ends_failed_is_detected(self, make_brev):
        brev = make_brev(BrevFaults(create_fails=True, boot_polls=1))
        brev.create("doomed", ["g5.xlarge"])
        with pytest.raises(InstanceFailed, match="doomed"):
            brev.wait_usable("doomed", 600)
        assert [b.failed for b in brev.list()] == [True]

    def test_a_slow_boot_is_waited_out_with_backoff(self, make_brev, clock):
        brev = make_brev(BrevFaults(boot_polls=3))
        brev.create("slow", ["g5.xlarge"])
        assert brev.wait_usable("slow", 600).usable
        assert clock.sleeps == [2.0, 4.0, 8.0]

    def test_a_boot_past_the_wait_is_not_ready(self, make_brev, clock):
        brev = make_brev(BrevFaults(boot_polls=10))
        brev.create("slower", ["g5.xlarge"])
        with pytest.raises(InstanceNotReady, match="DEPLOYING"):
            brev.wait_usable("slower", 10)
        assert clock.monotonic() == 10

    def test_a_create_that_made_nothing_is_missing(self, make_brev):
        brev = make_brev(BrevFaults(create_does_nothing=True))
        brev.create("ghost", ["g5.xlarge"])
        with pytest.raises(InstanceMissing, match="ghost"):
            brev.wait_usable("ghost", 600)

    def test_transient_errors_run_out(self, make_brev, calls, clock):
        brev = make_brev(BrevFaults(transient={"ls": 4}))
        with pytest.raises(BrevCommandError, match="rpc error") as caught:
            brev.list()
        assert caught.value.transient and clock.sleeps == [1.0, 2.0, 4.0] and calls(brev, "ls") == 4

    def test_a_lost_create_reply_is_not_doubled(self, make_brev, calls):
        brev = make_brev(BrevFaults(lost_create_replies=1))
        brev.create("once", ["g5.xlarge"])
        assert brev.wait_usable("once", 60).usable
        assert calls(brev, "create") == 1

    def test_final_errors_fail_at_once(self, make_brev, calls, clock):
        brev = make_brev(BrevFaults(unauthorized=True))
        with pytest.raises(BrevCommandError, match="unauthorized"):
            brev.create("job", ["g5.xlarge"])
        with pytest.raises(BrevCommandError, match="unauthorized"):
            brev.wait_usable("job", 600)
        assert clock.sleeps == [] and calls(brev, "create") == 1

    def test_stop_then_start(self, brev):
        brev.create("pausable", ["g5.xlarge"])
        brev.wait_usable("pausable", 60)
        brev.stop("pausable")
        (box,) = brev.list()
        assert (box.status, box.usable) == ("STOPPED", False)
        brev.start("pausable")
        assert brev.wait_usable("pausable", 60).usable

    def test_stop_is_refused_for_a_type_that_cannot_stop(self, brev, calls, clock):
        brev.create("nostop", ["lambda_A10_1x"])
        brev.wait_usable("nostop", 60)
        with pytest.raises(BrevCommandError, match="cannot be stopped"):
            brev.stop("nostop")
        assert brev.list()[0].usable and calls(brev, "stop") == 1 and clock.sleeps == []

    def test_delete(self, brev):
        brev.create("gone", ["g5.xlarge"])
        brev.refresh()
        brev.delete("gone")
        assert brev.list() == ()
        with pytest.raises(BrevCommandError, match="gone"):
            brev.delete("gone")

    @pytest.mark.parametrize("verb", ["start", "stop", "delete"])
    def test_unknown_names(self, brev, verb):
        with pytest.raises(BrevCommandError, match="nope"):
            getattr(brev, verb)("nope")

    @pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a/b", "a;b", "é", "x" * 64, "a\n"])
    def test_bad_names_are_refused_before_any_call(self, brev, calls, name):
        for act in (
            lambda: brev.create(name, ["g5.xlarge"]), lambda: brev.start(name), lambda: brev.stop(name),
            lambda: brev.delete(name), lambda: brev.wait_usable(name, 1),
        ):
            with pytest.raises(BadInstanceName):
                act()
        assert sum(calls(brev, verb) for verb in ("search --help", "create", "start", "stop", "delete", "ls")) == 0

    def test_good_names(self, brev):
        for name in ("a", "A.b_c-9", "x" * 63):
            brev.create(name, ["cpu-4x16"])
        assert {b.name for b in brev.list()} == {"a", "A.b_c-9", "x" * 63}

    @pytest.mark.parametrize(
        "types, options",
        [
            ([], {}), ("g5.xlarge", {}), (["g5.xlarge,g5.2xlarge"], {}), ([""], {}),
            (["g5.xlarge"], {"mode": "k8s"}), (["g5.xlarge"], {"container_image": IMAGE}),
            (["g5.xlarge"], {"mode": "vm", "container_image": IMAGE}), (["g5.xlarge"], {"min_disk": 0}),
        ],
    )
    def test_bad_create_arguments_are_refused_before_any_call(self, brev, calls, types, options):
        with pytest.raises(ConfigError):
            brev.create("job", types, **options)
        assert calls(brev, "create") == 0

    def test_an_old_cli_is_found_before_anything_is_created(self, make_brev, calls):
        brev = make_brev(BrevFaults(old_cli=True))
        with pytest.raises(BrevTooOld, match="upgrade brev"):
            brev.create("job", ["g5.xlarge"])
        with pytest.raises(BrevTooOld):
            brev.list()
        assert calls(brev, "create") == 0
