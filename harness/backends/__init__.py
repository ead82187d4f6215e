"""Model backends. ``--model PREFIX:REST`` picks the factory registered under PREFIX.

Each backend module registers itself through ``harness_register_backends`` and imports its
heavy dependencies only when its factory is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harness.errors import OptionError
from harness.loop.policy import Policy
from harness.task import TaskSpec


@dataclass(frozen=True)
class BackendContext:
    """What a backend factory gets besides the text after ``PREFIX:``."""

    model_args: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    tasks: Mapping[str, TaskSpec] = field(default_factory=dict)


BackendFactory = Callable[[str, BackendContext], Policy]


def split_model(spec: str) -> tuple[str, str]:
    """``"hf:Qwen/Qwen2.5-VL-7B"`` -> ``("hf", "Qwen/Qwen2.5-VL-7B")``; no colon -> ``(spec, "")``."""
    prefix, _, rest = spec.partition(":")
    return prefix.strip(), rest.strip()


def parse_model_args(text: str | None) -> dict[str, str]:
    """Parse ``key=value,key=value`` into a dict (values stay strings; backends convert)."""
    out: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--model_args: expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out
