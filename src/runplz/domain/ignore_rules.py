"""Gitignore-style rules: parse their text, decide '/'-separated paths.

The syntax is git's: blank lines and ``#`` comments are skipped, trailing
spaces are trimmed unless escaped, ``!`` negates, a trailing ``/`` matches
folders only, a ``/`` at the start or in the middle anchors the pattern to
the root (else it matches a name at any depth), ``*``, ``?``, ``[...]``
(with ``!``/``^`` negation, ranges and ``[:class:]``), ``**`` and backslash
escapes. The last rule that matches a path decides it.
"""

from __future__ import annotations

import re
import string
from typing import Iterable

import attrs

_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": re.escape(string.punctuation),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}
_NEVER = "(?!)"


@attrs.frozen
class Rule:
    """One parsed line: ``source`` is the regex matched against a whole path."""

    line: str
    negated: bool
    dir_only: bool
    source: str
    ignore_case: bool = False
    regex: re.Pattern[str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        flags = re.IGNORECASE if self.ignore_case else 0
        object.__setattr__(self, "regex", re.compile(self.source, flags | re.DOTALL))

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(path) is not None


def _combined(rules: Iterable[Rule]) -> re.Pattern[str]:
    alternatives = [f"(?{'i' if r.ignore_case else ''}s:{r.source})" for r in rules]
    return re.compile("|".join(alternatives) or _NEVER)


@attrs.frozen
class RuleSet:
    """Rules in order; the last one matching a path decides it."""

    rules: tuple[Rule, ...] = ()
    _any: re.Pattern[str] = attrs.field(init=False, eq=False, repr=False)
    _any_file: re.Pattern[str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_any", _combined(self.rules))
        object.__setattr__(self, "_any_file", _combined(r for r in self.rules if not r.dir_only))

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """True (excluded), False (re-included by a ``!`` rule) or None (no rule matches)."""
        if (self._any if is_dir else self._any_file).fullmatch(path) is None:
            return None
        for rule in reversed(self.rules):
            if rule.matches(path, is_dir):
                return not rule.negated
        return None

    def __add__(self, other: "RuleSet") -> "RuleSet":
        return RuleSet(self.rules + other.rules)


def _trim_trailing_spaces(line: str) -> str:
    end = len(line)
    while end and line[end - 1] == " ":
        slashes = len(line[: end - 1]) - len(line[: end - 1].rstrip("\\"))
        if slashes % 2:
            break
        end -= 1
    return line[:end]


def _class(pattern: str, start: int) -> tuple[str, int] | None:
    """The regex for the bracket expression opening at ``start``, and the index after it."""
    i = start + 1
    negated = i < len(pattern) and pattern[i] in "!^"
    if negated:
        i += 1
    items: list[str] = []
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            body = "".join(items)
            if negated:
                return f"[^/{body}]", i + 1
            return (f"(?!/)[{body}]" if body else _NEVER), i + 1
        first = False
        if char == "[" and pattern.startswith("[:", i):
            close = pattern.find(":]", i + 2)
            if close != -1:
                name = pattern[i + 2 : close]
                if name not in _CLASSES:
                    return _NEVER, len(pattern)
                items.append(_CLASSES[name])
                i = close + 2
                continue
        if char == "\\" and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
        low = char
        i += 1
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            high = pattern[i + 1]
            i += 2
            if high == "\\" and i < len(pattern):
                high = pattern[i]
                i += 1
            if low <= high:
                items.append(f"{re.escape(low)}-{re.escape(high)}")
            continue
        items.append(re.escape(low))
    return None


def _segment(pattern: str) -> str | None:
    """The regex for one '/'-free piece of a pattern; None when it is invalid."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 == len(pattern):
                return None
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif char == "*":
            while i < len(pattern) and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (found := _class(pattern, i)) is not None:
            out.append(found[0])
            i = found[1]
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _split(pattern: str) -> list[str]:
    """Split on '/' that is not escaped."""
    pieces, current, i = [], [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            current.append(pattern[i : i + 2])
            i += 2
            continue
        if pattern[i] == "/":
            pieces.append("".join(current))
            current = []
        else:
            current.append(pattern[i])
        i += 1
    pieces.append("".join(current))
    return pieces


def _regex(segments: list[str], anchored: bool) -> str | None:
    out = [] if anchored else ["(?:.*/)?"]
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == "**":
            out.append((".*" if index == 0 else ".+") if index == last else "(?:.*/)?")
            continue
        piece = _segment(segment)
        if piece is None:
            return None
        out.append(piece)
        if index != last:
            out.append("/")
    return "".join(out)


def parse_rule(line: str, ignore_case: bool = False) -> Rule | None:
    """One line of a gitignore-style file; None for blank, comment or invalid lines."""
    original = line
    if line.startswith("#"):
        return None
    line = _trim_trailing_spaces(line)
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line[:-1]
    if not line:
        return None
    segments = _split(line)
    anchored = len(segments) > 1
    if anchored and segments[0] == "":
        segments = segments[1:]
    if not segments or segments == [""]:
        return None
    source = _regex(segments, anchored)
    if source is None:
        return None
    return Rule(original, negated, dir_only, source, ignore_case)


def parse_rules(text: str | Iterable[str], ignore_case: bool = False) -> RuleSet:
    """Every rule of a file's text (or of an iterable of lines), in order."""
    lines = text.lstrip("\ufeff").splitlines() if isinstance(text, str) else list(text)
    parsed = (parse_rule(line, ignore_case) for line in lines)
    return RuleSet(tuple(rule for rule in parsed if rule is not None))
