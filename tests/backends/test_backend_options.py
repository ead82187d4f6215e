"""``--model_args`` parsing shared by the model backends (pure, no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from harness.backends.options import parse_options


@dataclass(frozen=True)
class Opts:
    name: str = "x"
    count: int = 1
    ratio: float = 0.5
    flag: bool = False
    limit: int | None = None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, Opts()),
        ({"name": "abc", "count": "3", "ratio": "0.25"}, Opts(name="abc", count=3, ratio=0.25)),
        ({"flag": "true"}, Opts(flag=True)),
        ({"flag": "0"}, Opts(flag=False)),
        ({"flag": "Yes"}, Opts(flag=True)),
        ({"limit": "7"}, Opts(limit=7)),
        ({"limit": "none"}, Opts(limit=None)),
        ({"limit": ""}, Opts(limit=None)),
    ],
)
def test_parses_typed_values(args: dict[str, str], expected: Opts) -> None:
    assert parse_options(Opts, args, "demo") == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"colour": "red"},
            r"demo: unknown --model_args colour; valid keys: count, flag, limit, name, ratio",
        ),
        ({"count": "two"}, r"demo: --model_args count needs an integer, got 'two'"),
        ({"ratio": "half"}, r"demo: --model_args ratio needs a number, got 'half'"),
        ({"flag": "maybe"}, r"demo: --model_args flag needs true/false, got 'maybe'"),
        ({"limit": "lots"}, r"demo: --model_args limit needs an integer, got 'lots'"),
    ],
)
def test_errors_name_the_key(args: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_options(Opts, args, "demo")


@pytest.mark.parametrize(
    ("module", "cls", "args", "message"),
    [
        ("harness.backends.hf", "HFOptions", {"dtype": "int8"}, "hf: --model_args dtype must be one of"),
        ("harness.backends.hf", "HFOptions", {"device": "tpu"}, "hf: --model_args device must be"),
        ("harness.backends.hf", "HFOptions", {"batch_size": "0"}, "batch_size must be >= 1"),
        (
            "harness.backends.hf",
            "HFOptions",
            {"min_pixels": "9", "max_pixels": "4"},
            "min_pixels must not exceed",
        ),
        ("harness.backends.openai_api", "OpenAIOptions", {"base_url": "ftp://x"}, "base_url must be an http"),
        ("harness.backends.openai_api", "OpenAIOptions", {"concurrency": "0"}, "concurrency must be >= 1"),
        ("harness.backends.openai_api", "OpenAIOptions", {"image_format": "gif"}, "png or jpeg"),
        ("harness.backends.vllm_engine", "VLLMOptions", {"tensor_parallel_size": "0"}, "must be >= 1"),
        ("harness.backends.vllm_engine", "VLLMOptions", {"gpu_memory_utilization": "2"}, r"in \(0, 1\]"),
    ],
)
def test_backend_options_validate(module: str, cls: str, args: dict[str, str], message: str) -> None:
    import importlib

    options: Any = getattr(importlib.import_module(module), cls)
    with pytest.raises(ValueError, match=message):
        parse_options(options, args, module.rsplit(".", 1)[-1])
