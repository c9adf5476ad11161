"""attrs validators that raise `ConfigError` naming the offending field."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from .errors import ConfigError

Validator = Callable[[Any, Any, Any], None]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def show(value: Any) -> str:
    """A short repr for messages; never raises."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def fail(owner: str, name: str, wanted: str, value: Any) -> ConfigError:
    return ConfigError(f"{owner}.{name} must be {wanted}; got {show(value)}")


def _owner(instance: Any) -> str:
    return type(instance).__name__


def is_bool(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise fail(_owner(instance), attribute.name, "True or False", value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def positive_number(instance: Any, attribute: Any, value: Any) -> None:
    if not is_number(value) or value <= 0 or value == float("inf"):
        raise fail(_owner(instance), attribute.name, "a positive number", value)


def optional_positive_number(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not is_number(value) or value <= 0 or value == float("inf"):
        raise fail(
            _owner(instance), attribute.name, "a positive number or None (unlimited)", value
        )


def one_of(*choices: str) -> Validator:
    wanted = "one of " + ", ".join(repr(c) for c in choices)

    def check(instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, str) or value not in choices:
            raise fail(_owner(instance), attribute.name, wanted, value)

    return check


def optional_nonempty_str(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise fail(_owner(instance), attribute.name, "a non-empty string or None", value)


def optional_port(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise fail(_owner(instance), attribute.name, "a port number 1-65535 or None", value)


def optional_login(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", value, re.ASCII):
        raise fail(_owner(instance), attribute.name, "a login name or None", value)


def env_mapping(owner: str, name: str, value: Any) -> dict[str, str]:
    """Check an env= mapping: valid variable names, string values (numbers and
    bools become their ``str()``)."""
    if value is None:
        return {}
    checked: dict[str, str] = {}
    if not isinstance(value, Mapping):
        raise fail(owner, name, "a mapping of str to str", value)
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise ConfigError(
                f"{owner}.{name} key {show(key)} is not a valid environment variable name"
            )
        if isinstance(item, (bool, int, float)):
            item = str(item)  # as the seed did: env=dict(SEED=1) sets SEED="1"
        if not isinstance(item, str):
            raise ConfigError(
                f"{owner}.{name}[{key!r}] must be a string (or a number or bool); got {show(item)}"
            )
        if "\x00" in item:
            raise ConfigError(f"{owner}.{name}[{key!r}] must not contain NUL")
        checked[key] = item
    return checked


def strings(owner: str, name: str, values: Iterable[Any], *, at_least_one: bool = True) -> tuple[str, ...]:
    """Check that every value is a non-empty string without NUL."""
    items = tuple(values)
    if at_least_one and not items:
        raise ConfigError(f"{owner}.{name} needs at least one argument")
    for item in items:
        if not isinstance(item, str) or not item.strip() or "\x00" in item:
            raise fail(owner, name, "non-empty strings", item)
    return items
