"""Settings as typed, frozen structs built from plain data, with errors that name the key.

Every settings object of driftradar is a :class:`Settings` (a frozen ``msgspec.Struct`` that
refuses unknown keys) whose fields carry their constraints, e.g.
``cooldown_seconds: NonNegative = 3600.0``. :func:`convert` builds one from plain data
(a YAML document, command-line values) and turns msgspec's
``Expected `float` >= 0 - at `$.retrain.cooldown_seconds``` into
``ConfigError("retrain.cooldown_seconds", "must be a number >= 0")``; the problem is said
from the field's declared type, and entries of mappings are named by their key (msgspec
only says ``[...]``). Checks that involve several fields live in the struct's
``__post_init__`` and raise :class:`ConfigError` with the key below the struct.

The default topic names and metrics port are defined here, once, for every process.

>>> class Join(Settings):
...     ttl_seconds: Positive = 60.0
>>> convert({"ttl_seconds": 5}, Join)
Join(ttl_seconds=5.0)
>>> convert({"churn": {"ttl_seconds": 0}}, dict[str, Join], "models")
Traceback (most recent call last):
...
streams.core.errors.ConfigError: models.churn.ttl_seconds: must be a number > 0
>>> convert({"ttl": 1}, Join, "join")
Traceback (most recent call last):
...
streams.core.errors.ConfigError: join.ttl: unknown key (known: ttl_seconds)
>>> convert(None, Join)  # an empty YAML section counts as an empty mapping
Join(ttl_seconds=60.0)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Final, TypeVar

import msgspec
from msgspec import inspect as mi

from streams.core.errors import ConfigError

__all__ = [
    "DEFAULT_METRICS_PORT",
    "DEPLOYMENTS_TOPIC",
    "TOPICS",
    "Count",
    "Fraction",
    "KafkaProperties",
    "NonNegative",
    "Number",
    "Port",
    "Positive",
    "PositiveInt",
    "Settings",
    "Text",
    "TopicsConfig",
    "convert",
    "one_of",
    "option",
]

T = TypeVar("T")

#: Upper bound of every number: msgspec's bounds take no infinity, and ``.inf`` is refused.
_FINITE: Final = sys.float_info.max

Number = Annotated[float, msgspec.Meta(ge=-_FINITE, le=_FINITE)]
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=_FINITE)]
Positive = Annotated[float, msgspec.Meta(gt=0, le=_FINITE)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Text = Annotated[str, msgspec.Meta(min_length=1)]
#: librdkafka properties, passed through verbatim.
KafkaProperties = dict[str, str | int | float | bool]


def one_of(names: Iterable[str], *, problem: str | None = None) -> msgspec.Meta:
    """Constraint of a string (or mapping key) that takes only ``names``, in that order;
    ``problem`` replaces the error's usual ``must be one of ...``.

    >>> convert("loud", Annotated[str, one_of(["info", "warning"])], "severity")
    Traceback (most recent call last):
    ...
    streams.core.errors.ConfigError: severity: must be one of info, warning
    """
    ordered = tuple(names)
    pattern = "^(" + "|".join(re.escape(name) for name in ordered) + ")$"
    extra: dict[str, Any] = {"one_of": ordered}
    if problem is not None:
        extra["problem"] = problem
    return msgspec.Meta(pattern=pattern, extra=extra)


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every settings struct: immutable, and unknown keys are refused."""


class TopicsConfig(Settings, frozen=True):
    """Topic names (``topics:``); the defaults are the contract's (DESIGN.md "Topics")."""

    predictions: Text = "predictions"
    ground_truth: Text = "ground-truth"
    alerts: Text = "drift-alerts"
    retrain_requests: Text = "retrain-requests"
    dead_letter: Text = "dead-letter"

    @property
    def inputs(self) -> tuple[str, str]:
        """The two co-partitioned input topics: predictions, ground truth."""
        return (self.predictions, self.ground_truth)


#: The contract's topic names.
TOPICS: Final = TopicsConfig()
#: Where the retrain worker's local trainer announces new model versions.
DEPLOYMENTS_TOPIC: Final = "model-deployments"
#: Port of the monitor's ``/metrics``, ``/healthz`` and ``/readyz``.
DEFAULT_METRICS_PORT: Final = 9108


# -- plain data -> struct -------------------------------------------------------------------


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
    """An ``argparse`` ``type=`` reading a command-line value as a ``type_`` (such as
    :data:`PositiveInt`): the option refuses what the config key refuses, in the same words.

    >>> option(PositiveInt)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer >= 1, got '0'
    >>> option(Positive)("2.5")
    2.5
    """

    def parse(text: str) -> Any:
        try:
            return msgspec.convert(text, type_, strict=False)
        except msgspec.ValidationError:
            problem = _problem(mi.type_info(type_))
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}") from None

    return parse


_MAPPING_TYPES: Final = (mi.StructType, mi.DataclassType, mi.DictType)


def _complete(value: Any, info: mi.Type, key: str) -> Any:
    """``value`` with ``None`` mappings made empty; unknown keys of dataclasses refused
    (msgspec refuses those of Structs itself, but silently drops a dataclass's)."""
    if isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.UnionType):
        if value is None and any(isinstance(t, mi.NoneType) for t in info.types):
            return None
        info = next((t for t in info.types if isinstance(t, _MAPPING_TYPES)), info)
    if not isinstance(info, _MAPPING_TYPES):
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return value
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
_FIELD: Final = re.compile(r"^Object (contains unknown|missing required) field `(.*)`$")


def _explain(
    exc: msgspec.ValidationError, document: Any, type_: Any, info: mi.Type, key: str
) -> ConfigError:
    message = str(exc)
    match = _WHERE.search(message)
    steps: list[str | int | None] = []
    if match is not None:
        for name, index in _STEP.findall(match.group(2)):
            steps.append(name or (None if index == "..." else int(index)))
    path = _locate(steps, document, type_, message)
    cause = exc.__cause__
    if cause is not None:
        # a ConfigError (``key``) or a detector library parameter error (``parameter``)
        # raised while building the struct at ``path`` names the key below it
        below = getattr(cause, "key", None) or getattr(cause, "parameter", None)
        problem = getattr(cause, "problem", str(cause))
        return ConfigError(_name(key, [*path, *str(below or "").split(".")]), problem)
    where = _type_at(info, path)
    if match is not None and match.group(1):  # a mapping key of the wrong type
        node = _node_at(document, path)
        key_type = where.key_type if isinstance(where, mi.DictType) else where
        bad = next((k for k in node if not _valid(k, key_type)), "?")
        choices = _choices(key_type)
        problem = _unknown_key(choices) if choices else "keys must be strings"
        return ConfigError(_name(key, [*path, str(bad)]), problem)
    field = _FIELD.match(message[: match.start()] if match else message)
    if field is not None:
        if field.group(1) == "missing required":
            return ConfigError(_name(key, [*path, field.group(2)]), "is required")
        known = {f.encode_name: f for f in getattr(_unwrap(where), "fields", ())}
        return ConfigError(_name(key, [*path, field.group(2)]), _unknown_key(known))
    return ConfigError(_name(key, path), _problem(where))


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
    head, rest = path[0], path[1:]
    copy: Any = dict(document) if isinstance(document, Mapping) else list(document)
    copy[head] = _narrowed(document[head], rest, name)
    return copy


def _fails_alike(document: Any, type_: Any, message: str) -> bool:
    try:
        msgspec.convert(document, type_)
    except msgspec.ValidationError as exc:
        return str(exc) == message
    return False


def _node_at(document: Any, path: list[str | int]) -> Any:
    for step in path:
        document = document[step]
    return document


def _valid(value: Any, info: mi.Type) -> bool:
    if isinstance(info, mi.Metadata):
        info = info.type
    if not isinstance(value, str):
        return False
    if isinstance(info, mi.StrType) and info.pattern is not None:
        return re.search(info.pattern, value) is not None
    if isinstance(info, mi.LiteralType):
        return value in info.values
    return True


def _unwrap(info: mi.Type) -> mi.Type:
    return info.type if isinstance(info, mi.Metadata) else info


def _type_at(info: mi.Type, path: list[str | int]) -> mi.Type:
    """The declared type of the value at ``path`` below ``info``."""
    for step in path:
        info = _unwrap(info)
        if isinstance(info, mi.UnionType):
            info = next((t for t in info.types if not isinstance(t, mi.NoneType)), info)
            info = _unwrap(info)
        if isinstance(info, mi.StructType | mi.DataclassType):
            info = next((f.type for f in info.fields if f.encode_name == step), mi.AnyType())
        elif isinstance(info, mi.DictType):
            info = info.value_type
        elif isinstance(info, mi.TupleType) and isinstance(step, int):
            info = info.item_types[step]
        elif isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
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
        return ", ".join(nouns[:-1]) + " or " + nouns[-1] if len(nouns) > 1 else nouns[0]
    if isinstance(info, mi.IntType | mi.FloatType):
        noun = "an integer" if isinstance(info, mi.IntType) else "a number"
        return noun + _bounds(info)
    if isinstance(info, mi.StrType):
        return "a non-empty string" if info.min_length else "a string"
    if isinstance(info, mi.TupleType):  # the only fixed-length lists of the config: ranges
        return "a list [low, high]"
    if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        strings = " of strings" if isinstance(info.item_type, mi.StrType) else ""
        return ("a non-empty list" if info.min_length else "a list") + strings
    if isinstance(info, _MAPPING_TYPES):
        return "a mapping"
    return "true or false" if isinstance(info, mi.BoolType) else "something else"


def _bounds(info: mi.IntType | mi.FloatType) -> str:
    bounds = [
        (op, value)
        for op, value in ((">=", info.ge), (">", info.gt), ("<=", info.le), ("<", info.lt))
        if value is not None and abs(value) < _FINITE
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


def _name(key: str, path: Iterable[str | int | Any]) -> str:
    """``key`` followed by ``path``: names joined by dots, list indexes in brackets."""
    for step in path:
        if step == "":
            continue
        if isinstance(step, int) and not isinstance(step, bool):
            key = f"{key}[{step}]"
        else:
            key = f"{key}.{step}" if key else str(step)
    return key
