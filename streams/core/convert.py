"""Plain data (a YAML document, command-line values) to typed settings, with errors that
name the key.

:func:`convert` is ``msgspec.convert`` whose ``ValidationError`` becomes a
:class:`ConfigError`: ``Expected `float` >= 0 - at `$.retrain.cooldown_seconds``` reads
``retrain.cooldown_seconds: must be a number >= 0``. The problem is said from the declared
type (so a string where a number >= 0 is expected says the same), and the entries of
mappings are named by their key, where msgspec only says ``[...]``. A :class:`ConfigError`
raised by a struct's ``__post_init__`` (a check of several fields) names the key below
that struct; so does a detector library parameter error (``parameter``).

>>> from typing import Annotated
>>> Seconds = Annotated[float, msgspec.Meta(gt=0)]
>>> convert({"churn": {"ttl_seconds": 5}}, dict[str, dict[str, Seconds]], "models")
{'churn': {'ttl_seconds': 5.0}}
>>> convert({"churn": {"ttl_seconds": "1h"}}, dict[str, dict[str, Seconds]], "models")
Traceback (most recent call last):
...
streams.core.errors.ConfigError: models.churn.ttl_seconds: must be a number > 0
>>> convert("loud", Annotated[str, one_of(["info", "warning"])], "severity")
Traceback (most recent call last):
...
streams.core.errors.ConfigError: severity: must be one of info, warning
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

import msgspec
from msgspec import inspect as mi

from streams.core.errors import ConfigError

__all__ = ["FINITE", "convert", "one_of", "option"]

T = TypeVar("T")

#: Bound of every number: msgspec's bounds take no infinity, so ``.inf`` is refused by this.
FINITE: Final = sys.float_info.max


def one_of(names: Iterable[str], *, problem: str | None = None) -> msgspec.Meta:
    """Constraint of a string (or mapping key) that takes only ``names``, said in that
    order; ``problem`` replaces the usual ``must be one of ...``."""
    ordered = tuple(names)
    extra: dict[str, Any] = {"one_of": ordered}
    if problem is not None:
        extra["problem"] = problem
    pattern = "^(" + "|".join(re.escape(name) for name in ordered) + ")$"
    return msgspec.Meta(pattern=pattern, extra=extra)


def convert(value: Any, type_: type[T], key: str = "") -> T:
    """``value`` as a ``type_``, else a :class:`ConfigError` whose key starts with ``key``.

    ``None`` where a mapping is expected counts as an empty mapping (a YAML section whose
    lines are all commented out).
    """
    info = mi.type_info(type_)
    document = _complete(value, info, key)
    try:
        result: T = msgspec.convert(document, type_)
    except msgspec.ValidationError as exc:
        raise _explain(exc, document, type_, info, key) from None
    return result


def option(type_: Any) -> Callable[[str], Any]:
    """An ``argparse`` ``type=`` reading a command-line value as a ``type_``: the option
    refuses what the config key refuses, in the same words.

    >>> from streams.core.settings import PositiveInt
    >>> option(PositiveInt)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer >= 1, got '0'
    """

    def parse(text: str) -> Any:
        try:
            return msgspec.convert(text, type_, strict=False)
        except msgspec.ValidationError:
            problem = _problem(mi.type_info(type_))
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}") from None

    return parse


_MAPPINGS: Final = (mi.StructType, mi.DataclassType, mi.DictType)
_LISTS: Final = (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)


def _complete(value: Any, info: mi.Type, key: str) -> Any:
    """``value`` with ``None`` mappings made empty; unknown keys of dataclasses refused
    (msgspec refuses those of Structs itself, but silently drops a dataclass's)."""
    info = _unwrap(info)
    if isinstance(info, mi.UnionType):
        if value is None and any(isinstance(t, mi.NoneType) for t in info.types):
            return None
        info = next((t for t in info.types if isinstance(t, _MAPPINGS)), info)
    if not isinstance(info, _MAPPINGS) or not isinstance(value, Mapping | None):
        return value
    if value is None:
        return {}
    if isinstance(info, mi.DictType):
        return {k: _complete(v, info.value_type, _name(key, [k])) for k, v in value.items()}
    fields = {f.encode_name: f.type for f in info.fields}
    unknown = [k for k in value if k not in fields]
    if unknown and isinstance(info, mi.DataclassType):
        raise ConfigError(_name(key, unknown[:1]), _unknown_key(fields))
    return {
        k: _complete(v, fields[k], _name(key, [k])) if k in fields else v for k, v in value.items()
    }


_WHERE: Final = re.compile(r" - at (`key` in )?`\$(.*)`$", re.DOTALL)
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_FIELD: Final = re.compile(r"^Object (contains unknown|missing required) field `([^`]*)`")


def _explain(
    exc: msgspec.ValidationError, document: Any, type_: Any, info: mi.Type, key: str
) -> ConfigError:
    message = str(exc)
    match = _WHERE.search(message)
    steps: list[str | int | None] = []
    if match is not None:
        steps = [name or (None if i == "..." else int(i)) for name, i in _STEP.findall(match[2])]
        if match[1]:  # a mapping key of the wrong type: find which, like a `[...]`
            steps.append(None)
    path = _locate(steps, document, type_, message)
    cause = exc.__cause__
    if cause is not None:  # raised while building the struct at ``path``
        below = getattr(cause, "key", None) or getattr(cause, "parameter", None) or ""
        problem = getattr(cause, "problem", str(cause))
        return ConfigError(_name(key, [*path, *str(below).split(".")]), problem)
    if match is not None and match[1]:
        key_type = getattr(_unwrap(_type_at(info, path[:-1])), "key_type", None)
        choices = _choices(key_type) if key_type is not None else ()
        return ConfigError(
            _name(key, path), _unknown_key(choices) if choices else "keys must be strings"
        )
    field = _FIELD.match(message)
    if field is not None:
        if field[1] == "missing required":
            return ConfigError(_name(key, [*path, field[2]]), "is required")
        known = [f.encode_name for f in getattr(_unwrap(_type_at(info, path)), "fields", ())]
        return ConfigError(_name(key, [*path, field[2]]), _unknown_key(known))
    return ConfigError(_name(key, path), _problem(_type_at(info, path)))


def _locate(
    steps: list[str | int | None], document: Any, type_: Any, message: str
) -> list[str | int]:
    """msgspec's path with each ``[...]`` replaced by the mapping key it stands for: the
    first entry that, alone in its mapping, fails with the same message."""
    path: list[str | int] = []
    node = document
    for step in steps:
        if step is None:
            if not isinstance(node, Mapping) or not node:
                break
            step = next(
                (k for k in node if _fails_alike(_narrowed(document, path, k), type_, message)),
                next(iter(node)),
            )
            document = _narrowed(document, path, step)
        path.append(step)
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
    return path


def _narrowed(document: Any, path: list[str | int], name: Any) -> Any:
    """``document`` with the mapping at ``path`` reduced to its entry ``name``."""
    if not path:
        return {name: document[name]}
    copy: Any = dict(document) if isinstance(document, Mapping) else list(document)
    copy[path[0]] = _narrowed(document[path[0]], path[1:], name)
    return copy


def _fails_alike(document: Any, type_: Any, message: str) -> bool:
    try:
        msgspec.convert(document, type_)
    except msgspec.ValidationError as exc:
        return str(exc) == message
    return False


def _unwrap(info: mi.Type) -> mi.Type:
    return info.type if isinstance(info, mi.Metadata) else info


def _type_at(info: mi.Type, path: list[str | int]) -> mi.Type:
    """The declared type of the value at ``path`` below ``info``."""
    for step in path:
        info = _unwrap(info)
        if isinstance(info, mi.UnionType):
            info = _unwrap(next((t for t in info.types if not isinstance(t, mi.NoneType)), info))
        if isinstance(info, mi.StructType | mi.DataclassType):
            info = next((f.type for f in info.fields if f.encode_name == step), mi.AnyType())
        elif isinstance(info, mi.DictType):
            info = info.value_type
        elif isinstance(info, mi.TupleType) and isinstance(step, int):
            info = info.item_types[step]
        elif isinstance(info, _LISTS):
            info = info.item_type
    return info


def _problem(info: mi.Type) -> str:
    """What a value of type ``info`` must be, e.g. ``must be a number >= 0``."""
    if isinstance(info, mi.Metadata) and info.extra and "problem" in info.extra:
        return str(info.extra["problem"])
    return "must be " + _expected(info)


def _expected(info: mi.Type) -> str:
    choices = _choices(info)
    if choices:
        return choices[0] if len(choices) == 1 else "one of " + ", ".join(choices)
    info = _unwrap(info)
    if isinstance(info, mi.UnionType):
        members = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if any(isinstance(t, mi.FloatType) for t in members):  # an int is a number too
            members = [t for t in members if not isinstance(t, mi.IntType)]
        nouns = ["a boolean" if isinstance(t, mi.BoolType) else _expected(t) for t in members]
        return " or ".join([", ".join(nouns[:-1]), nouns[-1]] if len(nouns) > 1 else nouns)
    if isinstance(info, mi.IntType | mi.FloatType):
        return ("an integer" if isinstance(info, mi.IntType) else "a number") + _bounds(info)
    if isinstance(info, mi.StrType):
        return "a non-empty string" if info.min_length else "a string"
    if isinstance(info, mi.TupleType):  # the only fixed-length lists of the config: ranges
        return "a list [low, high]"
    if isinstance(info, _LISTS):
        strings = " of strings" if isinstance(info.item_type, mi.StrType) else ""
        return ("a non-empty list" if info.min_length else "a list") + strings
    if isinstance(info, _MAPPINGS):
        return "a mapping"
    return "true or false" if isinstance(info, mi.BoolType) else "something else"


def _bounds(info: mi.IntType | mi.FloatType) -> str:
    bounds = [
        (op, value)
        for op, value in ((">=", info.ge), (">", info.gt), ("<=", info.le), ("<", info.lt))
        if value is not None and abs(value) < FINITE
    ]
    if [op for op, _ in bounds] == [">=", "<="]:
        return f" between {bounds[0][1]:g} and {bounds[1][1]:g}"
    return "".join(f" {op} {value:g}" for op, value in bounds)


def _choices(info: mi.Type) -> tuple[str, ...]:
    if isinstance(info, mi.Metadata):
        if info.extra and "one_of" in info.extra:
            return tuple(info.extra["one_of"])
        info = info.type
    if isinstance(info, mi.LiteralType):
        return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in info.values)
    return ()


def _unknown_key(known: Iterable[str]) -> str:
    return f"unknown key (known: {', '.join(sorted(known))})"


def _name(key: str, path: Iterable[Any]) -> str:
    """``key`` followed by ``path``: names joined by dots, list indexes in brackets."""
    for step in path:
        if isinstance(step, int) and not isinstance(step, bool):
            key = f"{key}[{step}]"
        elif step != "":
            key = f"{key}.{step}" if key else str(step)
    return key
