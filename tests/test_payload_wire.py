import json
import math
import warnings
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runplz.domain.errors import ArgumentError, ProtocolError, RemoteError, StandInWarning, UsageError
from runplz.domain.payload import (
    PROTOCOL,
    Dispatch,
    Raised,
    Result,
    Returned,
    check_call_args,
    settle,
)
from runplz.protocol.wire import decode_dispatch, decode_result, encode_dispatch, encode_result

GOLDEN = Path(__file__).parent / "golden"
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

RUN = "20240501-120000-ab12"

DISPATCH = Dispatch(
    protocol=1,
    runplz_version="0.1.0",
    run_id=RUN,
    app="my-job",
    script="jobs/train.py",
    function="train",
    args=[1000, "big", [0.5, None, True, -3.25e-07]],
    kwargs={"name": "h\u00e9llo \u2603", "opts": {"z": {"nested": False}, "a": []}},
)
RETURNED = Result(protocol=1, run_id=RUN, outcome=Returned({"steps": [1, 2], "loss": 0.25, "note": None}))
RAISED = Result(
    protocol=1,
    run_id=RUN,
    outcome=Raised(
        type="ValueError",
        message='bad "input"',
        traceback='Traceback (most recent call last):\n  File "jobs/train.py", line 3, in train\nValueError: bad "input"\n',
        exit_code=1,
    ),
)


def _golden(name):
    return (GOLDEN / name).read_text(encoding="utf-8")


def test_protocol_number():
    assert PROTOCOL == 1


# ---------------------------------------------------------------- golden


@pytest.mark.parametrize(
    "name, record, encode, decode",
    [
        ("dispatch.json", DISPATCH, encode_dispatch, decode_dispatch),
        ("result_returned.json", RETURNED, encode_result, decode_result),
        ("result_raised.json", RAISED, encode_result, decode_result),
    ],
)
def test_golden(name, record, encode, decode):
    text = _golden(name)
    assert encode(record) == text
    assert decode(text) == record
    assert decode(text.encode("utf-8")) == record


def test_golden_outcome_is_tagged_by_kind():
    assert json.loads(_golden("result_returned.json"))["outcome"]["kind"] == "returned"
    assert json.loads(_golden("result_raised.json"))["outcome"]["kind"] == "raised"


# ---------------------------------------------------------------- round trip

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
_text = st.text(max_size=20)

dispatches = st.builds(
    Dispatch,
    protocol=st.just(PROTOCOL),
    runplz_version=_text,
    run_id=_text,
    app=_text,
    script=_text,
    function=_text,
    args=st.lists(_json, max_size=3),
    kwargs=st.dictionaries(_text, _json, max_size=3),
)
outcomes = st.one_of(
    st.builds(Returned, value=_json, stand_ins=st.lists(st.text(max_size=20), max_size=2)),
    st.builds(Raised, type=_text, message=st.text(), traceback=st.text(), exit_code=st.integers()),
)
results = st.builds(Result, protocol=st.just(PROTOCOL), run_id=_text, outcome=outcomes)


@PROPS
@given(dispatch=dispatches)
def test_dispatch_round_trip(dispatch):
    text = encode_dispatch(dispatch)
    decoded = decode_dispatch(text)
    assert decoded == dispatch
    assert encode_dispatch(decoded) == text


@PROPS
@given(result=results)
def test_result_round_trip(result):
    text = encode_result(result)
    decoded = decode_result(text)
    assert decoded == result
    assert type(decoded.outcome) is type(result.outcome)
    assert encode_result(decoded) == text


@LIGHT
@given(dispatch=dispatches, result=results)
def test_encoding_is_one_line_of_json(dispatch, result):
    for text in (encode_dispatch(dispatch), encode_result(result)):
        assert "\n" not in text
        assert isinstance(json.loads(text), dict)


# ---------------------------------------------------------------- rejection

_DISPATCH_FIELDS = {
    "protocol": int,
    "runplz_version": str,
    "run_id": str,
    "app": str,
    "script": str,
    "function": str,
    "args": list,
    "kwargs": dict,
}
_RAISED_FIELDS = {"type": str, "message": str, "traceback": str, "exit_code": int}


def _wrong(kind):
    def mismatched(value):
        if kind is int:
            return not isinstance(value, int) or isinstance(value, bool)
        return not isinstance(value, kind)

    return _json.filter(mismatched)


@LIGHT
@given(data=st.data(), dispatch=dispatches)
def test_dispatch_wrong_type_rejected(data, dispatch):
    field = data.draw(st.sampled_from(sorted(_DISPATCH_FIELDS)))
    record = json.loads(encode_dispatch(dispatch))
    record[field] = data.draw(_wrong(_DISPATCH_FIELDS[field]))
    with pytest.raises(ProtocolError):
        decode_dispatch(json.dumps(record))


@LIGHT
@given(data=st.data(), result=results)
def test_result_wrong_type_rejected(data, result):
    record = json.loads(encode_result(result))
    where = data.draw(st.sampled_from(["protocol", "run_id", "outcome", "kind", "raised"]))
    if where == "protocol":
        record["protocol"] = data.draw(_wrong(int))
    elif where == "run_id":
        record["run_id"] = data.draw(_wrong(str))
    elif where == "outcome":
        record["outcome"] = data.draw(_wrong(dict))
    elif where == "kind":
        record["outcome"]["kind"] = data.draw(_json.filter(lambda v: v not in ("returned", "raised")))
    else:
        field = data.draw(st.sampled_from(sorted(_RAISED_FIELDS)))
        record["outcome"] = {"kind": "raised", "type": "E", "message": "", "traceback": "", "exit_code": 1}
        record["outcome"][field] = data.draw(_wrong(_RAISED_FIELDS[field]))
    with pytest.raises(ProtocolError):
        decode_result(json.dumps(record))


@LIGHT
@given(data=st.data(), dispatch=dispatches, result=results, value=_json)
def test_extra_keys_rejected(data, dispatch, result, value):
    record = json.loads(encode_dispatch(dispatch))
    key = data.draw(_text.filter(lambda k: k not in record))
    record[key] = value
    with pytest.raises(ProtocolError):
        decode_dispatch(json.dumps(record))

    record = json.loads(encode_result(result))
    target = data.draw(st.sampled_from([record, record["outcome"]]))
    key = data.draw(_text.filter(lambda k: k not in target and k != "stand_ins"))
    target[key] = value
    with pytest.raises(ProtocolError):
        decode_result(json.dumps(record))


@LIGHT
@given(data=st.data(), dispatch=dispatches, result=results)
def test_missing_keys_rejected(data, dispatch, result):
    record = json.loads(encode_dispatch(dispatch))
    del record[data.draw(st.sampled_from(sorted(record)))]
    with pytest.raises(ProtocolError):
        decode_dispatch(json.dumps(record))

    record = json.loads(encode_result(result))
    target = data.draw(st.sampled_from([record, record["outcome"]]))
    del target[data.draw(st.sampled_from(sorted(set(target) - {"stand_ins"})))]
    with pytest.raises(ProtocolError):
        decode_result(json.dumps(record))


@LIGHT
@given(version=st.integers().filter(lambda v: v != PROTOCOL) | st.sampled_from([None, "1", [1]]))
def test_wrong_protocol_rejected(version):
    for text, decode in ((_golden("dispatch.json"), decode_dispatch), (_golden("result_raised.json"), decode_result)):
        record = json.loads(text)
        record["protocol"] = version
        with pytest.raises(ProtocolError, match="protocol"):
            decode(json.dumps(record))


def test_wrong_protocol_message_names_both_versions():
    record = json.loads(_golden("dispatch.json"))
    record["protocol"] = 2
    with pytest.raises(ProtocolError, match=r"speaks protocol 2; this runplz speaks 1"):
        decode_dispatch(json.dumps(record))


@pytest.mark.parametrize("version", [True, 1.0])
def test_protocol_must_be_an_int(version):
    record = json.loads(_golden("dispatch.json"))
    record["protocol"] = version
    with pytest.raises(ProtocolError):
        decode_dispatch(json.dumps(record))


def test_missing_protocol_rejected():
    record = json.loads(_golden("result_returned.json"))
    del record["protocol"]
    with pytest.raises(ProtocolError, match="protocol"):
        decode_result(json.dumps(record))


@pytest.mark.parametrize("text", ["", "   ", "{", "not json", "{'a': 1}", '{"protocol": 1,}', b"\xff\xfe\x00", b""])
@pytest.mark.parametrize("decode", [decode_dispatch, decode_result])
def test_non_json_rejected(text, decode):
    with pytest.raises(ProtocolError, match="not JSON"):
        decode(text)


@pytest.mark.parametrize("text", ["[]", "null", "1", '"x"', "[1, 2]", "true"])
@pytest.mark.parametrize("decode", [decode_dispatch, decode_result])
def test_non_object_rejected(text, decode):
    with pytest.raises(ProtocolError, match="object"):
        decode(text)


@LIGHT
@given(blob=st.text() | st.binary())
def test_arbitrary_input_is_a_protocol_error(blob):
    for decode in (decode_dispatch, decode_result):
        with pytest.raises(ProtocolError):
            decode(blob)


@pytest.mark.parametrize("outcome", ["x", None, 1, [], {"kind": "returned"}, {"kind": "thrown", "value": 1}])
def test_bad_outcome_rejected(outcome):
    record = {"protocol": 1, "run_id": RUN, "outcome": outcome}
    with pytest.raises(ProtocolError):
        decode_result(json.dumps(record))


# ---------------------------------------------------------------- check_call_args

_bad_leaf = st.sampled_from([{1, 2}, frozenset(), object(), b"x", 1j, {(1,): 1}, {frozenset(): 1}])


@st.composite
def _with_bad_leaf(draw):
    value = draw(_bad_leaf)
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            siblings = draw(st.lists(_json, max_size=3))
            siblings.insert(draw(st.integers(0, len(siblings))), value)
            value = siblings
        else:
            siblings = draw(st.dictionaries(_text, _json, max_size=3))
            siblings[draw(_text)] = value
            value = siblings
    return value


@LIGHT
@given(value=_json)
def test_json_values_pass_unchanged(value):
    assert check_call_args("f", (value,), {"k": value}) == ([value], {"k": value})


@LIGHT
@given(value=_with_bad_leaf(), position=st.booleans())
def test_bad_leaf_anywhere_is_found(value, position):
    args, kwargs = ((value,), {}) if position else ((), {"key": value})
    with pytest.raises(ArgumentError) as info:
        check_call_args("train", args, kwargs)
    assert isinstance(info.value, UsageError) and isinstance(info.value, TypeError)
    message = str(info.value)
    assert message.startswith("train.remote(): ") and "JSON" in message
    assert message.endswith("; arguments must be JSON")


def test_check_call_args_names_the_argument():
    with pytest.raises(ArgumentError, match=r"^f.remote\(\): argument 1\[0\] is a set, which JSON cannot carry; arguments must be JSON$"):
        check_call_args("f", (1, [set()]), {})
    with pytest.raises(ArgumentError, match=r"argument 'lr'\['x'\] is a bytes"):
        check_call_args("f", (), {"lr": {"x": b""}})


def test_check_call_args_normalises_the_json_dumps_way():
    args, kwargs = check_call_args("f", (math.nan, (1, 2), {1: "a", 2.5: "b", False: "c", None: "d"}), {"lr": math.inf})
    assert math.isnan(args[0])
    assert args[1:] == [[1, 2], {"1": "a", "2.5": "b", "false": "c", "null": "d"}]
    assert kwargs == {"lr": math.inf}
    assert type(args) is list and type(kwargs) is dict


def test_nan_and_inf_arguments_cross_the_wire():
    args, kwargs = check_call_args("f", (math.nan, [math.inf]), {"lr": -math.inf})
    text = encode_dispatch(attrs.evolve(DISPATCH, args=args, kwargs=kwargs))
    assert "NaN" in text and "-Infinity" in text
    decoded = decode_dispatch(text)
    assert math.isnan(decoded.args[0]) and decoded.args[1] == [math.inf] and decoded.kwargs == {"lr": -math.inf}


# ---------------------------------------------------------------- settle


@pytest.mark.parametrize("value", [None, 0, "", [], {"a": [1, None]}, False, 2.5])
def test_settle_returns_the_value(value):
    assert settle(Result(1, "r", Returned(value)), 0, "r") == value


def test_settle_raises_remote_error_with_details():
    with pytest.raises(RemoteError) as info:
        settle(RAISED, 3, RUN)
    err = info.value
    assert (err.remote_type, err.remote_message, err.remote_traceback, err.exit_code) == (
        "ValueError",
        'bad "input"',
        RAISED.outcome.traceback,
        3,
    )
    assert str(err) == 'ValueError: bad "input"'


@pytest.mark.parametrize("process_code, recorded, expected", [(0, 7, 7), (0, 0, 1), (2, 7, 2)])
def test_settle_exit_code_is_never_zero(process_code, recorded, expected):
    result = Result(1, "r", Raised("KeyError", "", "tb", recorded))
    with pytest.raises(RemoteError) as info:
        settle(result, process_code, "r")
    assert info.value.exit_code == expected
    assert str(info.value) == "KeyError"


@pytest.mark.parametrize("exit_code, expected", [(137, 137), (0, 1), (-9, -9)])
def test_settle_without_result(exit_code, expected):
    with pytest.raises(RemoteError) as info:
        settle(None, exit_code, "r")
    err = info.value
    assert err.exit_code == expected
    assert f"code {exit_code}" in str(err)
    assert err.remote_traceback == ""


def test_settle_ignores_a_result_from_another_run():
    with pytest.raises(RemoteError, match="code 1"):
        settle(RETURNED, 1, "some-other-run")


def test_records_are_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        DISPATCH.run_id = "x"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RAISED.outcome.exit_code = 0


def test_settle_warns_once_per_stand_in_at_the_callers_line():
    result = Result(1, "r", Returned({"loss": 0.1, "model": "Foo()"}, ["note one", "note two"]))
    with pytest.warns(StandInWarning) as caught:
        value = settle(result, 0, "r")  # the warning points here
    assert value == {"loss": 0.1, "model": "Foo()"}
    assert [str(w.message) for w in caught] == ["note one", "note two"]
    assert {w.filename for w in caught} == {__file__}


def test_settle_without_stand_ins_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert settle(RETURNED, 0, RUN) == RETURNED.outcome.value


# ---------------------------------------------------------------- stand-in notes on the wire


def test_stand_ins_are_written_only_when_there_are_some():
    assert "stand_ins" not in encode_result(RETURNED)
    noted = Result(1, RUN, Returned("Foo()", ["the return value is a Foo"]))
    text = encode_result(noted)
    assert json.loads(text)["outcome"]["stand_ins"] == ["the return value is a Foo"]
    assert decode_result(text) == noted
    assert decode_result(text).outcome.stand_ins == ("the return value is a Foo",)


@pytest.mark.parametrize("notes", ["a note", [1], [None], {"a": 1}, None])
def test_stand_ins_must_be_a_list_of_strings(notes):
    record = json.loads(_golden("result_returned.json"))
    record["outcome"]["stand_ins"] = notes
    with pytest.raises(ProtocolError, match="stand_ins"):
        decode_result(json.dumps(record))


def test_a_raised_outcome_has_no_stand_ins():
    record = json.loads(_golden("result_raised.json"))
    record["outcome"]["stand_ins"] = []
    with pytest.raises(ProtocolError):
        decode_result(json.dumps(record))


# ---------------------------------------------------------------- NaN and Infinity


@pytest.mark.parametrize("literal, check", [("NaN", math.isnan), ("Infinity", lambda v: v == math.inf), ("-Infinity", lambda v: v == -math.inf)])
def test_non_finite_numbers_cross_in_values(literal, check):
    text = '{"outcome": {"kind": "returned", "value": [%s]}, "protocol": 1, "run_id": "r"}' % literal
    (value,) = decode_result(text).outcome.value
    assert isinstance(value, float) and check(value)
    assert encode_result(Result(1, "r", Returned([value]))) == text


@pytest.mark.parametrize(
    "text",
    [
        '{"outcome": {"kind": "returned", "value": 1}, "protocol": NaN, "run_id": "r"}',
        '{"outcome": {"kind": "returned", "value": 1}, "protocol": 1, "run_id": NaN}',
        '{"outcome": {"kind": "raised", "type": "E", "message": "", "traceback": "", "exit_code": Infinity}, "protocol": 1, "run_id": "r"}',
        '{"outcome": {"kind": "returned", "value": 1, "stand_ins": [NaN]}, "protocol": 1, "run_id": "r"}',
        '{"outcome": {"kind": "returned", "value": nan}, "protocol": 1, "run_id": "r"}',
    ],
)
def test_non_finite_numbers_stay_out_of_every_other_field(text):
    with pytest.raises(ProtocolError):
        decode_result(text)


def test_a_deep_value_does_not_exhaust_the_stack():
    deep = []
    for _ in range(180):
        deep = [deep, {"k": [math.nan]}]
    text = encode_result(Result(1, "r", Returned(deep)))
    assert encode_result(decode_result(text)) == text
