import math
import re

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runplz
from runplz.domain.config import BrevConfig, LocalConfig, ModalConfig, SshConfig
from runplz.domain.errors import ConfigError

FUZZ_ONE = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_public_names_are_the_domain_classes():
    assert runplz.BrevConfig is BrevConfig
    assert runplz.SshConfig is SshConfig
    assert runplz.ModalConfig is ModalConfig
    assert runplz.LocalConfig is LocalConfig


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# ---------------------------------------------------------------- defaults


def test_brev_defaults_match_the_seed():
    config = BrevConfig()
    assert attrs.asdict(config) == {
        "auto_create_instances": False,
        "instance_type": None,
        "mode": "container",
        "use_docker": True,
        "on_finish": "stop",
        "max_runtime_seconds": None,
        "ssh_ready_wait_seconds": 1800,
    }


def test_ssh_defaults_match_the_seed():
    assert attrs.asdict(SshConfig()) == {
        "user": None,
        "port": None,
        "use_docker": True,
        "on_finish": "leave",
        "max_runtime_seconds": None,
        "ssh_ready_wait_seconds": 1800,
    }


def test_modal_config_defaults_and_choices():
    assert attrs.asdict(ModalConfig()) == {"add_python": "auto"}
    for good in ("auto", "none", "3.10", "3.13"):
        assert ModalConfig(add_python=good).add_python == good
    for bad in ("3.9", "2.7", "", None, 3.11, "3.11.4"):
        with pytest.raises(ValueError, match="ModalConfig.add_python"):
            ModalConfig(add_python=bad)


def test_local_defaults():
    assert attrs.asdict(LocalConfig()) == {"use_docker": True, "gpus": "auto"}


@pytest.mark.parametrize("cls", [BrevConfig, SshConfig, ModalConfig, LocalConfig])
def test_default_instances_are_equal_and_hashable(cls):
    assert cls() == cls()
    assert hash(cls()) == hash(cls())


# ---------------------------------------------------------------- frozen


@pytest.mark.parametrize(
    "config, field, value",
    [
        (BrevConfig(), "mode", "vm"),
        (BrevConfig(), "on_finish", "delete"),
        (SshConfig(), "port", 22),
        (SshConfig(), "on_finish", "stop"),
        (LocalConfig(), "gpus", "all"),
        (ModalConfig(), "anything", 1),
    ],
)
def test_configs_are_frozen(config, field, value):
    before = attrs.asdict(config)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(config, field, value)
    assert attrs.asdict(config) == before


def test_evolve_revalidates():
    with pytest.raises(ValueError, match="mode"):
        attrs.evolve(BrevConfig(), mode="kubernetes")


# ---------------------------------------------------------------- valid values


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "vm"},
        {"mode": "vm", "use_docker": False},
        {"mode": "container", "use_docker": True},
        {"on_finish": "stop"},
        {"on_finish": "delete"},
        {"on_finish": "leave"},
        {"instance_type": "n1-standard-4:nvidia-tesla-t4:1"},
        {"auto_create_instances": True},
        {"max_runtime_seconds": 0.5},
        {"max_runtime_seconds": 3600},
        {"ssh_ready_wait_seconds": 60},
        {"ssh_ready_wait_seconds": 2.5},
    ],
)
def test_brev_accepts(kwargs):
    config = BrevConfig(**kwargs)
    for name, value in kwargs.items():
        assert getattr(config, name) == value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": "ubuntu"},
        {"user": "deploy.bot-1"},
        {"user": "_svc"},
        {"port": 1},
        {"port": 2222},
        {"port": 65535},
        {"use_docker": False},
        {"on_finish": "leave"},
        {"max_runtime_seconds": 10},
        {"ssh_ready_wait_seconds": 5},
    ],
)
def test_ssh_accepts(kwargs):
    config = SshConfig(**kwargs)
    for name, value in kwargs.items():
        assert getattr(config, name) == value


@pytest.mark.parametrize("gpus", ["auto", "all", "none", "0", "0,1", "3,10,2"])
def test_local_accepts_gpus(gpus):
    assert LocalConfig(gpus=gpus).gpus == gpus


# ---------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"mode": "docker"}, "mode"),
        ({"mode": "VM"}, "mode"),
        ({"mode": None}, "mode"),
        ({"use_docker": False}, "use_docker"),
        ({"mode": "container", "use_docker": False}, "use_docker"),
        ({"instance_type": ""}, "instance_type"),
        ({"instance_type": "   "}, "instance_type"),
        ({"instance_type": 4}, "instance_type"),
        ({"on_finish": "terminate"}, "on_finish"),
        ({"on_finish": None}, "on_finish"),
        ({"max_runtime_seconds": 0}, "max_runtime_seconds"),
        ({"max_runtime_seconds": -1}, "max_runtime_seconds"),
        ({"max_runtime_seconds": -0.001}, "max_runtime_seconds"),
        ({"max_runtime_seconds": float("nan")}, "max_runtime_seconds"),
        ({"max_runtime_seconds": float("inf")}, "max_runtime_seconds"),
        ({"max_runtime_seconds": True}, "max_runtime_seconds"),
        ({"max_runtime_seconds": "60"}, "max_runtime_seconds"),
        ({"ssh_ready_wait_seconds": 0}, "ssh_ready_wait_seconds"),
        ({"ssh_ready_wait_seconds": None}, "ssh_ready_wait_seconds"),
        ({"auto_create_instances": 1}, "auto_create_instances"),
        ({"auto_create_instances": "yes"}, "auto_create_instances"),
        ({"use_docker": None, "mode": "vm"}, "use_docker"),
    ],
)
def test_brev_rejects(kwargs, field):
    with pytest.raises(ValueError) as info:
        BrevConfig(**kwargs)
    assert f"BrevConfig.{field}" in str(info.value)


def test_brev_container_without_docker_message_points_to_vm_mode():
    with pytest.raises(ValueError, match="mode='vm'"):
        BrevConfig(mode="container", use_docker=False)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"on_finish": "stop"}, "on_finish"),
        ({"on_finish": "delete"}, "on_finish"),
        ({"on_finish": None}, "on_finish"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": -22}, "port"),
        ({"port": "22"}, "port"),
        ({"port": 22.0}, "port"),
        ({"port": True}, "port"),
        ({"user": ""}, "user"),
        ({"user": "a b"}, "user"),
        ({"user": "root@host"}, "user"),
        ({"user": "-oProxyCommand=x"}, "user"),
        ({"user": "x\n"}, "user"),
        ({"user": 0}, "user"),
        ({"use_docker": "false"}, "use_docker"),
        ({"max_runtime_seconds": 0}, "max_runtime_seconds"),
        ({"ssh_ready_wait_seconds": -5}, "ssh_ready_wait_seconds"),
    ],
)
def test_ssh_rejects(kwargs, field):
    with pytest.raises(ValueError) as info:
        SshConfig(**kwargs)
    assert f"SshConfig.{field}" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"gpus": "any"}, "gpus"),
        ({"gpus": ""}, "gpus"),
        ({"gpus": "0,"}, "gpus"),
        ({"gpus": ",1"}, "gpus"),
        ({"gpus": "0, 1"}, "gpus"),
        ({"gpus": "device=0"}, "gpus"),
        ({"gpus": 0}, "gpus"),
        ({"gpus": None}, "gpus"),
        ({"gpus": ["0"]}, "gpus"),
        ({"use_docker": 0}, "use_docker"),
    ],
)
def test_local_rejects(kwargs, field):
    with pytest.raises(ValueError) as info:
        LocalConfig(**kwargs)
    assert f"LocalConfig.{field}" in str(info.value)


@pytest.mark.parametrize("cls", [BrevConfig, SshConfig, ModalConfig, LocalConfig])
def test_unknown_field_is_a_type_error(cls):
    with pytest.raises(TypeError):
        cls(no_such_field=1)


# ---------------------------------------------------------------- rules shared by the fuzz

_LOGIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_DEVICES = re.compile(r"[0-9]+(,[0-9]+)*")


def _is_bool(v):
    return isinstance(v, bool)


def _positive_number(v):
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and not (isinstance(v, float) and math.isnan(v))
        and v > 0
        and v != math.inf
    )


def _optional(rule):
    return lambda v: v is None or rule(v)


def _choice(*choices):
    return lambda v: isinstance(v, str) and v in choices


RULES = {
    BrevConfig: {
        "auto_create_instances": _is_bool,
        "instance_type": _optional(lambda v: isinstance(v, str) and bool(v.strip())),
        "mode": _choice("container", "vm"),
        "use_docker": _is_bool,
        "on_finish": _choice("stop", "delete", "leave"),
        "max_runtime_seconds": _optional(_positive_number),
        "ssh_ready_wait_seconds": _positive_number,
    },
    SshConfig: {
        "user": _optional(lambda v: isinstance(v, str) and bool(_LOGIN.fullmatch(v))),
        "port": _optional(lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65535),
        "use_docker": _is_bool,
        "on_finish": _choice("leave"),
        "max_runtime_seconds": _optional(_positive_number),
        "ssh_ready_wait_seconds": _positive_number,
    },
    LocalConfig: {
        "use_docker": _is_bool,
        "gpus": lambda v: isinstance(v, str) and (v in ("auto", "all", "none") or bool(_DEVICES.fullmatch(v))),
    },
}

GOOD = {
    "auto_create_instances": [True, False],
    "instance_type": ["n1-standard-4", "g5.xlarge", None],
    "mode": ["container", "vm"],
    "use_docker": [True, False],
    "on_finish": ["stop", "delete", "leave"],
    "max_runtime_seconds": [None, 1, 0.25, 86400, 10**30],
    "ssh_ready_wait_seconds": [1, 1800, 0.5],
    "user": ["ubuntu", "a.b-c_d", None],
    "port": [1, 22, 65535, None],
    "gpus": ["auto", "all", "none", "0", "0,1,2"],
}

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 1, 65535, 65536, 2**63, -(2**63), 10**100, -(10**100), 2**1000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-300]),
    st.text(max_size=20),
    st.sampled_from(["", " ", "container", "vm", "stop", "leave", "auto", "0,1", "22"]),
)
ANYTHING = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), _scalars, max_size=3),
)


def _values_for(field):
    return st.one_of(ANYTHING, st.sampled_from(GOOD[field]))


def _check(cls, kwargs):
    rules = RULES[cls]
    bad = [name for name, value in kwargs.items() if not rules[name](value)]
    try:
        config = cls(**kwargs)
    except ValueError as exc:
        message = str(exc)
        if bad:
            assert any(f"{cls.__name__}.{name}" in message for name in bad), (message, bad)
        else:
            assert cls is BrevConfig and "use_docker" in kwargs, message
            assert kwargs["use_docker"] is False and kwargs.get("mode", "container") == "container"
            assert "BrevConfig.use_docker" in message and "mode" in message
        return
    assert not bad, f"{cls.__name__} accepted {kwargs!r}"
    for name, value in kwargs.items():
        stored = getattr(config, name)
        assert stored is value or stored == value
        assert rules[name](stored)
    if cls is BrevConfig:
        assert not (config.mode == "container" and config.use_docker is False)


FIELDS = [(cls, name) for cls, rules in RULES.items() for name in rules]


@pytest.mark.parametrize("cls, field", FIELDS, ids=[f"{c.__name__}.{f}" for c, f in FIELDS])
@FUZZ_ONE
@given(data=st.data())
def test_fuzz_one_field(cls, field, data):
    value = data.draw(_values_for(field), label=field)
    _check(cls, {field: value})


@pytest.mark.parametrize("cls", list(RULES), ids=lambda c: c.__name__)
@FUZZ_MANY
@given(data=st.data())
def test_fuzz_several_fields(cls, data):
    names = data.draw(st.sets(st.sampled_from(sorted(RULES[cls])), min_size=1), label="fields")
    kwargs = {name: data.draw(_values_for(name), label=name) for name in sorted(names)}
    _check(cls, kwargs)


# ---------------------------------------------------------------- regressions


def test_local_gpus_rejects_trailing_newline():
    with pytest.raises(ValueError, match="gpus"):
        LocalConfig(gpus="0\n")


def test_local_gpus_rejects_non_ascii_digits():
    with pytest.raises(ValueError, match="gpus"):
        LocalConfig(gpus="\u0663")


@pytest.mark.parametrize(
    "cls, field",
    [(SshConfig, "port"), (BrevConfig, "mode"), (BrevConfig, "max_runtime_seconds")],
)
def test_rejecting_a_gigantic_int_names_the_field(cls, field):
    with pytest.raises(ValueError) as info:
        cls(**{field: -(10**5000)})
    assert f"{cls.__name__}.{field}" in str(info.value)
