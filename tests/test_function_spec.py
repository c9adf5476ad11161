import math
import re
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runplz import App, Function, Image
from runplz.domain.call import FunctionCall
from runplz.domain.errors import ConfigError, UsageError
from runplz.domain.spec import FunctionSpec, function_spec

IMAGE = Image.from_registry("python:3.11-slim")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _names(message, field):
    head = message.split("; got ")[0]
    return re.search(rf"(?<![A-Za-z_]){field}(?![A-Za-z_])", head) is not None


def _job():
    def job(x=1):
        return x * 2

    return job


# ---------------------------------------------------------------- function_spec


def test_defaults():
    spec = function_spec("train", image=IMAGE)
    assert spec == FunctionSpec(name="train", image=IMAGE)
    assert spec.gpu is None
    assert spec.num_gpus == 1
    assert spec.min_cpu is spec.min_memory is spec.min_gpu_memory is spec.min_disk is None
    assert spec.timeout is None  # unset: no cap outside Modal
    assert dict(spec.env) == {}
    assert not spec.wants_gpu


def test_seed_example_is_accepted():
    spec = function_spec(
        "train",
        image=IMAGE,
        gpu="T4",
        min_cpu=4,
        min_memory=26,
        min_gpu_memory=16,
        min_disk=100,
        timeout=60 * 60,
        env={"WANDB_MODE": "offline", "_X1": ""},
    )
    assert (spec.gpu, spec.min_cpu, spec.min_memory, spec.min_gpu_memory, spec.min_disk) == ("T4", 4, 26, 16, 100)
    assert spec.timeout == 3600
    assert dict(spec.env) == {"WANDB_MODE": "offline", "_X1": ""}
    assert spec.wants_gpu


def test_gpu_is_stripped():
    assert function_spec("f", image=IMAGE, gpu="  A100-80GB ").gpu == "A100-80GB"


def test_wants_gpu_from_min_gpu_memory_alone():
    assert function_spec("f", image=IMAGE, min_gpu_memory=8).wants_gpu


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_gpus": 4, "gpu": "A100"},
        {"num_gpus": 2, "min_gpu_memory": 40},
        {"num_gpus": 8, "gpu": "H100", "min_gpu_memory": 80},
        {"num_gpus": 1},
    ],
)
def test_num_gpus_accepted(kwargs):
    assert function_spec("f", image=IMAGE, **kwargs).num_gpus == kwargs["num_gpus"]


def test_env_is_copied():
    env = {"A": "1"}
    spec = function_spec("f", image=IMAGE, env=env)
    env["B"] = "2"
    assert dict(spec.env) == {"A": "1"}


@pytest.mark.parametrize("field", ["min_cpu", "min_memory", "min_gpu_memory", "min_disk"])
@pytest.mark.parametrize("value", [0.5, 1, 10**6, 1e-9])
def test_min_fields_accept_positive_numbers(field, value):
    assert getattr(function_spec("f", image=IMAGE, **{field: value}), field) == value


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"image": None}, "image"),
        ({"image": "python:3.11"}, "image"),
        ({"image": Image}, "image"),
        ({"gpu": ""}, "gpu"),
        ({"gpu": "   "}, "gpu"),
        ({"gpu": 1}, "gpu"),
        ({"gpu": True}, "gpu"),
        ({"gpu": ["A100"]}, "gpu"),
        *[({f: v}, f) for f in ("min_cpu", "min_memory", "min_gpu_memory", "min_disk")
          for v in (0, -1, -0.5, math.nan, math.inf, -math.inf, True, "4", [4])],
        ({"num_gpus": 0}, "num_gpus"),
        ({"num_gpus": -1}, "num_gpus"),
        ({"num_gpus": True, "gpu": "A100"}, "num_gpus"),
        ({"num_gpus": 2.0, "gpu": "A100"}, "num_gpus"),
        ({"num_gpus": "2", "gpu": "A100"}, "num_gpus"),
        ({"num_gpus": None}, "num_gpus"),
        ({"num_gpus": 2}, "num_gpus"),
        ({"num_gpus": 2, "min_cpu": 4, "min_memory": 16}, "num_gpus"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -5}, "timeout"),
        ({"timeout": 1.5}, "timeout"),
        ({"timeout": 60.0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"env": ["A=1"]}, "env"),
        ({"env": "A=1"}, "env"),
        ({"env": {"1A": "x"}}, "env"),
        ({"env": {"A-B": "x"}}, "env"),
        ({"env": {"": "x"}}, "env"),
        ({"env": {"A B": "x"}}, "env"),
        ({"env": {1: "x"}}, "env"),
        ({"env": {"A": b"1"}}, "env"),
        ({"env": {"A": [1]}}, "env"),
        ({"env": {"A": None}}, "env"),
        ({"env": {"A": "x\x00y"}}, "env"),
    ],
)
def test_function_spec_rejects(kwargs, field):
    kwargs = {"image": IMAGE, **kwargs}
    with pytest.raises(ValueError) as info:
        function_spec("f", **kwargs)
    assert isinstance(info.value, ConfigError)
    assert _names(str(info.value), field), str(info.value)


def test_num_gpus_message_says_what_is_missing():
    with pytest.raises(ValueError, match=r"gpu= or min_gpu_memory="):
        function_spec("f", image=IMAGE, num_gpus=2)


# ---------------------------------------------------------------- fuzz over the decorator


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive(v):
    return _number(v) and not (isinstance(v, float) and math.isnan(v)) and v > 0 and v != math.inf


def _positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_ok(v):
    return v is None or (
        isinstance(v, dict)
        and all(isinstance(k, str) and _ENV_NAME.fullmatch(k) for k in v)
        and all(isinstance(x, (bool, int, float)) or (isinstance(x, str) and "\x00" not in x) for x in v.values())
    )


RULES = {
    "image": lambda v: isinstance(v, Image),
    "gpu": lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
    "num_gpus": _positive_int,
    "min_cpu": lambda v: v is None or _positive(v),
    "min_memory": lambda v: v is None or _positive(v),
    "min_gpu_memory": lambda v: v is None or _positive(v),
    "min_disk": lambda v: v is None or _positive(v),
    "timeout": lambda v: v is None or _positive_int(v),
    "env": _env_ok,
}

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 1, 2, 8, 2**63, -(2**63), 10**100, -(10**100)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "  ", "A100", " T4 "]),
)
ANYTHING = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.text(max_size=6), _scalars, max_size=3),
)
GOOD = {
    "image": st.sampled_from([IMAGE, IMAGE.pip_install("numpy"), Image.from_dockerfile("Dockerfile")]),
    "gpu": st.sampled_from([None, "A100", "H100", " L4 "]),
    "num_gpus": st.integers(1, 16),
    "min_cpu": st.floats(0.01, 512) | st.integers(1, 512),
    "min_memory": st.floats(0.01, 4096),
    "min_gpu_memory": st.none() | st.integers(1, 160),
    "min_disk": st.integers(1, 10**6),
    "timeout": st.integers(1, 10**6),
    "env": st.dictionaries(st.from_regex(_ENV_NAME, fullmatch=True), st.text(max_size=8), max_size=3),
}


def _values_for(field):
    return st.one_of(ANYTHING, GOOD[field])


def _check_decoration(kwargs):
    call = {"image": IMAGE, **kwargs}
    bad = [name for name, value in call.items() if not RULES[name](value)]
    num_gpus = call.get("num_gpus", 1)
    unnamed_gpus = (
        _positive_int(num_gpus) and num_gpus > 1 and call.get("gpu") is None and call.get("min_gpu_memory") is None
    )
    if unnamed_gpus:
        bad.append("num_gpus")
    app = App("fuzz")
    try:
        fn = app.function(**call)(_job())
    except ValueError as exc:
        message = str(exc)
        assert bad, f"refused valid {call!r}: {message}"
        assert any(_names(message, name) for name in bad), (message, bad)
        assert "job" not in app.registered_functions
        return
    assert not bad, f"accepted {call!r}"
    spec = fn.spec
    for name, value in call.items():
        stored = getattr(spec, name)
        if name == "gpu" and value is not None:
            assert stored == value.strip()
        elif name == "env":
            assert dict(stored) == {k: v if isinstance(v, str) else str(v) for k, v in (value or {}).items()}
        else:
            assert stored is value or stored == value
    assert app.registered_functions["job"] is fn


@pytest.mark.parametrize("field", sorted(RULES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fuzz_one_kwarg(field, data):
    value = data.draw(_values_for(field), label=field)
    kwargs = {field: value}
    _check_decoration(kwargs)


@FUZZ
@given(data=st.data())
def test_fuzz_several_kwargs(data):
    names = data.draw(st.sets(st.sampled_from(sorted(RULES)), min_size=1), label="kwargs")
    kwargs = {name: data.draw(_values_for(name), label=name) for name in sorted(names)}
    _check_decoration(kwargs)


# ---------------------------------------------------------------- App registration


def test_decoration_returns_a_function_with_the_spec():
    app = App("a")

    @app.function(image=IMAGE, gpu="T4", timeout=60)
    def train(steps=1):
        return steps

    assert isinstance(train, Function)
    assert train.name == "train" == train.__name__
    assert train.spec == function_spec("train", image=IMAGE, gpu="T4", timeout=60)
    assert dict(app.registered_functions) == {"train": train}


def test_registered_functions_is_read_only():
    app = App("a")
    app.function(image=IMAGE)(_job())
    with pytest.raises(TypeError):
        app.registered_functions["other"] = None


def test_duplicate_function_name_rejected():
    app = App("a")
    first = app.function(image=IMAGE)(_job())
    with pytest.raises(ValueError, match="job"):
        app.function(image=IMAGE, gpu="A100")(_job())
    assert app.registered_functions["job"] is first


def test_same_name_on_two_apps_is_fine():
    App("a").function(image=IMAGE)(_job())
    App("b").function(image=IMAGE)(_job())


def test_bare_decorator_without_parentheses_rejected():
    app = App("a")
    with pytest.raises(ValueError, match="image"):
        app.function(_job())


@pytest.mark.parametrize("target", [None, 3, "job", (lambda: None)])
def test_decorate_needs_a_named_def(target):
    app = App("a")
    with pytest.raises(ValueError):
        app.function(image=IMAGE)(target)


def test_second_local_entrypoint_rejected():
    app = App("a")

    @app.local_entrypoint()
    def main():
        pass

    assert app.entrypoint is main

    with pytest.raises(ValueError, match="main"):

        @app.local_entrypoint()
        def other():
            pass

    assert app.entrypoint is main


def test_local_entrypoint_returns_the_plain_function():
    app = App("a")

    def main(steps: int = 1):
        return steps

    assert app.local_entrypoint()(main) is main


# ---------------------------------------------------------------- calling a Function


def test_calling_directly_names_local_and_remote():
    app = App("a")
    fn = app.function(image=IMAGE)(_job())
    with pytest.raises(TypeError) as info:
        fn(3)
    message = str(info.value)
    assert "job.local(" in message and "job.remote(" in message


def test_local_runs_the_body_here():
    app = App("a")
    fn = app.function(image=IMAGE)(_job())
    assert fn.local() == 2
    assert fn.local(5) == 10
    assert fn.local(x="ab") == "abab"


def test_remote_without_backend_is_a_usage_error():
    app = App("a")
    fn = app.function(image=IMAGE)(_job())
    with pytest.raises(UsageError, match="no backend"):
        fn.remote(1)


class _Recorder:
    def __init__(self):
        self.calls = []

    def call(self, call):
        self.calls.append(call)
        return "ok"


def _bound():
    app = App("a")
    fn = app.function(image=IMAGE)(_job())
    backend = _Recorder()
    app._backend = backend
    return app, fn, backend


def test_remote_hands_a_function_call_to_the_backend():
    app, fn, backend = _bound()
    assert fn.remote(1, [2, {"k": None}], y=1.5) == "ok"
    (call,) = backend.calls
    assert call == FunctionCall("a", fn.spec, __file__, [1, [2, {"k": None}]], {"y": 1.5})


def test_arguments_take_what_json_dumps_takes_as_in_the_seed():
    app, fn, backend = _bound()
    fn.remote((1, 2), {1: "a", None: "b", False: "c"}, x=math.nan, y=-math.inf)
    (call,) = backend.calls
    assert call.args == [[1, 2], {"1": "a", "null": "b", "false": "c"}]
    assert math.isnan(call.kwargs["x"]) and call.kwargs["y"] == -math.inf


@pytest.mark.parametrize(
    "args, kwargs, where",
    [
        (({1, 2},), {}, "argument 0"),
        (({(1, 2): "x"},), {}, "key"),
        ((object(),), {}, "object"),
        (([1, [2, {"a": {3}}]],), {}, "set"),
        ((), {"x": {"y": b"bytes"}}, "bytes"),
        ((1, 2, {3}), {}, "argument 2"),
    ],
)
@pytest.mark.parametrize("bound", [False, True])
def test_non_json_arguments_refused_first(args, kwargs, where, bound):
    if bound:
        app, fn, backend = _bound()
    else:
        app, fn, backend = App("a"), None, None
        fn = app.function(image=IMAGE)(_job())
    with pytest.raises(TypeError) as info:  # the seed's type, and a UsageError (exit 2)
        fn.remote(*args, **kwargs)
    assert isinstance(info.value, UsageError)
    message = str(info.value)
    assert "JSON" in message and where in message
    assert "no backend" not in message
    if backend is not None:
        assert backend.calls == []


# ---------------------------------------------------------------- regressions


def test_env_key_with_trailing_newline_rejected():
    with pytest.raises(ValueError, match="env"):
        function_spec("f", image=IMAGE, env={"FOO\n": "x"})


def test_env_accepts_any_mapping():
    spec = function_spec("f", image=IMAGE, env=MappingProxyType({"A": "1"}))
    assert dict(spec.env) == {"A": "1"}


@pytest.mark.parametrize("field", ["timeout", "num_gpus", "min_cpu"])
def test_rejecting_a_gigantic_int_names_the_kwarg(field):
    with pytest.raises(ValueError) as info:
        function_spec("f", image=IMAGE, **{field: -(10**5000)})
    assert _names(str(info.value), field)
