"""What a value becomes on its way through JSON, both ways of a call.

Arguments (`plain_argument`) follow ``json.dumps`` exactly, plus NaN and
±Infinity: None, bool, int, float (nan/inf included), str, list, tuple and
dict, subclasses of those too. Tuples become lists; dict keys that are int,
float, bool or None become the strings ``json.dumps`` would write ("1", "1.5",
"true", "null"). Anything else (a set, bytes, an object, a cycle, a str with
lone surrogates) is refused with `NotJson`, which names where it sits.

Return values (`carry_return`) never fail: on top of the above,

* numpy scalars and arrays (and torch tensors, ...) are found by duck typing,
  ``.tolist()`` first, then ``.item()``; numpy itself is never imported;
* sets and frozensets become lists, sorted when their items can be ordered
  (else sorted by type name and ``repr``, for a stable order);
* every other part (an object, bytes, a cycle, nesting deeper than
  `MAX_DEPTH`, a dict key of another type, a str holding lone surrogates, an
  int too long for JSON) is replaced by a *stand-in*: its ``repr()`` as a
  string, cut at `STAND_IN_LIMIT` characters with a marker, or
  ``"<TypeName object>"`` when ``repr()`` itself raises. Each stand-in adds a
  note, naming the type and where it sat, for the caller's warning.

Pure and stdlib-only: the job's runtime uses it on the target.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

STAND_IN_LIMIT = 2000  # characters of a stand-in's repr() kept
MAX_DEPTH = 200  # nesting levels carried; deeper parts become stand-ins
MAX_NOTES = 20  # stand-in notes kept; the rest are counted in one last note
_BIG_INT_BITS = 10_000  # past this, check that the int can be written as text


class NotJson(ValueError):
    """An argument JSON cannot carry; the message says which part and why."""


class Carried(NamedTuple):
    """A return value made JSON, and the notes on the parts replaced by stand-ins."""

    value: Any
    stand_ins: tuple[str, ...]


def plain_argument(value: Any, where: str = "the argument") -> Any:
    """``value`` as plain JSON data (the ``json.dumps`` way), or raise `NotJson`."""
    return _Walk(lenient=False).value(value, where, 0)


def plain_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Each argument through `plain_argument`, named "argument 0" / "argument 'lr'"."""
    plain_args = [plain_argument(arg, f"argument {index}") for index, arg in enumerate(args)]
    plain_kwargs = {}
    for key, arg in kwargs.items():
        name = _Walk(lenient=False).key(key, f"argument {_safe_repr(key) or '?'}")
        plain_kwargs[name] = plain_argument(arg, f"argument {name!r}")
    return plain_args, plain_kwargs


def carry_return(value: Any, where: str = "the return value") -> Carried:
    """``value`` as JSON data (NaN and ±Infinity kept as floats); never raises
    for the value's sake. See the module's docstring for what is carried."""
    walk = _Walk(lenient=True)
    carried = walk.value(value, where, 0)
    notes = walk.notes
    if walk.unnoted:
        notes.append(f"... and {walk.unnoted} more parts of {where} came back as stand-ins")
    return Carried(carried, tuple(notes))


# ---------------------------------------------------------------- helpers


def _type_name(value: Any) -> str:
    try:
        name = type(value).__qualname__
        name = name if isinstance(name, str) else type(value).__name__
        return name.rpartition("<locals>.")[2]  # "Foo", not "train.<locals>.Foo"
    except Exception:
        return "object"


def _clean(text: str) -> str:
    """``text`` without lone surrogates (UTF-8 cannot hold them): written as escapes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _safe_repr(value: Any) -> str | None:
    """``repr(value)``, cut at `STAND_IN_LIMIT` characters; None when repr() raises."""
    try:
        text = _clean(str.__str__(repr(value)))
    except Exception:
        return None
    if len(text) > STAND_IN_LIMIT:
        text = f"{text[:STAND_IN_LIMIT]}... [{len(text) - STAND_IN_LIMIT} more characters]"
    return text


def _float_text(value: float) -> str:
    """A float key as ``json.dumps`` writes it."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _label(key: str) -> str:
    return repr(key if len(key) <= 60 else key[:57] + "...")


class _Walk:
    """One walk over a value; ``lenient`` makes stand-ins where strict refuses."""

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.notes: list[str] = []
        self.unnoted = 0
        self.open: set[int] = set()  # ids of the containers being walked: a cycle check

    # ---- outcomes for a part JSON cannot carry

    def refuse(self, value: Any, where: str, problem: str, text: str | None = None) -> str:
        """Refuse (strict) or stand in for (lenient) ``value``; ``problem`` follows ``where``."""
        if not self.lenient:
            raise NotJson(f"{where} {problem}, which JSON cannot carry")
        if text is not None:
            given = "a stand-in text"
        else:
            text = _safe_repr(value)
            given = "its repr()"
            if text is None:
                text = f"<{_type_name(value)} object>"
                given = repr(text)
        self.note(f"{where} {problem}, which JSON cannot carry; .remote() gave back {given} instead")
        return text

    def note(self, message: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(message)
        else:
            self.unnoted += 1

    # ---- values

    def value(self, value: Any, where: str, depth: int) -> Any:
        if value is None or value is True or value is False:
            return value
        if isinstance(value, str):
            return self.text(value, where, f"{where} is")
        if isinstance(value, int):  # bool is handled above; IntEnum and friends become int
            return self.integer(value, where)
        if isinstance(value, float):
            return float.__float__(value)
        if isinstance(value, (list, tuple, dict)) or (self.lenient and isinstance(value, (set, frozenset))):
            return self.container(value, where, depth)
        name = _type_name(value)
        if self.lenient and not isinstance(value, type):
            found = self.duck(value, where, depth, name)
            if found is not _NOTHING:
                return found
        return self.refuse(value, where, f"is a {name}")

    def text(self, value: str, where: str, lead: str) -> str:
        value = str.__str__(value)
        clean = _clean(value)
        if clean is not value:
            if not self.lenient:
                raise NotJson(f"{lead} a str holding lone surrogates, which JSON cannot carry")
            self.note(
                f"{lead} a str holding lone surrogates, which JSON cannot carry; "
                ".remote() gave back a copy with them written as \\u escapes instead"
            )
        return clean

    def integer(self, value: int, where: str) -> Any:
        value = int.__int__(value)
        if value.bit_length() > _BIG_INT_BITS:
            try:
                int.__repr__(value)
            except ValueError:
                text = f"<int of {value.bit_length()} bits>"
                return self.refuse(value, where, "is an int too long to write as text", text)
        return value

    def duck(self, value: Any, where: str, depth: int, name: str) -> Any:
        """numpy and its kin: ``.tolist()`` (arrays and scalars), else ``.item()``."""
        for method in ("tolist", "item"):
            try:
                function = getattr(value, method, None)
            except Exception:
                function = None
            if function is None or not callable(function):
                continue
            if depth >= MAX_DEPTH:  # a .tolist() that keeps giving back more of the same
                return self.refuse(value, where, f"is a {name} whose .{method}() went {MAX_DEPTH} levels deep")
            try:
                plain = function()
            except Exception as exc:
                return self.refuse(value, where, f"is a {name} whose .{method}() raised {_type_name(exc)}")
            return self.value(plain, where, depth + 1)
        return _NOTHING

    def container(self, value: Any, where: str, depth: int) -> Any:
        name = _type_name(value)
        if depth >= MAX_DEPTH:
            return self.refuse(value, where, f"is a {name} nested more than {MAX_DEPTH} levels deep")
        if id(value) in self.open:
            return self.refuse(value, where, f"is a {name} that contains itself")
        self.open.add(id(value))
        kept = len(self.notes), self.unnoted
        try:
            if isinstance(value, dict):
                out: dict[str, Any] = {}
                for key, item in list(value.items()):
                    text = self.key(key, where)
                    out[text] = self.value(item, f"{where}[{_label(text)}]", depth + 1)
                return out
            items = self.ordered(value) if isinstance(value, (set, frozenset)) else value
            found = []
            for index, item in enumerate(items):
                found.append(self.value(item, f"{where}[{index}]", depth + 1))
            return found
        except NotJson:
            raise
        except Exception as exc:  # a subclass whose iteration raised, a RecursionError in a repr()
            del self.notes[kept[0]:]
            self.unnoted = kept[1]
            return self.refuse(value, where, f"is a {name} that could not be read ({_type_name(exc)})")
        finally:
            self.open.discard(id(value))

    def ordered(self, value: Any) -> list[Any]:
        items = list(value)
        try:
            return sorted(items)
        except Exception:
            return sorted(items, key=lambda item: (_type_name(item), _safe_repr(item) or ""))

    # ---- keys

    def key(self, key: Any, where: str) -> str:
        """A dict key as the string ``json.dumps`` writes, or a stand-in (lenient)."""
        if isinstance(key, str):
            return self.text(key, where, f"{where} has a key that is")
        if isinstance(key, float):
            return _float_text(key)
        if key is True or key is False or key is None:
            return {True: "true", False: "false", None: "null"}[key]
        if isinstance(key, int):
            plain = self.integer(key, where)
            return plain if isinstance(plain, str) else int.__repr__(plain)
        name = _type_name(key)
        if self.lenient and not isinstance(key, type):
            plain = _scalar(key)
            if plain is not _NOTHING:  # a numpy scalar key: the key its number would make
                return self.key(plain, where)
        shown = _safe_repr(key)
        text = shown if shown is not None else f"<{name} object>"
        if not self.lenient:
            raise NotJson(f"{where} has a {name} key {_label(text)[1:-1]}, which JSON cannot carry")
        self.note(
            f"{where} has a {name} key {_label(text)[1:-1]}, which JSON cannot carry; "
            ".remote() gave back its repr() as the key instead"
        )
        return text


def _scalar(value: Any) -> Any:
    """``value.tolist()`` (or ``.item()``) when that gives a plain scalar, else `_NOTHING`."""
    for method in ("tolist", "item"):
        try:
            function = getattr(value, method, None)
        except Exception:
            continue
        if function is None or not callable(function):
            continue
        try:
            plain = function()
        except Exception:
            return _NOTHING
        return plain if plain is None or isinstance(plain, (str, int, float)) else _NOTHING
    return _NOTHING


_NOTHING = object()
