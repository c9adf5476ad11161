"""runplz.domain.carry: what arguments and return values become on their way through JSON."""

from __future__ import annotations

import ast
import enum
import json
import math
from collections import OrderedDict, namedtuple
from pathlib import Path
from unittest.mock import Mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runplz.domain.carry as carry_module
from runplz.domain.carry import (
    MAX_DEPTH,
    MAX_NOTES,
    STAND_IN_LIMIT,
    Carried,
    NotJson,
    carry_return,
    plain_argument,
    plain_arguments,
)
from runplz.domain.payload import PROTOCOL, Dispatch, Result, Returned
from runplz.protocol.wire import decode_dispatch, decode_result, encode_dispatch, encode_result

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a, b) -> bool:
    """Equality where NaN equals NaN and types must match (1 is not 1.0 is not True)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def through_wire(value):
    """A value the target returns, as the driver reads it back."""
    carried = carry_return(value)
    text = encode_result(Result(PROTOCOL, "r", Returned(carried.value, carried.stand_ins)))
    outcome = decode_result(text).outcome
    return outcome.value, outcome.stand_ins


# ---------------------------------------------------------------- strategies

_floats = st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, -0.0])
_leaves = st.none() | st.booleans() | st.integers() | _floats | st.text()
json_values = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_keys = st.text(max_size=6) | st.integers() | _floats | st.booleans() | st.none()
dumps_values = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=4).map(tuple)
    | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)


class _Raises:
    def __repr__(self):
        raise RuntimeError("no repr")

    def tolist(self):
        raise ValueError("no list")


class _ItemOnly:
    def item(self):
        return 2.5


class _Liar(list):
    def __iter__(self):
        raise OSError("gone")


class _LongRepr:
    def __repr__(self):
        return "x" * (STAND_IN_LIMIT * 3)


class _SurrogateRepr:
    def __repr__(self):
        return "bad \ud800 repr"


class _ReprNotStr:
    def __repr__(self):
        return 42


class _Lt:
    def __lt__(self, other):
        raise ZeroDivisionError

    __hash__ = object.__hash__


_ODDITIES = [
    object, _Raises, _ItemOnly, lambda: _Liar([1]), _LongRepr, _SurrogateRepr, _ReprNotStr, Mock,
    lambda: b"bytes", lambda: 1j, lambda: range(3), lambda: len, lambda: type, lambda: Mock,
    lambda: Path("/x"), lambda: enum.Enum, lambda: "\ud800", lambda: 10**5000, _Lt, lambda: Ellipsis,
]


def _oddities():
    # built lazily: hypothesis repr()s the elements of sampled_from, and some of these refuse
    return st.integers(0, len(_ODDITIES) - 1).map(lambda index: _ODDITIES[index]())


_hashable = st.none() | st.booleans() | st.integers() | _floats | st.text(max_size=5) | st.tuples(st.integers()) | st.frozensets(st.integers(), max_size=3)
anything = st.recursive(
    _leaves | _oddities(),
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=4).map(tuple)
    | st.dictionaries(_hashable | st.builds(_Lt) | st.builds(object), children, max_size=4)
    | st.sets(_hashable, max_size=4)
    | st.frozensets(_hashable | st.builds(_Lt), max_size=4),
    max_leaves=12,
)


# ---------------------------------------------------------------- properties


@PROPS
@given(value=json_values)
def test_json_values_come_back_equal_without_stand_ins(value):
    carried = carry_return(value)
    assert carried.stand_ins == ()
    assert same(carried.value, value)
    back, notes = through_wire(value)
    assert same(back, value) and notes == ()
    assert same(plain_argument(value), value)


@PROPS
@given(value=dumps_values)
def test_values_json_dumps_takes_normalise_as_json_dumps_does(value):
    expected = json.loads(json.dumps(value))
    assert same(plain_argument(value), expected)
    assert same(carry_return(value).value, expected)
    assert carry_return(value).stand_ins == ()


@PROPS
@given(args=st.lists(dumps_values, max_size=3), kwargs=st.dictionaries(st.text(max_size=5), dumps_values, max_size=3))
def test_arguments_round_trip_through_the_dispatch(args, kwargs):
    plain_args, plain_kwargs = plain_arguments(args, kwargs)
    dispatch = Dispatch(PROTOCOL, "0", "r", "a", "s.py", "f", plain_args, plain_kwargs)
    decoded = decode_dispatch(encode_dispatch(dispatch))
    assert same(decoded.args, json.loads(json.dumps(args)))
    assert same(decoded.kwargs, json.loads(json.dumps(kwargs)))


@PROPS
@given(value=anything)
def test_carry_never_raises_and_its_result_crosses_the_wire(value):
    carried = carry_return(value)
    assert isinstance(carried, Carried)
    assert all(isinstance(note, str) for note in carried.stand_ins)
    assert len(carried.stand_ins) <= MAX_NOTES + 1
    back, notes = through_wire(value)
    assert same(back, carried.value) and notes == carried.stand_ins
    assert same(carry_return(value).value, carried.value)  # deterministic


@PROPS
@given(value=anything)
def test_strict_arguments_refuse_or_agree_with_json_dumps(value):
    try:
        expected = json.loads(json.dumps(value))
    except Exception:  # json.dumps refuses (or the value's own code raised)
        expected = NotJson
    try:
        got = plain_argument(value, "argument 0")
    except NotJson as exc:
        assert str(exc).startswith("argument 0") and "JSON cannot carry" in str(exc)
        got = NotJson
    if got is not NotJson:
        assert same(got, expected)
    elif expected is not NotJson:  # refused what json.dumps takes: only text UTF-8 cannot hold
        assert "surrogates" in str(_refusal(value)) or "too long" in str(_refusal(value))


def _refusal(value):
    try:
        plain_argument(value)
    except NotJson as exc:
        return exc


# ---------------------------------------------------------------- carried, not stood in


def test_ml_metrics_are_carried_as_floats():
    class Float32:  # what numpy's float32 looks like from outside
        def __init__(self, value):
            self.value = value

        def tolist(self):
            return float(self.value)

        def item(self):
            raise AssertionError("tolist comes first")

    class Array:
        def tolist(self):
            return [[1.0, math.nan], [math.inf, -math.inf]]

    value = {"loss": Float32(0.125), "grid": Array(), "nan": math.nan, "inf": math.inf, "tags": {"b", "a"}, "pair": (1, 2)}
    carried = carry_return(value)
    assert carried.stand_ins == ()
    assert same(carried.value, {
        "loss": 0.125, "grid": [[1.0, math.nan], [math.inf, -math.inf]], "nan": math.nan,
        "inf": math.inf, "tags": ["a", "b"], "pair": [1, 2],
    })


def test_item_is_used_when_there_is_no_tolist():
    assert carry_return(_ItemOnly()) == Carried(2.5, ())


def test_subclasses_of_json_types_become_the_plain_types():
    class Flag(enum.IntEnum):
        ON = 1

    class Name(str):
        def __str__(self):
            return "other"

    Point = namedtuple("Point", "x y")
    value = carry_return({"flag": Flag.ON, "name": Name("n"), "point": Point(1, 2), "od": OrderedDict(a=1)}).value
    assert value == {"flag": 1, "name": "n", "point": [1, 2], "od": {"a": 1}}
    assert type(value["flag"]) is int and type(value["name"]) is str and type(value["od"]) is dict


@pytest.mark.parametrize(
    "items, expected",
    [({3, 1, 2}, [1, 2, 3]), (frozenset({"b", "a"}), ["a", "b"]), ({1, "a", None}, [None, 1, "a"]), (set(), [])],
)
def test_sets_become_sorted_lists(items, expected):
    assert carry_return(items) == Carried(expected, ())


@pytest.mark.parametrize(
    "key, text",
    [(1, "1"), (-2, "-2"), (1.5, "1.5"), (True, "true"), (False, "false"), (None, "null"),
     (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")],
)
def test_keys_become_strings_as_json_dumps_writes_them(key, text):
    assert json.dumps({key: 0}) == json.dumps({text: 0})
    assert carry_return({key: 0}) == Carried({text: 0}, ())
    assert plain_argument({key: 0}) == {text: 0}


def test_a_numpy_like_key_is_its_number():
    class Int64:
        def __hash__(self):
            return 7

        def tolist(self):
            return 7

    assert carry_return({Int64(): "x"}) == Carried({"7": "x"}, ())


# ---------------------------------------------------------------- stand-ins


class Foo:
    def __repr__(self):
        return "Foo(weights=3)"


def test_an_object_is_stood_in_for_by_its_repr_and_its_siblings_stay():
    carried = carry_return({"loss": 0.1, "model": Foo()})
    assert carried.value == {"loss": 0.1, "model": "Foo(weights=3)"}
    assert carried.stand_ins == (
        "the return value['model'] is a Foo, which JSON cannot carry; .remote() gave back its repr() instead",
    )


def test_each_stand_in_names_where_it_sat():
    carried = carry_return([Foo(), {"a": [1, b"x"]}, {1, Foo()}])
    assert carried.value[0] == "Foo(weights=3)" and carried.value[1] == {"a": [1, "b'x'"]}
    wheres = [note.split(" is a ")[0] for note in carried.stand_ins]
    assert wheres == ["the return value[0]", "the return value[1]['a'][1]", "the return value[2][0]"]  # "Foo" sorts before "int"


def test_a_repr_that_raises_gives_the_type_name():
    carried = carry_return({"x": _Raises()})
    assert carried.value == {"x": "<_Raises object>"}
    (note,) = carried.stand_ins
    assert "_Raises whose .tolist() raised ValueError" in note and "'<_Raises object>'" in note


def test_a_long_repr_is_cut_with_a_marker():
    text = carry_return(_LongRepr()).value
    assert text == "x" * STAND_IN_LIMIT + f"... [{STAND_IN_LIMIT * 2} more characters]"


def test_a_cycle_is_a_stand_in_not_a_crash():
    loop = [1]
    loop.append(loop)
    table = {"a": 1}
    table["self"] = table
    carried = carry_return({"loop": loop, "table": table})
    assert carried.value == {"loop": [1, "[1, [...]]"], "table": {"a": 1, "self": "{'a': 1, 'self': {...}}"}}
    assert [n.split(",")[0] for n in carried.stand_ins] == [
        "the return value['loop'][1] is a list that contains itself",
        "the return value['table']['self'] is a dict that contains itself",
    ]


def test_shared_but_acyclic_parts_are_carried_twice():
    part = [1, 2]
    assert carry_return([part, part, {"p": part}]) == Carried([[1, 2], [1, 2], {"p": [1, 2]}], ())


def test_too_deep_nesting_and_endless_tolist_are_stand_ins():
    deep = []
    for _ in range(MAX_DEPTH + 50):
        deep = [deep]
    carried = carry_return(deep)
    assert "nested more than" in carried.stand_ins[0]
    json.dumps(carried.value)
    carried = carry_return({"m": Mock()})
    assert isinstance(carried.value["m"], str) and "went 200 levels deep" in carried.stand_ins[0]


def test_a_container_that_cannot_be_read_is_a_stand_in():
    carried = carry_return({"bad": _Liar([Foo()])})
    assert carried.value == {"bad": "[Foo(weights=3)]"}
    (note,) = carried.stand_ins
    assert "_Liar that could not be read (OSError)" in note


def test_an_odd_key_becomes_its_repr_and_is_noted():
    carried = carry_return({(1, 2): "a", "b": 2})
    assert carried.value == {"(1, 2)": "a", "b": 2}
    (note,) = carried.stand_ins
    assert note == (
        "the return value has a tuple key (1, 2), which JSON cannot carry; "
        ".remote() gave back its repr() as the key instead"
    )


def test_text_utf8_cannot_hold_is_escaped_and_noted():
    carried = carry_return({"s": "a\ud800b"})
    assert carried.value == {"s": "a\\ud800b"}
    assert "lone surrogates" in carried.stand_ins[0]
    assert carry_return(_SurrogateRepr()).value == "bad \\ud800 repr"


def test_an_int_too_long_for_text_is_a_stand_in():
    carried = carry_return(10**5000)
    assert carried.value.startswith("<int of ") and "too long" in carried.stand_ins[0]


def test_notes_are_capped_and_the_rest_counted():
    carried = carry_return([Foo() for _ in range(MAX_NOTES + 5)])
    assert len(carried.stand_ins) == MAX_NOTES + 1
    assert carried.stand_ins[-1] == "... and 5 more parts of the return value came back as stand-ins"
    assert carried.value == ["Foo(weights=3)"] * (MAX_NOTES + 5)


def test_a_class_is_not_called_through_its_tolist():
    class Array:
        def tolist(self):
            return [1]

    carried = carry_return(Array)
    assert carried.value.startswith("<class ") and "is a type" in carried.stand_ins[0]


# ---------------------------------------------------------------- arguments (strict)


@pytest.mark.parametrize(
    "value, problem",
    [
        ({1}, "argument 0 is a set, which JSON cannot carry"),
        ([1, {"a": b"x"}], "argument 0[1]['a'] is a bytes, which JSON cannot carry"),
        ({(1,): 1}, "argument 0 has a tuple key (1,), which JSON cannot carry"),
        (Foo(), "argument 0 is a Foo, which JSON cannot carry"),
        ("\udc80", "argument 0 is a str holding lone surrogates, which JSON cannot carry"),
    ],
)
def test_arguments_json_cannot_carry_are_refused_naming_where(value, problem):
    with pytest.raises(NotJson) as info:
        plain_argument(value, "argument 0")
    assert str(info.value) == problem


def test_a_cyclic_argument_is_refused():
    loop = []
    loop.append(loop)
    with pytest.raises(NotJson, match=r"argument 0\[0\] is a list that contains itself"):
        plain_argument(loop, "argument 0")


def test_arguments_keep_nan_and_normalise_tuples_and_keys():
    args, kwargs = plain_arguments((math.nan, (1, (2,)), {1: "a", None: "b"}), {"lr": -math.inf})
    assert same(args, [math.nan, [1, [2]], {"1": "a", "null": "b"}])
    assert kwargs == {"lr": -math.inf}


def test_numpy_like_arguments_are_refused_as_json_dumps_does():
    class Float32:
        def tolist(self):
            return 1.0

    with pytest.raises(NotJson, match="is a Float32"):
        plain_argument(Float32(), "argument 0")


# ---------------------------------------------------------------- the module


def test_carry_is_stdlib_only_and_never_imports_numpy():
    tree = ast.parse(Path(carry_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "typing"}, imported
