"""Entrypoint flags, modal-style: ``--name=value`` or ``--name value``, typed from annotations.

Everything after the script on the command line belongs to the entrypoint;
names must match exactly ('-' and '_' both accepted), never by abbreviation.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable, Mapping, Sequence, Union

import attrs

from .errors import UsageError

REQUIRED: Any = inspect.Parameter.empty
_SUPPORTED = (int, float, str, bool)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_TYPE_NAME = {int: "INT", float: "FLOAT", str: "TEXT", bool: "BOOL"}


@attrs.frozen
class Param:
    """One entrypoint parameter. ``kind`` is None when its type cannot be a flag."""

    name: str
    kind: type | None
    optional: bool = False
    default: Any = REQUIRED
    annotation: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@attrs.frozen
class HelpRequested:
    text: str


def _classify(annotation: Any, default: Any) -> tuple[type | None, bool]:
    if annotation is inspect.Parameter.empty:
        if default is REQUIRED or default is None:
            return str, default is None
        return (type(default), False) if type(default) in _SUPPORTED else (None, False)
    if annotation in _SUPPORTED:
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1 and members[0] in _SUPPORTED and len(typing.get_args(annotation)) == 2:
            return members[0], True
    return None, False


def params_of(func: Callable[..., Any]) -> tuple[Param, ...]:
    """The flag-able parameters of ``func`` (``*args``/``**kwargs`` are not flags)."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    params = []
    for p in inspect.signature(func).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        annotation = hints.get(p.name, p.annotation)
        if isinstance(annotation, str):
            annotation = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation, annotation)
        kind, optional = _classify(annotation, p.default)
        shown = "" if p.annotation is inspect.Parameter.empty else getattr(
            annotation, "__name__", str(annotation)
        )
        params.append(Param(p.name, kind, optional or p.default is None, p.default, shown))
    return tuple(params)


def _convert(param: Param, raw: str) -> Any:
    kind = param.kind
    if kind is None:
        raise UsageError(
            f"{param.flag} has type {param.annotation or '?'}, which a flag cannot carry "
            "(int, float, str, bool and Optional of them can)"
        )
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise UsageError(f"{param.flag} expects true or false; got {raw!r}")
    if kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        raise UsageError(f"{param.flag} expects {_TYPE_NAME[kind].lower()}; got {raw!r}") from None


def _lookup(params: Sequence[Param], name: str) -> tuple[Param, bool] | None:
    by_name = {p.name.replace("-", "_"): p for p in params}
    key = name.replace("-", "_")
    if key in by_name:
        return by_name[key], True
    if key.startswith("no_") and key[3:] in by_name and by_name[key[3:]].kind is bool:
        return by_name[key[3:]], False
    return None


def parse(
    params: Sequence[Param],
    argv: Sequence[str],
    owner: str,
    usage: str = "",
    runner_flags: Mapping[str, bool] | None = None,
) -> dict[str, Any] | HelpRequested:
    """Turn the argv tail into keyword arguments for ``owner``, or a help request.

    ``runner_flags`` maps the runner's own option names (``outputs-dir``) to
    whether they take a value: one the entrypoint does not take earns a hint
    that it goes before the script.
    """
    values: dict[str, Any] = {}
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in ("--help", "-h"):
            return HelpRequested(help_text(params, owner, usage))
        if not token.startswith("--") or token == "--":
            raise UsageError(
                f"unexpected argument {token!r} for {owner}; its flags look like --name=value"
            )
        name, has_value, raw = token[2:].partition("=")
        found = _lookup(params, name)
        if found is None:
            if runner_flags and name in runner_flags:
                moved = token
                if runner_flags[name] and not has_value and index < len(tokens):
                    moved = f"{token} {tokens[index]}"
                raise UsageError(
                    f"{owner} has no flag --{name}; runplz's own --{name} goes before SCRIPT"
                    + (f": {_before_script(usage, moved)}" if usage else "")
                )
            known = ", ".join(p.flag for p in params) or "none"
            raise UsageError(f"{owner} has no flag --{name} (its flags: {known})")
        param, positive = found
        if param.name in values:
            raise UsageError(f"{param.flag} given more than once")
        if param.kind is bool and not has_value:
            values[param.name] = positive
            continue
        if not positive:
            raise UsageError(f"--no-{param.flag[2:]} takes no value")
        if not has_value:
            if index >= len(tokens):
                raise UsageError(f"{param.flag} needs a value")
            raw = tokens[index]
            index += 1
        values[param.name] = _convert(param, raw)
    missing = [p for p in params if p.required and p.name not in values]
    if missing:
        need = ", ".join(f"{p.flag} {_TYPE_NAME.get(p.kind, 'VALUE')}" for p in missing)
        raise UsageError(f"{owner} needs {need}")
    return values


def _before_script(usage: str, moved: str) -> str:
    """``runplz local job.py`` with ``moved`` put before the script."""
    words = usage.split(" ")
    return " ".join(words[:2] + [moved] + words[2:]) if len(words) > 2 else f"{usage} {moved}"


def render(params: Sequence[Param], values: dict[str, Any]) -> list[str]:
    """The argv tail that `parse` turns back into ``values``.

    Always ``--name=value`` (so no value is taken for a flag, and a parameter
    called ``help`` or ``no_x`` stays itself); None is left out, which only
    means None when that is the default.
    """
    argv = []
    for param in params:
        value = values.get(param.name)
        if value is None:
            continue
        if param.kind is bool:
            argv.append(f"{param.flag}={'true' if value else 'false'}")
        else:
            argv.append(f"{param.flag}={value!r}" if param.kind is float else f"{param.flag}={value}")
    return argv


def help_text(params: Sequence[Param], owner: str, usage: str = "") -> str:
    lines = [f"Usage: {usage or owner} [FLAGS]", "", f"Flags of {owner}:"]
    if not params:
        lines.append("  (none)")
    for p in params:
        if p.kind is bool:
            left = f"{p.flag}/--no-{p.flag[2:]}"
        else:
            left = f"{p.flag} {_TYPE_NAME.get(p.kind, 'VALUE')}"
        right = "required" if p.required else f"default: {p.default!r}"
        lines.append(f"  {left:<32} {right}")
    return "\n".join(lines) + "\n"
