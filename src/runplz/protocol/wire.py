"""Encode and decode dispatch payloads and result records.

A private cattrs converter with ``forbid_extra_keys``: an unknown key or a
wrong type is a `ProtocolError`, never a half-read record. The ``outcome``
union is tagged by ``kind`` ("returned" / "raised").
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import cattrs
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
configure_tagged_union(
    Outcome,
    _converter,
    tag_name="kind",
    tag_generator={Returned: "returned", Raised: "raised"}.__getitem__,
)


def _dumps(data: Any) -> str:
    return json.dumps(data, allow_nan=False, ensure_ascii=False, sort_keys=True)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str | bytes, cls: type[T], what: str) -> T:
    try:
        data = json.loads(text, parse_constant=_no_constant)
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
