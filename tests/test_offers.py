import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runplz.domain.errors import ProtocolError, RunplzError
from runplz.domain.offers import BadOffer, Offer, offer_from_row, offers_from_rows

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The shape `brev search --json` prints (brev-cli.md): every key, as the CLI spells it.
H100_ROW = {
    "type": "hyperstack_H100x8_NVLINK",
    "cloud": "hyperstack",
    "provider": "shadeform",
    "gpu_name": "H100",
    "gpu_count": 8,
    "vram_per_gpu_gb": 80,
    "total_vram_gb": 640,
    "capability": 9,
    "vcpus": 192,
    "memory": "1800GiB",
    "ram_gb": 1800,
    "arch": "x86_64",
    "disk_min_gb": 100,
    "disk_max_gb": 16000,
    "disk_price_per_gb_mo": 0.1,
    "boot_time_seconds": 420,
    "stoppable": False,
    "rebootable": True,
    "flex_ports": False,
    "target_disk_gb": 100,
    "price_per_hour": 23.92,
}
# A fixed-disk AWS type: the zero-valued keys are omitted, boot time unknown (0).
G5_ROW = {
    "type": "g5.xlarge",
    "cloud": "aws",
    "provider": "aws",
    "gpu_name": "A10G",
    "gpu_count": 1,
    "vram_per_gpu_gb": 24,
    "total_vram_gb": 24,
    "capability": 8.6,
    "vcpus": 4,
    "memory": "16GiB",
    "ram_gb": 16,
    "arch": "x86_64",
    "disk_min_gb": 250,
    "disk_max_gb": 250,
    "boot_time_seconds": 0,
    "stoppable": True,
    "rebootable": True,
    "flex_ports": True,
    "price_per_hour": 1.21,
}
# CPU-only rows print gpu_name "-" and zero GPUs.
CPU_ROW = {
    **G5_ROW,
    "type": "n2-standard-8",
    "cloud": "gcp",
    "provider": "gcp",
    "gpu_name": "-",
    "gpu_count": 0,
    "vram_per_gpu_gb": 0,
    "total_vram_gb": 0,
    "capability": 0,
    "vcpus": 8,
    "memory": "32GiB",
    "ram_gb": 32,
    "price_per_hour": 0.39,
}


def _row(base=G5_ROW, **changes):
    row = dict(base)
    for key, value in changes.items():
        if value is ...:
            row.pop(key, None)
        else:
            row[key] = value
    return row


# ---------------------------------------------------------------- one row


def test_reads_a_full_row():
    assert offer_from_row(H100_ROW) == Offer(
        type="hyperstack_H100x8_NVLINK",
        provider="shadeform",
        gpu_name="H100",
        gpu_count=8,
        vram_per_gpu_gb=80.0,
        vcpus=192,
        ram_gb=1800.0,
        disk_min_gb=100.0,
        disk_max_gb=16000.0,
        boot_time_seconds=420,
        stoppable=False,
        price_per_hour=23.92,
    )


def test_reads_a_row_without_the_omitted_keys_and_an_unknown_boot():
    offer = offer_from_row(G5_ROW)
    assert "disk_price_per_gb_mo" not in G5_ROW and "target_disk_gb" not in G5_ROW
    assert offer.boot_time_seconds is None  # 0 means unknown
    assert (offer.disk_min_gb, offer.disk_max_gb, offer.stoppable) == (250.0, 250.0, True)
    assert offer_from_row(_row(boot_time_seconds=...)).boot_time_seconds is None


def test_reads_a_cpu_only_row():
    offer = offer_from_row(CPU_ROW)
    assert (offer.gpu_count, offer.gpu_name, offer.vram_per_gpu_gb) == (0, "-", 0.0)


def test_ram_comes_from_ram_gb_not_the_memory_string():
    assert offer_from_row(_row(memory="999GiB", ram_gb=16)).ram_gb == 16.0
    assert offer_from_row(_row(memory="not a size", ram_gb=16)).ram_gb == 16.0


def test_a_row_without_ram_gb_reads_the_memory_string():
    assert offer_from_row(_row(ram_gb=..., memory="22GiB512MiB")).ram_gb == 22.5
    assert offer_from_row(_row(ram_gb=..., memory="2TiB")).ram_gb == 2048.0


def test_the_type_is_kept_as_an_opaque_token():
    offer = offer_from_row(_row(type="n1-highmem-4:nvidia-tesla-t4:1", gpu_name="T4", vram_per_gpu_gb=16))
    assert offer.type == "n1-highmem-4:nvidia-tesla-t4:1"
    assert (offer.gpu_name, offer.gpu_count) == ("T4", 1)  # from the fields, not the name


def test_whole_floats_are_counts():
    assert offer_from_row(_row(gpu_count=8.0, vcpus=4.0, boot_time_seconds=60.0)).gpu_count == 8


def test_missing_disk_bounds_read_as_unknown():
    offer = offer_from_row(_row(disk_min_gb=..., disk_max_gb=...))
    assert (offer.disk_min_gb, offer.disk_max_gb) == (0.0, 0.0)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"type": ...}, "type"),
        ({"type": "  "}, "type"),
        ({"type": 7}, "type"),
        ({"provider": None}, "provider"),
        ({"gpu_name": ...}, "gpu_name"),
        ({"gpu_count": True}, "gpu_count"),
        ({"gpu_count": -1}, "gpu_count"),
        ({"gpu_count": 1.5}, "gpu_count"),
        ({"gpu_count": "1"}, "gpu_count"),
        ({"vram_per_gpu_gb": "24GiB"}, "vram_per_gpu_gb"),
        ({"vram_per_gpu_gb": math.nan}, "vram_per_gpu_gb"),
        ({"vcpus": ...}, "vcpus"),
        ({"ram_gb": -4}, "ram_gb"),
        ({"ram_gb": ..., "memory": ...}, "ram_gb"),
        ({"disk_min_gb": "100"}, "disk_min_gb"),
        ({"disk_min_gb": 500, "disk_max_gb": 100}, "disk_max_gb"),
        ({"boot_time_seconds": -5}, "boot_time_seconds"),
        ({"boot_time_seconds": "7m0s"}, "boot_time_seconds"),
        ({"stoppable": ...}, "stoppable"),
        ({"stoppable": "yes"}, "stoppable"),
        ({"price_per_hour": ...}, "price_per_hour"),
        ({"price_per_hour": "1.21"}, "price_per_hour"),
        ({"price_per_hour": math.inf}, "price_per_hour"),
        ({"price_per_hour": 0}, "price_per_hour"),
    ],
)
def test_a_malformed_row_raises_naming_the_field_and_type(changes, field):
    row = _row(**changes)
    with pytest.raises(BadOffer) as caught:
        offer_from_row(row)
    assert isinstance(caught.value, ProtocolError) and isinstance(caught.value, RunplzError)
    message = str(caught.value)
    assert message.startswith("brev search row")
    assert f"{field} must be" in message
    if isinstance(row.get("type"), str) and row["type"].strip():
        assert repr(row["type"]) in message


@pytest.mark.parametrize("row", [None, [], "g5.xlarge", 3])
def test_a_row_that_is_not_an_object_raises(row):
    with pytest.raises(BadOffer, match="JSON object"):
        offer_from_row(row)


# ---------------------------------------------------------------- a listing


def test_one_offer_per_type_in_first_seen_order():
    rows = [G5_ROW, H100_ROW, dict(G5_ROW), CPU_ROW]
    assert [o.type for o in offers_from_rows(rows)] == ["g5.xlarge", "hyperstack_H100x8_NVLINK", "n2-standard-8"]


def test_a_type_listing_two_gpu_entries_is_dropped():
    mixed = [_row(type="mixed.box"), _row(type="mixed.box", gpu_name="T4", vram_per_gpu_gb=16)]
    assert offers_from_rows([*mixed, G5_ROW]) == (offer_from_row(G5_ROW),)
    # ... wherever the disagreeing rows sit, and however often the first repeats
    assert offers_from_rows([mixed[0], G5_ROW, mixed[1], mixed[0]]) == (offer_from_row(G5_ROW),)


def test_unpriced_rows_are_skipped():
    rows = [_row(type="free.box", price_per_hour=0), _row(type="free2.box", price_per_hour=0.0), G5_ROW]
    assert [o.type for o in offers_from_rows(rows)] == ["g5.xlarge"]


def test_an_empty_listing_is_no_offers():
    assert offers_from_rows([]) == ()


def test_a_malformed_row_in_a_listing_raises():
    with pytest.raises(BadOffer, match="vcpus"):
        offers_from_rows([G5_ROW, _row(type="x.box", vcpus="4")])


@pytest.mark.parametrize("listing", [{"workspaces": None}, "[]", b"[]"])
def test_a_listing_that_is_not_an_array_raises(listing):
    with pytest.raises(BadOffer, match="JSON array"):
        offers_from_rows(listing)


# ---------------------------------------------------------------- properties

_gb = st.integers(0, 4096).map(float)
_offers = st.builds(
    Offer,
    type=st.text(min_size=1, max_size=20).filter(str.strip),
    provider=st.text(max_size=10),
    gpu_name=st.text(max_size=10),
    gpu_count=st.integers(0, 16),
    vram_per_gpu_gb=_gb,
    vcpus=st.integers(0, 512),
    ram_gb=_gb,
    disk_min_gb=st.just(0.0),
    disk_max_gb=_gb,
    boot_time_seconds=st.none() | st.integers(1, 7200),
    stoppable=st.booleans(),
    price_per_hour=st.floats(0.001, 500, allow_nan=False),
)


def _as_row(offer: Offer) -> dict:
    return {
        "type": offer.type, "cloud": "c", "provider": offer.provider, "gpu_name": offer.gpu_name,
        "gpu_count": offer.gpu_count, "vram_per_gpu_gb": offer.vram_per_gpu_gb,
        "total_vram_gb": offer.vram_per_gpu_gb * offer.gpu_count, "capability": 0, "vcpus": offer.vcpus,
        "memory": f"{offer.ram_gb:g}GiB", "ram_gb": offer.ram_gb, "arch": "x86_64",
        "disk_min_gb": offer.disk_min_gb, "disk_max_gb": offer.disk_max_gb,
        "boot_time_seconds": offer.boot_time_seconds or 0, "stoppable": offer.stoppable,
        "rebootable": False, "flex_ports": False, "price_per_hour": offer.price_per_hour,
    }


@PROPS
@given(_offers)
def test_a_row_reads_back_as_the_offer_it_shows(offer):
    assert offer_from_row(_as_row(offer)) == offer


@PROPS
@given(st.lists(_offers, max_size=12), st.randoms())
def test_listing_keeps_each_consistent_type_once(offers, rng):
    rows = [_as_row(o) for o in offers]
    rows += [dict(row) for row in rows if rng.random() < 0.5]  # repeats
    rng.shuffle(rows)
    got = offers_from_rows(rows)
    by_type = {}
    for offer in offers:
        by_type.setdefault(offer.type, set()).add(offer)
    assert {o.type for o in got} == {t for t, seen in by_type.items() if len(seen) == 1}
    assert all(o in by_type[o.type] for o in got)
    assert len({o.type for o in got}) == len(got)
