"""``--model_args`` passed through to an inference engine's own argument class.

The vllm backend (:mod:`harness.backends.vllm_engine`) knows a few options of its own
(:class:`~harness.backends.vllm_engine.VLLMOptions`); every other ``key=value`` goes to vLLM's
engine constructor as it is, after it is checked against the fields of vLLM's argument
dataclass, ``vllm.engine.arg_utils.EngineArgs`` (what ``vllm.LLM(**kwargs)`` builds): so
``tensor_parallel_size``, ``pipeline_parallel_size``, ``data_parallel_size``,
``distributed_executor_backend``, ``quantization``, ``kv_cache_dtype``, ``max_num_seqs``,
``enable_prefix_caching``... whatever the installed vLLM accepts. An unknown key is a one-line
error naming it (and the closest field names); values are converted to the field's type by
:func:`harness.coerce.coerce` (``int``, ``float``, ``bool``, ``Literal`` choices, optionals; JSON for dicts and lists, which
cannot contain commas on the command line). Keys the harness sets itself are refused with the
option to use instead (:data:`VLLM_RESERVED`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import typing
from collections.abc import Mapping
from typing import Any

from harness.coerce import coerce, type_name
from harness.errors import OptionError

VLLM_ARGS_CLASS = "vllm.engine.arg_utils.EngineArgs"
VLLM_INSTALL_HINT = "the vllm backend needs vLLM (a GPU machine): pip install 'pixel-harness[vllm]'"
VLLM_RESERVED = {
    "model": "--model",
    "seed": "--seed",
    "limit_mm_per_prompt": "--model_args max_images=N,max_videos=N",
    "mm_processor_kwargs": "--model_args min_pixels=..,max_pixels=..,video_fps=..",
}


def split_model_args(model_args: Mapping[str, str], own: type[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(the keys that are fields of the backend's own options dataclass ``own``, the rest)."""
    names = {f.name for f in dataclasses.fields(own)}
    mine = {k: v for k, v in model_args.items() if k in names}
    return mine, {k: v for k, v in model_args.items() if k not in names}


def load_class(dotted: str) -> type[Any]:
    """Import ``package.module.Class``."""
    module, _, name = dotted.rpartition(".")
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls


def _hints(arg_class: type[Any]) -> dict[str, Any]:
    """Field name -> annotation; resolved where possible, else the annotation's text."""
    fields = {f.name: f.type for f in dataclasses.fields(arg_class)}
    try:
        return typing.get_type_hints(arg_class)
    except Exception:  # some annotation names a type importable only under TYPE_CHECKING
        pass
    out: dict[str, Any] = {}
    for name, annotation in fields.items():  # resolve field by field; keep the text where that fails
        probe = type(
            "_Probe", (), {"__annotations__": {name: annotation}, "__module__": arg_class.__module__}
        )
        try:
            out[name] = typing.get_type_hints(probe)[name]
        except Exception:
            out[name] = annotation
    return out


def engine_args(
    extra: Mapping[str, str],
    arg_class: type[Any],
    *,
    backend: str,
    own: type[Any] | None = None,
    reserved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check ``extra`` against the dataclass ``arg_class`` and convert each value to its field's type.

    ``own`` (the backend's options dataclass) is only used to list the valid keys in the error.
    """
    hints = _hints(arg_class)
    own_names = [f.name for f in dataclasses.fields(own)] if own is not None else []
    out: dict[str, Any] = {}
    for key, raw in extra.items():
        if reserved and key in reserved:
            raise OptionError(f"{backend}: --model_args {key} is set by the harness; use {reserved[key]}")
        if key not in hints:
            close = difflib.get_close_matches(key, [*hints, *own_names])
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            mine = f"its own options ({', '.join(own_names)}) " if own_names else ""
            raise OptionError(
                f"{backend}: unknown --model_args {key}{hint}: neither one of {mine}nor a field of "
                f"{arg_class.__module__}.{arg_class.__qualname__}"
            )
        try:
            out[key] = coerce(raw, hints[key])
        except ValueError as exc:
            raise OptionError(
                f"{backend}: --model_args {key}={raw!r}: {exc} ({arg_class.__qualname__}.{key}: {type_name(hints[key])})"
            ) from None
    return out


def vllm_engine_args(extra: Mapping[str, str], own: type[Any] | None = None) -> dict[str, Any]:
    """``extra`` validated against the installed vLLM's ``EngineArgs`` (needs vLLM)."""
    from harness.backends.options import MissingExtra

    try:
        arg_class = load_class(VLLM_ARGS_CLASS)
    except ImportError as exc:
        raise MissingExtra(VLLM_INSTALL_HINT) from exc
    return engine_args(extra, arg_class, backend="vllm", own=own, reserved=VLLM_RESERVED)
