"""FunctionSpec -> Modal's function parameters, and every refusal."""

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runplz.domain.errors import ConfigError
from runplz.domain.image import Image
from runplz.domain.modal_resources import (
    GPU_MODELS,
    MAX_TIMEOUT,
    PICK_ORDER,
    VALID_NAMES,
    ModalResources,
    lookup_gpu,
    modal_resources,
)
from runplz.domain.spec import function_spec

IMAGE = Image.from_registry("python:3.11-slim")
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LARGEST = max(model.vram_gb for model in GPU_MODELS)


def _resources(**kwargs):
    return modal_resources(function_spec("train", image=IMAGE, **kwargs))


def _refusal(field, **kwargs):
    with pytest.raises(ConfigError) as caught:
        _resources(**kwargs)
    message = str(caught.value)
    assert "'train'" in message and f"{field}=" in message, message
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- the table


def test_table_holds_what_modal_sells():
    names = {model.name for model in GPU_MODELS}
    assert names == {"T4", "L4", "A10", "L40S", "A100-40GB", "A100-80GB", "RTX-PRO-6000", "H100", "H200", "B200"}
    assert {model.name: model.max_count for model in GPU_MODELS}["A10"] == 4
    assert all(model.max_count == 8 for model in GPU_MODELS if model.name != "A10")
    assert all(model.vram_gb > 0 and model.usd_per_hour > 0 for model in GPU_MODELS)


def test_pick_order_is_vram_then_price():
    assert [model.name for model in PICK_ORDER] == [
        "T4", "L4", "A10", "A100-40GB", "L40S", "A100-80GB", "H100", "RTX-PRO-6000", "H200", "B200",
    ]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, ModalResources(None, None, None, 3600)),
        ({"gpu": "T4"}, ModalResources("T4", None, None, 3600)),
        ({"gpu": " t4 "}, ModalResources("T4", None, None, 3600)),
        ({"gpu": "a100-80gb", "num_gpus": 4}, ModalResources("A100-80GB:4", None, None, 3600)),
        ({"gpu": "A100"}, ModalResources("A100", None, None, 3600)),
        ({"gpu": "a100", "min_gpu_memory": 40}, ModalResources("A100-40GB", None, None, 3600)),
        ({"gpu": "A100", "min_gpu_memory": 41}, ModalResources("A100-80GB", None, None, 3600)),
        ({"gpu": "A100", "min_gpu_memory": 80, "num_gpus": 8}, ModalResources("A100-80GB:8", None, None, 3600)),
        ({"gpu": "rtx-pro-6000"}, ModalResources("RTX-PRO-6000", None, None, 3600)),
        ({"gpu": "h100!"}, ModalResources("H100!", None, None, 3600)),
        ({"gpu": "b200+", "num_gpus": 2}, ModalResources("B200+:2", None, None, 3600)),
        ({"gpu": "A10G"}, ModalResources("A10", None, None, 3600)),
        ({"gpu": "A10", "num_gpus": 4}, ModalResources("A10:4", None, None, 3600)),
        ({"gpu": "H200", "min_gpu_memory": 100}, ModalResources("H200", None, None, 3600)),
        ({"min_gpu_memory": 1}, ModalResources("T4", None, None, 3600)),
        ({"min_gpu_memory": 16}, ModalResources("T4", None, None, 3600)),
        ({"min_gpu_memory": 16.5}, ModalResources("L4", None, None, 3600)),
        ({"min_gpu_memory": 24, "num_gpus": 8}, ModalResources("L4:8", None, None, 3600)),
        ({"min_gpu_memory": 40}, ModalResources("A100-40GB", None, None, 3600)),
        ({"min_gpu_memory": 48}, ModalResources("L40S", None, None, 3600)),
        ({"min_gpu_memory": 80}, ModalResources("A100-80GB", None, None, 3600)),
        ({"min_gpu_memory": 81}, ModalResources("RTX-PRO-6000", None, None, 3600)),
        ({"min_gpu_memory": 141, "num_gpus": 2}, ModalResources("H200:2", None, None, 3600)),
        ({"min_gpu_memory": 180}, ModalResources("B200", None, None, 3600)),
        ({"min_cpu": 4, "min_memory": 26, "timeout": 60}, ModalResources(None, 4.0, 26624, 60)),
        ({"min_cpu": 0.5, "min_memory": 0.1}, ModalResources(None, 0.5, 103, 3600)),
        ({"timeout": MAX_TIMEOUT}, ModalResources(None, None, None, MAX_TIMEOUT)),
        (
            {"gpu": "T4", "min_cpu": 4, "min_memory": 26, "min_gpu_memory": 16, "timeout": 3600},
            ModalResources("T4", 4.0, 26624, 3600),
        ),
    ],
)
def test_specs_map_to_modal_parameters(kwargs, expected):
    assert _resources(**kwargs) == expected


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("name, hint", [("H100-80GB", "H100"), ("T4-16GB", "T4"), ("l4 24gb", "L4"), ("H10", "H100")])
def test_unknown_names_get_a_did_you_mean(name, hint):
    message = _refusal("gpu", gpu=name)
    assert f"did you mean {hint!r}" in message
    assert all(valid in message for valid in VALID_NAMES)


def test_memory_suffix_refusal_says_only_the_a100_takes_one():
    assert "Only the A100 takes a memory suffix" in _refusal("gpu", gpu="T4-16GB")


def test_bogus_name_lists_every_valid_name():
    message = _refusal("gpu", gpu="BOGUS")
    assert "'BOGUS' is not a GPU Modal rents" in message
    assert "Valid names: " + ", ".join(VALID_NAMES) in message


def test_count_over_the_models_maximum_names_it():
    assert "at most 4" in _refusal("num_gpus", gpu="A10", num_gpus=5)
    assert "at most 8" in _refusal("num_gpus", gpu="H100", num_gpus=9)
    assert "at most 8" in _refusal("num_gpus", min_gpu_memory=10, num_gpus=16)


def test_explicit_gpu_with_too_little_vram_names_its_vram_and_the_ones_that_meet_it():
    message = _refusal("min_gpu_memory", gpu="T4", min_gpu_memory=20)
    assert "16 GB" in message and "min_gpu_memory=20" in message
    assert "L4, A10, A100-40GB" in message and "T4," not in message
    message = _refusal("min_gpu_memory", gpu="A100-40GB", min_gpu_memory=80)
    assert "40 GB" in message and "A100-80GB" in message


def test_vram_above_the_largest_is_refused():
    message = _refusal("min_gpu_memory", min_gpu_memory=LARGEST + 1)
    assert f"{LARGEST} GB" in message and "B200" in message
    assert "none" in _refusal("min_gpu_memory", gpu="A100", min_gpu_memory=500)


def test_min_disk_points_at_volumes_and_is_a_value_error():
    with pytest.raises(ValueError):
        _resources(min_disk=100)
    assert "modal.Volume" in _refusal("min_disk", min_disk=100)


def test_timeout_over_a_day_is_refused():
    assert "86400" in _refusal("timeout", timeout=MAX_TIMEOUT + 1)


# ---------------------------------------------------------------- properties


def _random_case(draw, name):
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    cased = "".join(c.lower() if flip else c for c, flip in zip(name, flips))
    return draw(st.sampled_from(["", " ", "\t"])) + cased + draw(st.sampled_from(["", " ", "  "]))


@st.composite
def valid_specs(draw):
    name = draw(st.sampled_from(VALID_NAMES + ("A10G", None)))
    kwargs = {}
    if name is None:
        vram = draw(st.floats(min_value=0.5, max_value=LARGEST))
        kwargs["min_gpu_memory"] = vram
        kwargs["num_gpus"] = draw(st.integers(1, 8))
    else:
        spelling, model = lookup_gpu(name)
        ceiling = 80 if name == "A100" else model.vram_gb
        kwargs["gpu"] = _random_case(draw, name)
        kwargs["num_gpus"] = draw(st.integers(1, model.max_count))
        if draw(st.booleans()):
            kwargs["min_gpu_memory"] = draw(st.floats(min_value=0.5, max_value=ceiling))
    if draw(st.booleans()):
        kwargs["min_cpu"] = draw(st.floats(min_value=0.125, max_value=64))
    if draw(st.booleans()):
        kwargs["min_memory"] = draw(st.floats(min_value=0.01, max_value=1024))
    kwargs["timeout"] = draw(st.none() | st.integers(1, MAX_TIMEOUT))
    return kwargs


@FUZZ
@given(valid_specs())
def test_every_valid_spec_maps_to_a_gpu_modal_sells(kwargs):
    result = _resources(**kwargs)
    name, _, count = result.gpu.partition(":")
    found = lookup_gpu(name)
    assert found is not None and found[0] == name  # canonical spelling comes out
    model = found[1]
    count = int(count) if count else 1
    assert count == kwargs["num_gpus"] and count <= model.max_count
    assert model.vram_gb >= kwargs.get("min_gpu_memory", 0)
    assert 1 <= result.timeout <= MAX_TIMEOUT
    if "min_memory" in kwargs:
        assert result.memory_mib >= kwargs["min_memory"] * 1024
    if "min_cpu" in kwargs:
        assert result.cpu == kwargs["min_cpu"]


_NAME_CHARS = st.sampled_from("ABCDHLRSTX0123456789-:!+ abcdgh")


@st.composite
def invalid_specs(draw):
    kind = draw(st.sampled_from(["name", "count", "vram", "timeout", "disk"]))
    if kind == "name":
        name = draw(st.text(_NAME_CHARS, min_size=1, max_size=12))
        assume(name.strip() and lookup_gpu(name) is None)
        return "gpu", {"gpu": name}
    if kind == "count":
        model = draw(st.sampled_from(GPU_MODELS))
        return "num_gpus", {"gpu": model.name.lower(), "num_gpus": draw(st.integers(model.max_count + 1, 64))}
    if kind == "vram":
        vram = draw(st.floats(min_value=LARGEST + 0.01, max_value=10_000))
        gpu = draw(st.none() | st.sampled_from(VALID_NAMES))
        return "min_gpu_memory", {"gpu": gpu, "min_gpu_memory": vram}
    if kind == "timeout":
        return "timeout", {"timeout": draw(st.integers(MAX_TIMEOUT + 1, 10 * MAX_TIMEOUT))}
    return "min_disk", {"min_disk": draw(st.floats(min_value=0.1, max_value=1e6))}


@FUZZ
@given(invalid_specs())
def test_every_invalid_spec_is_refused_naming_the_field(case):
    field, kwargs = case
    with pytest.raises(ConfigError) as caught:
        _resources(**kwargs)
    assert re.search(rf"\b{field}=", str(caught.value)), str(caught.value)
    assert "'train'" in str(caught.value)
