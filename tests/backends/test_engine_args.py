"""``--model_args`` pass-through to vLLM's engine: validated against its ``EngineArgs`` fields,
converted to their types, handed to ``vllm.LLM``. vLLM is replaced by a test double (a module with
an ``EngineArgs`` dataclass shaped like vLLM's and an ``LLM`` that builds it) where it is absent."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from backend_support import needs_hf

from harness.backends import BackendContext, parse_model_args
from harness.backends.engine_args import engine_args, split_model_args, vllm_engine_args
from harness.backends.options import MissingExtra
from harness.backends.vllm_engine import VLLMOptions, engine_kwargs
from harness.coerce import coerce

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@dataclass
class EngineArgs:
    """A stand-in for ``vllm.engine.arg_utils.EngineArgs`` (a subset of its fields and types)."""

    model: str = "facebook/opt-125m"
    seed: int | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    distributed_executor_backend: Literal["ray", "mp", "uni", "external_launcher"] | None = None
    enable_prefix_caching: bool | None = None
    max_num_seqs: int | None = None
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3"] = "auto"
    quantization: str | None = None
    hf_overrides: dict[str, Any] | None = None
    limit_mm_per_prompt: dict[str, int] = field(default_factory=dict)
    mm_processor_kwargs: dict[str, Any] | None = None
    dtype: str = "auto"
    max_model_len: int | None = None
    enforce_eager: bool = False
    trust_remote_code: bool = False
    later: "UnresolvableType | None" = None  # type: ignore[name-defined]  # noqa: F821, UP037


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Install the stand-in as ``vllm`` (with ``vllm.engine.arg_utils``); returns what LLM got."""
    calls: dict[str, Any] = {}

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            calls["engine"] = kwargs
            calls["args"] = EngineArgs(**kwargs)  # an unknown keyword would fail here, as in vLLM

    @dataclass
    class AsyncEngineArgs(EngineArgs):
        """vLLM's ``AsyncEngineArgs`` extends ``EngineArgs`` the same way."""

    class AsyncLLM:
        @classmethod
        def from_engine_args(cls, args: AsyncEngineArgs) -> AsyncLLM:
            calls["engine"] = dataclasses.asdict(args)
            calls["args"] = args
            return cls()

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM  # type: ignore[attr-defined]
    vllm.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
    engine = types.ModuleType("vllm.engine")
    arg_utils = types.ModuleType("vllm.engine.arg_utils")
    arg_utils.EngineArgs = EngineArgs  # type: ignore[attr-defined]
    arg_utils.AsyncEngineArgs = AsyncEngineArgs  # type: ignore[attr-defined]
    async_llm = types.ModuleType("vllm.v1.engine.async_llm")
    async_llm.AsyncLLM = AsyncLLM  # type: ignore[attr-defined]
    modules = {
        "vllm": vllm,
        "vllm.engine": engine,
        "vllm.engine.arg_utils": arg_utils,
        "vllm.v1": types.ModuleType("vllm.v1"),
        "vllm.v1.engine": types.ModuleType("vllm.v1.engine"),
        "vllm.v1.engine.async_llm": async_llm,
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


@pytest.mark.parametrize(
    ("raw", "annotation", "expected"),
    [
        ("4", int, 4),
        ("0.85", float, 0.85),
        ("true", bool, True),
        ("off", bool, False),
        ("none", int | None, None),
        ("8", int | None, 8),
        ("external_launcher", Literal["ray", "mp", "external_launcher"] | None, "external_launcher"),
        ("FP8", Literal["auto", "fp8"], "fp8"),
        ('{"image":4}', dict[str, int], {"image": 4}),
        ("[1]", tuple[int, ...], (1,)),
        ("awq", str, "awq"),
        ("12", "SomeUnresolvedName", 12),
        ("fast", "SomeUnresolvedName", "fast"),
        ("True", "SomeUnresolvedName", True),
    ],
)
def test_convert(raw: str, annotation: Any, expected: Any) -> None:
    assert coerce(raw, annotation) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            "tensor_paralel_size=2",
            r"unknown --model_args tensor_paralel_size \(did you mean tensor_parallel_size",
        ),
        (
            "no_such_thing=1",
            r"unknown --model_args no_such_thing: neither one of its own options .* nor a field",
        ),
        ("seed=3", r"--model_args seed is set by the harness; use --seed"),
        ("limit_mm_per_prompt={}", r"limit_mm_per_prompt is set by the harness; use --model_args max_images"),
        ("max_num_seqs=many", r"--model_args max_num_seqs='many': expected one of int"),
        ("kv_cache_dtype=int4", r"kv_cache_dtype='int4': expected one of auto, fp8, fp8_e4m3"),
        ("enable_prefix_caching=maybe", r"enable_prefix_caching='maybe'"),
    ],
)
def test_engine_args_refuse(args: str, message: str) -> None:
    _, extra = split_model_args(parse_model_args(args), VLLMOptions)
    with pytest.raises(ValueError, match=message) as info:
        engine_args(
            extra,
            EngineArgs,
            backend="vllm",
            own=VLLMOptions,
            reserved={"seed": "--seed", "limit_mm_per_prompt": "--model_args max_images=N,max_videos=N"},
        )
    assert "\n" not in str(info.value) and str(info.value).startswith("vllm: ")


def test_split_keeps_the_backends_own_options() -> None:
    args = parse_model_args("tensor_parallel_size=2,max_images=4,data_parallel_size=2,max_num_seqs=8")
    own, extra = split_model_args(args, VLLMOptions)
    assert own == {"tensor_parallel_size": "2", "max_images": "4"}
    assert extra == {"data_parallel_size": "2", "max_num_seqs": "8"}


def test_engine_kwargs_pass_extras_through() -> None:
    kwargs = engine_kwargs("org/m", VLLMOptions(), 0, {"data_parallel_size": 2, "max_num_seqs": 8})
    assert kwargs["data_parallel_size"] == 2 and kwargs["max_num_seqs"] == 8
    assert kwargs["model"] == "org/m" and kwargs["seed"] == 0


def test_vllm_engine_args_use_the_installed_class(fake_vllm: dict[str, Any]) -> None:
    extra = {"pipeline_parallel_size": "2", "quantization": "awq", "hf_overrides": '{"a":1}'}
    assert vllm_engine_args(extra, VLLMOptions) == {
        "pipeline_parallel_size": 2,
        "quantization": "awq",
        "hf_overrides": {"a": 1},
    }
    with pytest.raises(ValueError, match="model is set by the harness; use --model"):
        vllm_engine_args({"model": "x"})


@needs_hf
@pytest.mark.parametrize("engine_kind", ["async", "offline"])  # AsyncLLM (default) or vllm.LLM
def test_make_vllm_passes_engine_arguments_to_the_engine(
    fake_vllm: dict[str, Any], tiny_model: Path, engine_kind: str
) -> None:
    from harness.backends.vllm_engine import make_vllm

    args = parse_model_args(
        "tensor_parallel_size=2,data_parallel_size=2,distributed_executor_backend=external_launcher,"
        f"enable_prefix_caching=true,max_num_seqs=64,gpu_memory_utilization=0.5,kv_cache_dtype=fp8,engine={engine_kind}"
    )
    make_vllm(str(tiny_model), BackendContext(model_args=args, seed=7))
    engine = fake_vllm["engine"]
    assert {k: engine[k] for k in ("tensor_parallel_size", "data_parallel_size", "max_num_seqs")} == {
        "tensor_parallel_size": 2,
        "data_parallel_size": 2,
        "max_num_seqs": 64,
    }
    assert engine["distributed_executor_backend"] == "external_launcher"
    assert engine["enable_prefix_caching"] is True and engine["kv_cache_dtype"] == "fp8"
    assert engine["gpu_memory_utilization"] == 0.5 and engine["seed"] == 7
    built = fake_vllm["args"]
    assert dataclasses.asdict(built)["data_parallel_size"] == 2  # an EngineArgs was built from them


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_without_vllm_engine_arguments_need_vllm() -> None:
    from harness.backends.vllm_engine import make_vllm

    ctx = BackendContext(model_args={"data_parallel_size": "2"})
    with pytest.raises(MissingExtra, match=r"pip install 'pixel-harness\[vllm\]'"):
        make_vllm("org/model", ctx)


@pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (a GPU machine)")
def test_real_engine_args_class() -> None:
    assert vllm_engine_args({"tensor_parallel_size": "2", "max_num_seqs": "8"}) == {
        "tensor_parallel_size": 2,
        "max_num_seqs": 8,
    }
