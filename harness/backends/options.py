"""``--model_args key=value,...`` into a typed options dataclass, with errors that name the key.

Each model backend declares its options as a frozen dataclass whose fields have defaults and
simple types (``str``, ``int``, ``float``, ``bool``, or one of them ``| None``). :func:`parse_options`
converts the strings of ``BackendContext.model_args`` to those types (:func:`harness.coerce.coerce`); an unknown key or a value
of the wrong type is a ``ValueError`` naming the backend, the key and the valid keys.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import TypeVar

from harness.coerce import coerce, describe
from harness.errors import OptionError, UserError

T = TypeVar("T")


class MissingExtra(UserError):
    """A backend's optional dependency is not installed; the message is the pip command."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty),
    for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_options(cls: type[T], model_args: Mapping[str, str], backend: str) -> T:
    """Build ``cls`` (a dataclass) from ``model_args``; unknown keys and bad values are ValueErrors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(model_args) - set(fields))
    if unknown:
        raise OptionError(
            f"{backend}: unknown --model_args {', '.join(unknown)}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for key, raw in model_args.items():
        try:
            values[key] = coerce(raw, hints[key])
        except ValueError:
            raise OptionError(
                f"{backend}: --model_args {key} needs {describe(hints[key])}, got {raw!r}"
            ) from None
    return cls(**values)
