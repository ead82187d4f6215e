"""``--model_args key=value,...`` into a typed options dataclass, with errors that name the key.

Each model backend declares its options as a frozen dataclass whose fields have defaults and
simple types (``str``, ``int``, ``float``, ``bool``, or one of them ``| None``). :func:`parse_options`
converts the strings of ``BackendContext.model_args`` to those types; an unknown key or a value
of the wrong type is a ``ValueError`` naming the backend, the key and the valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class MissingExtra(ValueError):
    """A backend's optional dependency is not installed; the message is the pip command."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty),
    for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"", "none", "null"}


def _convert(backend: str, key: str, raw: str, annotation: Any) -> Any:
    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), annotation) if optional else annotation
    text = raw.strip()
    if optional and text.lower() in _NONE:
        return None
    try:
        if base is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        kind = {bool: "true/false", int: "an integer", float: "a number"}[base]
        raise ValueError(f"{backend}: --model_args {key} needs {kind}, got {raw!r}") from None
    return text


def parse_options(cls: type[T], model_args: Mapping[str, str], backend: str) -> T:
    """Build ``cls`` (a dataclass) from ``model_args``; unknown keys and bad values are ValueErrors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(model_args) - set(fields))
    if unknown:
        raise ValueError(
            f"{backend}: unknown --model_args {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {key: _convert(backend, key, raw, hints[key]) for key, raw in model_args.items()}
    return cls(**values)


def options_help(cls: type[Any]) -> str:
    """``key=default, ...`` of an options dataclass (for error messages and docs)."""
    return ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))
