import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runplz import Image
from runplz.domain.errors import ConfigError, UsageError
from runplz.domain.offers import Offer, offers_from_rows
from runplz.domain.picker import (
    NoMatch,
    Pick,
    Requirements,
    disk_gb,
    gpu_model,
    pick,
    requirements_of,
    split_gpu_name,
)
from runplz.domain.spec import function_spec

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE = Image.from_registry("python:3.11-slim")


def offer(type, gpu="A100", count=1, vram=80, vcpus=16, ram=128, disk=(100, 1000), boot=None, price=1.0):
    return Offer(
        type=type, provider="p", gpu_name=gpu if count else "-", gpu_count=count,
        vram_per_gpu_gb=float(vram if count else 0), vcpus=vcpus, ram_gb=float(ram),
        disk_min_gb=float(disk[0]), disk_max_gb=float(disk[1]), boot_time_seconds=boot,
        stoppable=True, price_per_hour=price,
    )


def gpus(model=None, count=1, **floors):
    return Requirements(gpu_model=model, gpu_count=count, **floors)


def spec(**kwargs):
    return function_spec("train", image=IMAGE, **kwargs)


# ---------------------------------------------------------------- GPU names


@pytest.mark.parametrize(
    "name, model",
    [
        ("A100", "A100"), ("a100", "A100"), ("NVIDIA A100", "A100"), ("nvidia-a100", "A100"),
        ("Tesla T4", "T4"), ("nvidia-tesla-t4", "T4"), ("NVIDIA Tesla V100", "V100"),
        ("A10G", "A10G"), ("RTX 4090", "RTX4090"), ("L40S", "L40S"), (" H100 ", "H100"),
        ("NVIDIA", "NVIDIA"),
    ],
)
def test_gpu_names_normalise_to_models(name, model):
    assert gpu_model(name) == model


@pytest.mark.parametrize(
    "name, split",
    [
        ("A100-80GB", ("A100", 80.0)), ("a100_40gb", ("A100", 40.0)), ("H100 80GiB", ("H100", 80.0)),
        ("NVIDIA A100-80GB", ("A100", 80.0)), ("A10G", ("A10G", None)), ("A100", ("A100", None)),
        ("80GB", ("80GB", None)),
    ],
)
def test_a_memory_suffix_is_a_floor_not_part_of_the_model(name, split):
    assert split_gpu_name(name) == split


# ---------------------------------------------------------------- requirements_of


def test_requirements_of_a_cpu_function():
    assert requirements_of(spec(min_cpu=4, min_memory=16, min_disk=50)) == Requirements(
        gpu_count=0, min_vcpus=4, min_ram_gb=16, min_disk_gb=50
    )


def test_requirements_of_a_gpu_function():
    assert requirements_of(spec(gpu="nvidia A100", num_gpus=8)) == gpus("A100", 8)


def test_a_gpu_suffix_and_min_gpu_memory_take_the_larger_floor():
    assert requirements_of(spec(gpu="A100-80GB")).min_vram_gb == 80
    assert requirements_of(spec(gpu="A100-80GB", min_gpu_memory=40)).min_vram_gb == 80
    assert requirements_of(spec(gpu="A100-40GB", min_gpu_memory=48)).min_vram_gb == 48


def test_min_gpu_memory_alone_asks_for_any_gpu():
    assert requirements_of(spec(min_gpu_memory=24, num_gpus=2)) == gpus(None, 2, min_vram_gb=24)


def test_requirements_refuse_a_gpu_floor_without_gpus():
    with pytest.raises(ConfigError):
        Requirements(gpu_model="A100")
    with pytest.raises(ConfigError):
        Requirements(min_vram_gb=24)
    with pytest.raises(ConfigError):
        Requirements(gpu_count=-1)


# ---------------------------------------------------------------- filters


A_FAMILY = [
    offer("a100.box", gpu="A100", price=0.5),
    offer("a10g.box", gpu="A10G", price=0.6),
    offer("a10.box", gpu="NVIDIA A10", vram=24, price=0.9),
]


@pytest.mark.parametrize("asked, chosen", [("A10", "a10.box"), ("A100", "a100.box"), ("a10g", "a10g.box")])
def test_the_gpu_model_matches_exactly(asked, chosen):
    choice = pick(A_FAMILY, requirements_of(spec(gpu=asked)))
    assert choice.types == (chosen,)


def test_the_gpu_count_matches_exactly():
    offers = [offer("x2", count=2, price=0.1), offer("x1", count=1, price=5.0), offer("x8", count=8, price=0.2)]
    assert pick(offers, gpus("A100", 1)).choice.type == "x1"
    assert pick(offers, gpus("A100", 8)).choice.type == "x8"


def test_a_cpu_function_takes_only_cpu_only_offers():
    offers = [offer("gpu.box", price=0.1), offer("cpu.box", count=0, price=0.5)]
    assert pick(offers, requirements_of(spec())).types == ("cpu.box",)


def test_floors_hold():
    offers = [
        offer("small.vram", vram=40, price=0.1),
        offer("few.cpus", vcpus=4, price=0.2),
        offer("little.ram", ram=32, price=0.3),
        offer("small.disk", disk=(50, 200), price=0.4),
        offer("fits", price=0.9),
    ]
    req = gpus("A100", 1, min_vram_gb=80, min_vcpus=8, min_ram_gb=64, min_disk_gb=500)
    assert pick(offers, req).types == ("fits",)


def test_an_offer_that_does_not_state_its_disk_fits_only_without_min_disk():
    unknown = offer("unknown.disk", disk=(0, 0), price=0.1)
    assert pick([unknown], gpus("A100")).choice == unknown
    with pytest.raises(NoMatch) as caught:
        pick([unknown], gpus("A100", min_disk_gb=10))
    assert caught.value.constraint == "min_disk"
    assert "none found states its disk size" in str(caught.value)


def test_the_disk_to_ask_for():
    flexible = offer("flex", disk=(100, 1000))
    assert disk_gb(flexible, 500) == 500
    assert disk_gb(flexible, 20) == 100
    assert disk_gb(flexible, None) == 100
    assert disk_gb(offer("unknown", disk=(0, 0)), None) is None
    assert pick([flexible], gpus("A100", min_disk_gb=300)).disk_gb == 300


# ---------------------------------------------------------------- the 5% band


def test_a_faster_boot_within_5_percent_wins():
    offers = [
        offer("cheap.slow", price=1.00, boot=600),
        offer("band.fast", price=1.05, boot=60),
        offer("dear.fastest", price=1.06, boot=10),
    ]
    assert pick(offers, gpus("A100")).types == ("band.fast", "cheap.slow", "dear.fastest")


def test_an_unknown_boot_loses_to_a_known_one_in_the_band():
    offers = [offer("cheap.unknown", price=1.00), offer("band.known", price=1.04, boot=900)]
    assert pick(offers, gpus("A100")).choice.type == "band.known"


def test_without_a_known_boot_in_the_band_the_cheapest_wins():
    offers = [
        offer("dear.known", price=1.2, boot=30),
        offer("band.unknown", price=1.03),
        offer("cheap.unknown", price=1.00),
    ]
    assert pick(offers, gpus("A100")).types == ("cheap.unknown", "band.unknown", "dear.known")


def test_ties_break_on_price_then_type():
    same_boot = [offer("b", price=1.01, boot=60), offer("c", price=1.00, boot=60), offer("a", price=1.00, boot=60)]
    assert pick(same_boot, gpus("A100")).types == ("a", "c", "b")
    unknown = [offer("z", price=1.0), offer("y", price=1.0)]
    assert pick(unknown, gpus("A100")).types == ("y", "z")


def test_fallbacks_are_ranked_again_over_what_is_left():
    offers = [
        offer("t1", price=1.00, boot=300),
        offer("t2", price=1.04, boot=100),
        offer("t3", price=1.08, boot=50),
        offer("t4", price=1.10, boot=20),
    ]
    # t2 wins the band of 1.00; t1 is then alone in it; the band of 1.08 holds t4 (1.10 <= 1.134).
    assert pick(offers, gpus("A100"), fallbacks=3).types == ("t2", "t1", "t4", "t3")


def test_the_fallback_count():
    offers = [offer(f"t{i}", price=1 + i) for i in range(5)]
    assert pick(offers, gpus("A100")).types == ("t0", "t1", "t2")
    assert pick(offers, gpus("A100"), fallbacks=0).types == ("t0",)
    assert pick(offers[:2], gpus("A100"), fallbacks=4).types == ("t0", "t1")
    with pytest.raises(ConfigError):
        pick(offers, gpus("A100"), fallbacks=-1)


def test_duplicate_types_appear_once():
    offers = [offer("same", price=1.0), offer("same", price=1.0, boot=30), offer("other", price=1.2)]
    assert pick(offers, gpus("A100")).types == ("same", "other")


def test_a_pick_from_cli_rows():
    row = {
        "type": "g5.xlarge", "provider": "aws", "gpu_name": "A10G", "gpu_count": 1, "vram_per_gpu_gb": 24,
        "vcpus": 4, "memory": "16GiB", "ram_gb": 16, "disk_min_gb": 250, "disk_max_gb": 250,
        "boot_time_seconds": 0, "stoppable": True, "price_per_hour": 1.21,
    }
    result = pick(offers_from_rows([row]), requirements_of(spec(gpu="A10G")))
    assert result == Pick(result.choice, (), 250.0)
    assert result.choice.type == "g5.xlarge" and result.choice.boot_time_seconds is None


# ---------------------------------------------------------------- no match


CATALOG = [
    offer("h100x1", gpu="H100", count=1, vram=80, vcpus=26, ram=200, disk=(100, 1000)),
    offer("h100x4", gpu="H100", count=4, vram=80, vcpus=104, ram=900, disk=(100, 4000)),
    offer("a10g", gpu="A10G", vram=24),
    offer("t4", gpu="Tesla T4", vram=16),
]


@pytest.mark.parametrize(
    "req, constraint, message",
    [
        (Requirements(), "kind", "no CPU-only Brev offer is listed (every one has a GPU)"),
        (gpus("A100"), "gpu", "no Brev offer has A100 GPUs (models found: A10G, H100, T4)"),
        (gpus("H100", 8), "num_gpus", "no Brev offer has 8 x H100 (found: 1, 4 x H100)"),
        (gpus("H100", 4, min_vram_gb=141), "min_gpu_memory",
         "no Brev offer with 4 x H100 has >= 141 GB per GPU (the most found: 80 GB)"),
        (gpus("H100", 4, min_vcpus=128), "min_cpu",
         "no Brev offer with 4 x H100 has >= 128 vCPUs (the most found: 104)"),
        (gpus(None, 1, min_ram_gb=256.5), "min_memory",
         "no Brev offer with 1 x GPU has >= 256.5 GB RAM (the most found: 200 GB)"),
        (gpus("H100", 1, min_disk_gb=2000), "min_disk",
         "no Brev offer with 1 x H100 takes a 2000 GB disk (the largest found: 1000 GB)"),
    ],
)
def test_no_match_names_the_constraint_that_emptied_the_list(req, constraint, message):
    with pytest.raises(NoMatch) as caught:
        pick(CATALOG, req)
    assert isinstance(caught.value, UsageError)
    assert caught.value.constraint == constraint
    assert str(caught.value) == message


def test_no_match_for_gpus_in_a_cpu_only_catalog_and_an_empty_one():
    with pytest.raises(NoMatch, match="no Brev offer has a GPU") as caught:
        pick([offer("cpu", count=0)], gpus())
    assert caught.value.constraint == "kind"
    with pytest.raises(NoMatch, match="no offers") as caught:
        pick([], Requirements())
    assert caught.value.constraint == "catalog"


def test_a_cpu_floor_on_cpu_only_offers_says_so():
    with pytest.raises(NoMatch, match=r"^no CPU-only Brev offer has >= 64 vCPUs \(the most found: 16\)$"):
        pick([offer("cpu", count=0)], Requirements(min_vcpus=64))


# ---------------------------------------------------------------- properties

# Names as Brev might print them, with the model each one denotes (written out
# here, independently of the picker's normalisation).
MODEL = {
    "A10": "A10", "NVIDIA A10": "A10", "A100": "A100", "a100": "A100", "A10G": "A10G",
    "Tesla T4": "T4", "T4": "T4", "H100": "H100", "NVIDIA-H100": "H100",
}
ORDER = ("kind", "gpu", "num_gpus", "min_gpu_memory", "min_cpu", "min_memory", "min_disk")
PRICES = [0.5, 0.52, 0.525, 0.53, 1.0, 1.02, 1.04, 1.05, 1.0500001, 1.06, 1.1, 2.0]


@st.composite
def catalogs(draw, unique=True):
    size = draw(st.integers(0, 25))
    offers = []
    for index in range(size):
        count = draw(st.sampled_from([0, 1, 1, 2, 4, 8]))
        disk_min = draw(st.sampled_from([0, 50, 100]))
        offers.append(Offer(
            type=f"t{index}" if unique else draw(st.sampled_from(["t0", "t1", "t2", "t3"])),
            provider="p",
            gpu_name=draw(st.sampled_from(sorted(MODEL))) if count else "-",
            gpu_count=count,
            vram_per_gpu_gb=float(draw(st.sampled_from([16, 24, 40, 80]))) if count else 0.0,
            vcpus=draw(st.sampled_from([2, 8, 16, 64])),
            ram_gb=float(draw(st.sampled_from([8, 32, 128, 512]))),
            disk_min_gb=float(disk_min),
            disk_max_gb=float(disk_min * draw(st.sampled_from([1, 10]))),
            boot_time_seconds=draw(st.none() | st.sampled_from([30, 60, 300, 900])),
            stoppable=draw(st.booleans()),
            price_per_hour=draw(st.sampled_from(PRICES) | st.floats(0.1, 3.0)),
        ))
    return offers


@st.composite
def requirements(draw):
    floor = lambda *values: draw(st.none() | st.sampled_from(values))  # noqa: E731
    vcpus, ram, disk = floor(4, 16, 32, 100), floor(16, 64, 256, 1000), floor(20, 100, 500)
    if draw(st.booleans()):
        return Requirements(min_vcpus=vcpus, min_ram_gb=ram, min_disk_gb=disk)
    return Requirements(
        gpu_model=draw(st.none() | st.sampled_from(["A10", "A100", "A10G", "T4", "H100"])),
        gpu_count=draw(st.sampled_from([1, 2, 4, 8])),
        min_vram_gb=floor(16, 24, 40, 80, 100),
        min_vcpus=vcpus, min_ram_gb=ram, min_disk_gb=disk,
    )


# Loose requirements leave many offers to rank.
loose_or_any = st.sampled_from([Requirements(), Requirements(gpu_count=1), Requirements(gpu_count=2)]) | requirements()


def ref_checks(o, r):
    """Each constraint's verdict on one offer, in the picker's order."""
    return {
        "kind": (o.gpu_count > 0) == (r.gpu_count > 0),
        "gpu": r.gpu_model is None or MODEL.get(o.gpu_name) == r.gpu_model,
        "num_gpus": r.gpu_count == 0 or o.gpu_count == r.gpu_count,
        "min_gpu_memory": r.min_vram_gb is None or o.vram_per_gpu_gb >= r.min_vram_gb,
        "min_cpu": r.min_vcpus is None or o.vcpus >= r.min_vcpus,
        "min_memory": r.min_ram_gb is None or o.ram_gb >= r.min_ram_gb,
        "min_disk": r.min_disk_gb is None or (o.disk_max_gb > 0 and o.disk_max_gb >= r.min_disk_gb),
    }


def ref_fits(o, r):
    return all(ref_checks(o, r).values())


def ref_ranked(fits, count):
    ranked, left = [], list(fits)
    while left and len(ranked) < count:
        cheapest = min(o.price_per_hour for o in left)
        band = [o for o in left if o.price_per_hour <= 1.05 * cheapest]
        known = sorted((o for o in band if o.boot_time_seconds), key=lambda o: (o.boot_time_seconds, o.price_per_hour, o.type))
        winner = known[0] if known else sorted(band, key=lambda o: (o.price_per_hour, o.type))[0]
        ranked.append(winner)
        left = [o for o in left if o.type != winner.type]
    return ranked


@PROPS
@given(catalogs(), requirements(), st.integers(0, 4))
def test_no_match_iff_nothing_fits(offers, req, fallbacks):
    fits = [o for o in offers if ref_fits(o, req)]
    if not fits:
        with pytest.raises(NoMatch) as caught:
            pick(offers, req, fallbacks)
        if offers:
            survivors = list(offers)
            for name in ORDER:
                survivors = [o for o in survivors if ref_checks(o, req)[name]]
                if not survivors:
                    break
            assert caught.value.constraint == name
        return
    result = pick(offers, req, fallbacks)
    assert all(ref_fits(o, req) for o in result.offers)
    assert len(result.offers) == min(fallbacks + 1, len(fits))
    assert len(set(result.types)) == len(result.types)


@PROPS
@given(catalogs(), loose_or_any)
def test_the_choice_follows_the_5_percent_rule(offers, req):
    fits = [o for o in offers if ref_fits(o, req)]
    if not fits:
        return
    choice = pick(offers, req).choice
    cheapest = min(o.price_per_hour for o in fits)
    assert choice.price_per_hour <= 1.05 * cheapest
    band = [o for o in fits if o.price_per_hour <= 1.05 * cheapest]
    known = [o.boot_time_seconds for o in band if o.boot_time_seconds is not None]
    if known:
        assert choice.boot_time_seconds == min(known)
    else:
        assert choice.price_per_hour == cheapest


@PROPS
@given(catalogs(), loose_or_any, st.integers(0, 4))
def test_the_ranking_matches_a_brute_force_one(offers, req, fallbacks):
    fits = [o for o in offers if ref_fits(o, req)]
    if fits:
        assert list(pick(offers, req, fallbacks).offers) == ref_ranked(fits, fallbacks + 1)


@PROPS
@given(catalogs(unique=False), loose_or_any, st.integers(0, 4))
def test_the_ranking_with_repeated_types_matches_a_brute_force_one(offers, req, fallbacks):
    fits = [o for o in offers if ref_fits(o, req)]
    if fits:
        expected = [o.type for o in ref_ranked(fits, fallbacks + 1)]
        assert list(pick(offers, req, fallbacks).types) == expected


@PROPS
@given(catalogs(), requirements(), st.randoms())
def test_input_order_does_not_matter(offers, req, rng):
    shuffled = list(offers)
    rng.shuffle(shuffled)
    try:
        expected = pick(offers, req)
    except NoMatch as error:
        with pytest.raises(NoMatch) as caught:
            pick(shuffled, req)
        assert (str(caught.value), caught.value.constraint) == (str(error), error.constraint)
        return
    assert pick(shuffled, req) == expected
