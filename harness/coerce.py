"""The one configuration layer: text (or a YAML value) to the type a config dataclass annotates.

Every ``key=value`` option of the command line goes through :func:`coerce`: backend options
(``--model_args``, :mod:`harness.backends.options`), vLLM engine arguments
(:mod:`harness.backends.engine_args`) and episode limits (``--episode_limits``,
:mod:`harness.loop.limits`). Trainer configs (:mod:`harness.trainer`) arrive as YAML values, which
are already typed; :func:`check` validates those against the same annotations.

Types understood: ``bool`` (``1/true/yes/on``, ``0/false/no/off``), ``int``, ``float``, ``str``,
``Path``, ``X | None`` (``none``, ``null`` or nothing is ``None``), unions, ``Literal`` choices
(case-insensitive), ``tuple``/``list``/``dict`` (JSON: a comma cannot appear in a command-line
value) and, for an annotation that is unknown or unresolved, an inferred value (booleans, JSON
numbers, else the text). A value that does not fit is a ``ValueError`` whose message says what
was expected; each caller adds the key and the flag.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
NONE = frozenset({"", "none", "null"})


def is_optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )


def type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def describe(annotation: Any) -> str:
    """What a value of ``annotation`` looks like, for ``needs X`` messages: ``an integer``,
    ``a number``, ``true/false``, ``png or jpeg``; the ``None`` of an optional is not named."""
    if is_optional(annotation):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        return describe(arms[0]) if len(arms) == 1 else " or ".join(describe(a) for a in arms)
    if typing.get_origin(annotation) is Literal:
        choices = [str(c) for c in typing.get_args(annotation)]
        return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
    known = {bool: "true/false", int: "an integer", float: "a number", str: "text", Path: "a path"}
    return known.get(annotation, type_name(annotation))


def _infer(text: str) -> Any:
    """A value whose annotation is unknown: booleans, numbers, null and JSON, else the text."""
    low = text.strip().lower()
    if low in {"true", "false"}:
        return low == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def coerce(raw: str, annotation: Any) -> Any:
    """``raw`` as a value of type ``annotation``; ``ValueError`` (what was expected) if it is not one."""
    text = raw.strip()
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, str) or annotation is Any:
        return _infer(text)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.lower() in NONE:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(text, arg)
            except ValueError:
                continue
        raise ValueError(f"expected one of {', '.join(type_name(a) for a in args)}")
    if origin is Literal:
        for choice in args:
            if str(choice) == text or str(choice).lower() == text.lower():
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, args))}")
    if annotation is bool:
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise ValueError("expected true or false")
    if annotation is int:
        return int(text)
    if annotation is float:
        return float(text)
    if annotation is str:
        return text
    if annotation is Path:
        return Path(text).expanduser()
    if origin in (dict, list, tuple) or annotation in (dict, list, tuple):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("expected JSON") from None
        return tuple(value) if (origin or annotation) is tuple else value
    return _infer(text)


def check(name: str, annotation: Any, value: Any) -> Any:
    """An already typed ``value`` (from YAML) checked against ``annotation``, int widened to
    float, numbers to text, text to ``Path``; ``ValueError`` names ``name``."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ValueError(f"{name}: {value!r} is not one of {list(typing.get_args(annotation))}")
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arm in typing.get_args(annotation):
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return check(name, arm, value)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{name}: {value!r} has the wrong type")
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        items = [check(name, inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if annotation is Path and isinstance(value, str):
        return Path(value)
    if isinstance(annotation, type) and not (
        isinstance(value, annotation) and (annotation is bool or not isinstance(value, bool))
    ):
        raise ValueError(f"{name}: expected {annotation.__name__}, got {value!r}")
    return value


def field_types(cls: type[Any]) -> dict[str, Any]:
    """A dataclass's field name -> resolved annotation."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}
