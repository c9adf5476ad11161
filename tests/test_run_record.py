"""Run events and their JSON lines: round trip, golden file, forward compatibility."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runplz.domain.errors import UsageError
from runplz.domain.run_record import (
    PHASES, Box, Detached, Ended, ImageBuilt, Note, Phase, PhaseDone, RunNotFound, Started, Teardown,
    decode_event, decode_events, encode_event, encode_events, resolve_run, valid_run_id,
)

GOLDEN = Path(__file__).parent / "golden" / "run_events.jsonl"
T0 = 1_714_564_800.0

RECORD = (
    Started(
        run="20240501-120000-a1b2c3", backend="brev", target="runplz-demo-a1b2c3", app="demo",
        function="train", args=("--steps", "2"), env_names=("HF_TOKEN", "WANDB_API_KEY"),
        outputs="/home/me/proj/outputs", at=T0, driver_pid=4242, driver_started="987654", driver_host="laptop",
    ),
    Phase("provision", T0 + 0.5),
    Box("gpu_1x_a10", 0.75, T0 + 1.0, name="runplz-demo-a1b2c3"),
    PhaseDone("provision", 95.25, T0 + 95.75),
    Phase("connect", T0 + 95.75),
    PhaseDone("connect", 3.5, T0 + 99.25),
    Phase("upload", T0 + 99.25),
    PhaseDone("upload", 1.75, T0 + 101.0, size=2_345_678, detail="rsync"),
    Phase("build", T0 + 101.0),
    ImageBuilt("sha256:0123456789abcdef0123456789abcdef", T0 + 160.0),
    PhaseDone("build", 59.0, T0 + 160.0),
    Phase("run", T0 + 160.0),
    Note("job printed 3 lines of \"warnings\" \u00e9", T0 + 200.0),
    PhaseDone("run", 600.0, T0 + 760.0),
    Phase("collect", T0 + 760.0),
    PhaseDone("collect", 2.0, T0 + 762.0, size=1024),
    Ended(0, "ok", T0 + 762.5),
)


def test_golden_json_lines():
    text = GOLDEN.read_text(encoding="utf-8")
    assert encode_events(RECORD) == text
    assert decode_events(text) == RECORD
    assert decode_events(text.encode()) == RECORD
    first = json.loads(text.splitlines()[0])
    assert first["v"] == 1 and first["kind"] == "started" and first["env_names"] == ["HF_TOKEN", "WANDB_API_KEY"]


_at = st.floats(allow_nan=False, allow_infinity=False)
_text = st.text(max_size=20)
_strs = st.lists(_text, max_size=4).map(tuple)
EVENTS = st.one_of(
    st.builds(Started, _text, _text, _text, _text, _text, _strs, _strs, _text, _at,
              st.integers(0, 2**31), _text, _text),
    st.builds(Phase, st.sampled_from(PHASES) | _text, _at),
    st.builds(PhaseDone, _text, _at, _at, st.none() | st.integers(0, 2**62), _text),
    st.builds(Note, _text, _at),
    st.builds(Box, _text, _at, _at, _text),
    st.builds(ImageBuilt, _text, _at),
    st.builds(Detached, _at),
    st.builds(Teardown, _text, st.sampled_from(("delete", "stop", "leave")) | _text, _at),
    st.builds(Ended, st.none() | st.integers(-(2**31), 2**31), st.sampled_from(("ok", "failed", "timeout", "interrupted")), _at),
)


@settings(max_examples=150)
@given(st.lists(EVENTS, max_size=6))
def test_round_trip(events):
    text = encode_events(events)
    assert text.count("\n") == len(events)  # one event, one line, whatever the text holds
    assert decode_events(text) == tuple(events)


@settings(max_examples=60)
@given(st.lists(EVENTS, min_size=1, max_size=4), st.data())
def test_a_torn_tail_loses_only_the_last_event(events, data):
    text = encode_events(events).encode()
    cut = data.draw(st.integers(len(text) - len(encode_event(events[-1])) - 1, len(text) - 1))
    assert decode_events(text[:cut]) == tuple(events[:-1])


def test_forward_compatible():
    known = json.loads(encode_event(Note("hi", 1.0)))
    newer = dict(known, v=7, colour="blue")
    assert decode_event(json.dumps(newer)) == Note("hi", 1.0)  # a newer version, extra keys: read what we know
    assert decode_event(json.dumps({"v": 1, "kind": "teleported", "at": 1})) is None
    lines = "\n".join([json.dumps({"v": 1, "kind": "teleported"}), encode_event(Note("a", 2.0)), ""])
    assert decode_events(lines) == (Note("a", 2.0),)


@pytest.mark.parametrize("line", [
    "", "{", "[]", "null", '{"kind": "note", "text": "x", "at": 1}',  # no version
    '{"v": 0, "kind": "note", "text": "x", "at": 1}', '{"v": true, "kind": "note", "text": "x", "at": 1}',
    '{"v": 1, "kind": "note", "text": "x"}',  # a required field missing
    '{"v": 1, "kind": "note", "text": "x", "at": "soon"}',
    '{"v": 1, "kind": "ended", "exit_code": 0, "outcome": "exploded", "at": 1}',
    '{"v": 1, "kind": "started", "run": "r", "backend": "b", "target": "t", "app": "a", "function": "f",'
    ' "args": "not a list", "env_names": [], "outputs": "", "at": 1}',
    '{"v": 1, "kind": "phase_done", "name": "upload", "seconds": 1, "at": 1, "size": 1.5}',
])
def test_broken_lines_are_skipped(line):
    assert decode_event(line) is None
    assert decode_events(line + "\n" + encode_event(Note("ok", 1.0)) + "\n") == (Note("ok", 1.0),)


def test_no_event_holds_an_env_value():
    import attrs

    for cls in (Started, Phase, PhaseDone, Note, Box, ImageBuilt, Ended, Detached, Teardown):
        names = {field.name for field in attrs.fields(cls)}
        assert not {name for name in names if "env" in name or "secret" in name} - {"env_names"}, cls


def test_encoding_a_foreign_object_is_refused():
    with pytest.raises(TypeError):
        encode_event("note")  # type: ignore[arg-type]


def test_run_ids():
    assert valid_run_id("20240501-120000-a1b2c3")
    for bad in ("", ".", "..", "-x", "a/b", "a b", "x" * 101, "é"):
        assert not valid_run_id(bad)


def test_resolve():
    ids = ["20240501-120000-aaaaaa", "20240501-120500-bbbbbb", "20240502-080000-abcdef"]
    assert resolve_run(ids, "last") == "20240502-080000-abcdef"
    assert resolve_run(ids, " 20240501-12050 ") == "20240501-120500-bbbbbb"
    for text, words in [("2024", "matches 3 runs"), ("9", "no run matches"), ("", "give a run id")]:
        with pytest.raises(RunNotFound, match=words) as caught:
            resolve_run(ids, text)
        assert isinstance(caught.value, UsageError) and "\n" not in str(caught.value)
    with pytest.raises(RunNotFound, match="no runs are recorded"):
        resolve_run([], "last")


def test_records_written_before_the_log_field_still_read():
    old = (GOLDEN.parent / "run_events_v1_without_log.jsonl").read_text(encoding="utf-8")
    assert '"log"' not in old and decode_events(old) == RECORD


def test_the_due_teardown_is_a_kind_of_its_own():
    # A new kind, not a new field of an old one: a reader from before it skips the line
    # (test_forward_compatible) and reads the rest of the record as it always did.
    line = encode_event(Teardown("my-box", "stop", T0))
    assert json.loads(line) == {"v": 1, "kind": "teardown", "box": "my-box", "action": "stop", "at": T0}
    assert decode_events(encode_events(RECORD[:2]) + line + "\n") == RECORD[:2] + (Teardown("my-box", "stop", T0),)
