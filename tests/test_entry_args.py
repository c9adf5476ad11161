import inspect
import keyword
import math
from typing import Optional

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runplz.domain.entry_args import HelpRequested, help_text, params_of, parse, render
from runplz.domain.errors import UsageError

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def main(
    steps: int,
    dataset: str = "small",
    lr: float = 0.1,
    verbose: bool = False,
    seed: Optional[int] = None,
    log_file: str = "log.txt",
    *rest,
    **extra,
):
    pass


P = params_of(main)


def _parse(argv, params=P):
    return parse(params, argv, "main")


# ---------------------------------------------------------------- params_of


def test_params_of_reads_annotations_and_defaults():
    assert [(p.name, p.kind, p.optional, p.required) for p in P] == [
        ("steps", int, False, True),
        ("dataset", str, False, False),
        ("lr", float, False, False),
        ("verbose", bool, False, False),
        ("seed", int, True, False),
        ("log_file", str, False, False),
    ]
    assert [p.flag for p in P] == ["--steps", "--dataset", "--lr", "--verbose", "--seed", "--log-file"]


def test_unannotated_params_are_typed_from_defaults():
    def f(a, b=3, c=2.5, d=True, e="x", g=None, h=[1]):
        pass

    kinds = {p.name: (p.kind, p.optional) for p in params_of(f)}
    assert kinds == {
        "a": (str, False),
        "b": (int, False),
        "c": (float, False),
        "d": (bool, False),
        "e": (str, False),
        "g": (str, True),
        "h": (None, False),
    }
    assert _parse(["--a=1", "--b=4", "--c=1e3", "--no-d", "--e=y", "--g=z"], params_of(f)) == {
        "a": "1", "b": 4, "c": 1000.0, "d": False, "e": "y", "g": "z",
    }


def test_optional_spellings():
    def f(a: Optional[int] = None, b: "int | None" = None, c: "Optional[float]" = None, d: "str" = "s"):
        pass

    assert [(p.kind, p.optional) for p in params_of(f)] == [(int, True), (int, True), (float, True), (str, False)]


def test_positional_only_and_var_params_are_not_flags():
    def f(a, /, b, *args, c=1, **kwargs):
        pass

    assert [p.name for p in params_of(f)] == ["b", "c"]


def test_unsupported_type_cannot_be_given():
    def f(items: list = ()):
        pass

    with pytest.raises(UsageError, match="--items"):
        _parse(["--items=1"], params_of(f))
    assert _parse([], params_of(f)) == {}


# ---------------------------------------------------------------- parse


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps=10", "--dataset=big"],
        ["--steps", "10", "--dataset", "big"],
        ["--steps=10", "--dataset", "big"],
        ["--dataset", "big", "--steps", "10"],
    ],
)
def test_equals_and_space_forms(argv):
    assert _parse(argv) == {"steps": 10, "dataset": "big"}


def test_only_given_flags_are_returned():
    assert _parse(["--steps=1"]) == {"steps": 1}


@pytest.mark.parametrize("flag", ["--log-file", "--log_file"])
def test_dash_and_underscore_both_accepted(flag):
    assert _parse(["--steps=1", f"{flag}=out.txt"]) == {"steps": 1, "log_file": "out.txt"}


def test_space_form_value_may_start_with_dashes():
    assert _parse(["--steps", "-3", "--dataset", "--weird", "--lr", "-inf"]) == {
        "steps": -3, "dataset": "--weird", "lr": -math.inf,
    }


def test_equals_form_keeps_later_equals_signs():
    assert _parse(["--steps=1", "--dataset=a=b=c", "--log-file="]) == {
        "steps": 1, "dataset": "a=b=c", "log_file": "",
    }


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--verbose"], True),
        (["--no-verbose"], False),
        (["--no_verbose"], False),
        (["--verbose=false"], False),
        (["--verbose=False"], False),
        (["--verbose=0"], False),
        (["--verbose=no"], False),
        (["--verbose=off"], False),
        (["--verbose=true"], True),
        (["--verbose=TRUE"], True),
        (["--verbose=1"], True),
        (["--verbose=yes"], True),
        (["--verbose=on"], True),
    ],
)
def test_bool_flags(argv, expected):
    assert _parse(["--steps=1", *argv]) == {"steps": 1, "verbose": expected}


@pytest.mark.parametrize("argv", [["--verbose=maybe"], ["--verbose="], ["--no-verbose=true"]])
def test_bad_bool_values(argv):
    with pytest.raises(UsageError, match="verbose"):
        _parse(["--steps=1", *argv])


def test_bool_does_not_take_a_separate_value():
    with pytest.raises(UsageError, match="'true'"):
        _parse(["--steps=1", "--verbose", "true"])


def test_no_prefix_only_for_bools():
    with pytest.raises(UsageError, match="no flag --no-steps"):
        _parse(["--no-steps"])


def test_optional_int():
    assert _parse(["--steps=1", "--seed=42"]) == {"steps": 1, "seed": 42}
    assert _parse(["--steps=1", "--seed", "-7"]) == {"steps": 1, "seed": -7}
    with pytest.raises(UsageError, match="--seed"):
        _parse(["--steps=1", "--seed=None"])


@pytest.mark.parametrize("argv", [["--steps=1.5"], ["--steps=ten"], ["--steps="], ["--steps=1", "--lr=fast"]])
def test_bad_numbers(argv):
    with pytest.raises(UsageError, match="expects"):
        _parse(argv)


def test_float_accepts_inf_and_exponents():
    assert _parse(["--steps=1", "--lr=inf"])["lr"] == math.inf
    assert _parse(["--steps=1", "--lr=-1e-3"])["lr"] == -0.001


def test_missing_required():
    with pytest.raises(UsageError) as info:
        _parse(["--dataset=big"])
    assert "--steps INT" in str(info.value)


def test_missing_value_at_end():
    with pytest.raises(UsageError, match="--dataset needs a value"):
        _parse(["--steps=1", "--dataset"])


def test_unknown_flag_lists_the_known_flags():
    with pytest.raises(UsageError) as info:
        _parse(["--steps=1", "--epochs=3"])
    message = str(info.value)
    assert "--epochs" in message
    for p in P:
        assert p.flag in message


def test_unknown_flag_with_no_params():
    def f():
        pass

    with pytest.raises(UsageError, match="none"):
        _parse(["--x=1"], params_of(f))
    assert _parse([], params_of(f)) == {}


@pytest.mark.parametrize("argv", [["--log=x"], ["--log-f=x"], ["--ste=1"], ["--verb"], ["--no-verb"], ["--STEPS=1"]])
def test_no_abbreviation_matching(argv):
    with pytest.raises(UsageError, match="no flag"):
        _parse(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps=1", "--steps=2"],
        ["--steps=1", "--steps", "1"],
        ["--steps=1", "--verbose", "--no-verbose"],
        ["--steps=1", "--verbose", "--verbose"],
        ["--steps=1", "--log-file=a", "--log_file=b"],
    ],
)
def test_repeated_flag(argv):
    with pytest.raises(UsageError, match="more than once"):
        _parse(argv)


@pytest.mark.parametrize("argv", [["10"], ["--steps=1", "extra"], ["-s", "1"], ["--steps=1", "--"], ["--steps=1", "-"]])
def test_positional_tokens_rejected(argv):
    with pytest.raises(UsageError, match="unexpected argument"):
        _parse(argv)


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--steps=1", "--help"], ["--help", "--bogus", "x"]])
def test_help(argv):
    result = _parse(argv)
    assert isinstance(result, HelpRequested)
    for p in P:
        assert p.flag in result.text


def test_help_as_a_space_form_value_is_a_value():
    assert _parse(["--steps=1", "--dataset", "--help"]) == {"steps": 1, "dataset": "--help"}


def test_help_text_lists_every_flag_with_types_and_defaults():
    text = help_text(P, "main", "runplz local job.py")
    assert text.startswith("Usage: runplz local job.py [FLAGS]\n")
    assert "--steps INT" in text and "required" in text
    assert "--dataset TEXT" in text and "default: 'small'" in text
    assert "--lr FLOAT" in text and "default: 0.1" in text
    assert "--verbose/--no-verbose" in text
    assert "--seed INT" in text and "default: None" in text
    assert "--log-file TEXT" in text
    assert _parse(["-h"]) == HelpRequested(help_text(P, "main"))


def test_help_text_without_params():
    def f():
        pass

    assert "(none)" in help_text(params_of(f), "f")


# ---------------------------------------------------------------- render


def test_render_examples():
    values = {"steps": 3, "dataset": "-x y", "lr": math.inf, "verbose": False, "seed": -1, "log_file": ""}
    argv = render(P, values)
    assert argv == ["--steps=3", "--dataset=-x y", "--lr=inf", "--verbose=false", "--seed=-1", "--log-file="]
    assert _parse(argv) == values


def test_render_skips_absent_values():
    assert render(P, {"steps": 1, "verbose": True}) == ["--steps=1", "--verbose=true"]


# ---------------------------------------------------------------- round trip property

_TYPES = {
    "int": (int, st.integers()),
    "float": (float, st.floats(allow_nan=False)),
    "str": (str, st.text(st.characters(blacklist_characters="\x00"))),
    "bool": (bool, st.booleans()),
    "optional_int": (Optional[int], st.integers()),
}
_identifier = st.text(
    st.characters(whitelist_categories=["Lu", "Ll", "Nd"], whitelist_characters="_", max_codepoint=0x24F),
    min_size=1,
    max_size=12,
).filter(lambda s: s.isidentifier() and not keyword.iskeyword(s))


@st.composite
def _signatures(draw):
    names = draw(st.lists(_identifier, min_size=0, max_size=6, unique=True))
    specs = []
    for name in names:
        type_key = draw(st.sampled_from(sorted(_TYPES)))
        annotation, values = _TYPES[type_key]
        annotated = type_key == "optional_int" or draw(st.booleans())
        if type_key == "optional_int":
            default = draw(st.sampled_from([inspect.Parameter.empty, None]))
        elif annotated:
            default = draw(st.one_of(st.just(inspect.Parameter.empty), values))
        else:
            default = draw(values)
        specs.append((name, type_key, annotation if annotated else inspect.Parameter.empty, default, values))
    bools = {name for name, key, *_ in specs if key == "bool"}
    assume(not any(name.startswith("no_") and name[3:] in bools for name, *_ in specs))
    assume("help" not in bools)
    return specs


def _build(specs):
    ordered = sorted(specs, key=lambda s: s[3] is not inspect.Parameter.empty)
    parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)
        for name, _, annotation, default, _ in ordered
    ]

    def func(*args, **kwargs):
        pass

    func.__signature__ = inspect.Signature(parameters)
    func.__annotations__ = {
        name: annotation for name, _, annotation, _, _ in ordered if annotation is not inspect.Parameter.empty
    }
    return func


@PROPS
@given(data=st.data(), specs=_signatures())
def test_render_parse_round_trip(data, specs):
    params = params_of(_build(specs))
    assert {p.name for p in params} == {s[0] for s in specs}
    values = {}
    for name, _, _, default, strategy in specs:
        if default is inspect.Parameter.empty or data.draw(st.booleans(), label=f"give {name}"):
            values[name] = data.draw(strategy, label=name)
    argv = render(params, values)
    assert parse(params, argv, "f") == values
    assert all(type(parse(params, argv, "f")[k]) is type(v) for k, v in values.items())


@PROPS
@given(data=st.data(), specs=_signatures())
def test_space_form_round_trip(data, specs):
    params = params_of(_build(specs))
    values = {}
    argv = []
    for p in params:
        spec = next(s for s in specs if s[0] == p.name)
        if not p.required and not data.draw(st.booleans()):
            continue
        value = data.draw(spec[4], label=p.name)
        values[p.name] = value
        if p.kind is bool:
            argv.append(p.flag if value else "--no-" + p.flag[2:])
        else:
            argv += [p.flag, repr(value) if p.kind is float else str(value)]
    assert parse(params, argv, "f") == values


@LIGHT
@given(specs=_signatures())
def test_help_lists_every_flag(specs):
    params = params_of(_build(specs))
    result = parse(params, ["--help"], "f")
    assert isinstance(result, HelpRequested)
    for p in params:
        assert p.flag in result.text


@LIGHT
@given(specs=_signatures(), name=_identifier)
def test_unknown_flag_always_refused(specs, name):
    params = params_of(_build(specs))
    taken = {p.name for p in params} | {"no_" + p.name for p in params if p.kind is bool}
    assume(name not in taken)
    with pytest.raises(UsageError, match="no flag"):
        parse(params, [f"--{name}=1"], "f")


# ---------------------------------------------------------------- regressions


def test_render_leaves_a_default_none_out():
    def f(x: Optional[int] = None):
        pass

    params = params_of(f)
    assert render(params, {"x": None}) == []
    assert parse(params, [], "f") == {}


def test_render_bool_false_next_to_a_no_param():
    def f(cache: bool = True, no_cache: bool = False):
        pass

    params = params_of(f)
    values = {"cache": False, "no_cache": True}
    assert parse(params, render(params, values), "f") == values


def test_render_bool_named_help():
    def f(help: bool = False):
        pass

    params = params_of(f)
    assert parse(params, render(params, {"help": True}), "f") == {"help": True}
