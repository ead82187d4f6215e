"""JSON safety for records: text without lone surrogates, non-finite floats as strings, and
dataclasses rebuilt from JSON with the field named in every error (see :mod:`harness.records`).

Also :func:`short`, the one ``repr`` cut to a length that error messages quote values with.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")

_SURROGATE = re.compile("[\ud800-\udfff]")
#: How ``to_dict`` writes non-finite floats (and ``from_dict`` reads them back into float fields).
NONFINITE: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def clean_text(text: str) -> str:
    """``text`` with every lone UTF-16 surrogate replaced by U+FFFD (a surrogate pair becomes its
    character); ``text`` itself when it has none, which is the common, allocation-free case.
    Not a string (a broken backend's ``None``): its ``str()``."""
    if not isinstance(text, str):
        return str(text)
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean(value: Any) -> Any:
    """``value`` with :func:`clean_text` applied to every string inside (dict keys included); the
    same object when nothing changes."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (list, tuple)):
        items = [clean(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = [(clean(k), clean(v)) for k, v in value.items()]
        if all(k2 is k and v2 is v for (k2, v2), (k, v) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    return value


def json_number(value: float) -> float | str:
    """``value`` itself when finite, else its string form (``"NaN"``, ``"Infinity"``, ``"-Infinity"``)."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def to_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return json_number(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): to_json(v) for k, v in value.items()}
    return value


def from_json(tp: Any, value: Any) -> Any:
    """Rebuild ``value`` as type ``tp`` (dataclasses, tuples, optionals, dicts)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return from_json(arg, value)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__} {short(value)}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in value)
        return tuple(from_json(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {k: from_json(vt, v) for k, v in value.items()}
    if tp is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and value in NONFINITE:
            return NONFINITE[value]
    return value


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (ending ``...``) for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def _fields(cls: type[Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """Resolved type hints and field names of a dataclass, computed once per class (reading a
    samples.jsonl builds tens of thousands of records; resolving hints each time dominated)."""
    return typing.get_type_hints(cls), frozenset(f.name for f in dataclasses.fields(cls))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from a dict made by ``to_dict`` (unknown keys are an error)."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints, names = _fields(typing.cast(Any, cls))
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {}
    for k, v in data.items():
        try:
            kwargs[k] = from_json(hints[k], v)
        except (TypeError, ValueError) as exc:  # name the field: "Sample.media: expected a list, ..."
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(f"{cls.__name__}.{k}: {exc}") from None
    return cls(**kwargs)
