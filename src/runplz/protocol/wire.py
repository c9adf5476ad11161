"""Encode and decode dispatch payloads and result records.

A private cattrs converter with ``forbid_extra_keys``: an unknown key or a
wrong type is a `ProtocolError`, never a half-read record. The ``outcome``
union is tagged by ``kind`` ("returned" / "raised").

Arguments and return values are JSON data already (`runplz.domain.carry`
made them so) and pass through as they are; they may hold NaN and ±Infinity,
written as Python's json writes them (``NaN``, ``Infinity``, ``-Infinity``).
Those words are read back anywhere, but every other field is type-checked,
so they stand only where a float may. A `Returned` without stand-ins is
written without its ``stand_ins`` key (records from before it still read).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from ..domain.errors import ProtocolError
from ..domain.payload import PROTOCOL, Dispatch, Outcome, Raised, Result, Returned

T = TypeVar("T")

_converter = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {name}, got {type(value).__name__}")
        return value

    return structure


_converter.register_structure_hook(int, _strict(int, "an integer"))
_converter.register_structure_hook(str, _strict(str, "a string"))
for _kind, _hint, _name in ((list, list[Any], "a list"), (dict, dict[str, Any], "an object")):
    _converter.register_structure_hook_func(lambda t, hint=_hint: t == hint, _strict(_kind, _name))


def _notes(value: Any, _type: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(note, str) for note in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def _as_is(value: Any) -> Any:
    """JSON data needs no unstructuring (and a deep value must not cost a frame per level)."""
    return value


_converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _notes)
_converter.register_unstructure_hook(
    Dispatch, make_dict_unstructure_fn(Dispatch, _converter, args=override(unstruct_hook=_as_is), kwargs=override(unstruct_hook=_as_is))
)
_converter.register_unstructure_hook(
    Returned,
    make_dict_unstructure_fn(
        Returned,
        _converter,
        value=override(unstruct_hook=_as_is),
        stand_ins=override(omit_if_default=True, unstruct_hook=list),
    ),
)
configure_tagged_union(
    Outcome,
    _converter,
    tag_name="kind",
    tag_generator={Returned: "returned", Raised: "raised"}.__getitem__,
)


def _dumps(data: Any) -> str:
    return json.dumps(data, allow_nan=True, ensure_ascii=False, sort_keys=True)


def _loads(text: str | bytes, cls: type[T], what: str) -> T:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    version = data.get("protocol")
    if version != PROTOCOL:
        raise ProtocolError(
            f"{what} speaks protocol {version!r}; this runplz speaks {PROTOCOL}"
        )
    if cls is Result and not isinstance(data.get("outcome"), dict):
        raise ProtocolError(f"{what} is malformed: outcome must be an object")
    try:
        return _converter.structure(data, cls)
    except Exception as exc:  # cattrs raises ClassValidationError / KeyError trees
        detail = "; ".join(cattrs.transform_error(exc)) if isinstance(exc, cattrs.BaseValidationError) else str(exc)
        raise ProtocolError(f"{what} is malformed: {detail}") from None


def encode_dispatch(dispatch: Dispatch) -> str:
    return _dumps(_converter.unstructure(dispatch))


def decode_dispatch(text: str | bytes) -> Dispatch:
    return _loads(text, Dispatch, "dispatch payload")


def encode_result(result: Result) -> str:
    return _dumps(_converter.unstructure(result))


def decode_result(text: str | bytes) -> Result:
    return _loads(text, Result, "result record")
