"""The vLLM backend: the install hint without vLLM; the engine arguments, sampling parameters and
multimodal prompts it builds, checked against the hf backend's rendering of the same
conversations on the tiny model; its glue (offline ``LLM`` and ``AsyncLLM``) against stand-ins;
and, where vLLM is installed (CI's ``.venv-vllm``), against vLLM's real classes up to what needs
a GPU."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backend_support import needs_hf

from harness.backends import BackendContext
from harness.backends.options import MissingExtra
from harness.backends.vllm_engine import VLLMOptions, engine_kwargs, sampling_kwargs, to_reply
from harness.loop.policy import Request, Sampling
from harness.loop.rollout import RolloutConfig, make_episode
from harness.plugins import Harness

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_without_vllm_one_line_install_hint() -> None:
    from harness.backends.vllm_engine import make_vllm

    with pytest.raises(MissingExtra, match=r"pip install 'pixel-harness\[vllm\]'") as info:
        make_vllm("Qwen/Qwen2.5-VL-7B-Instruct", BackendContext())
    assert "\n" not in str(info.value)


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_cli_reports_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert (
        main(["eval", "--tasks", "vstar", "--model", "vllm:some/model", "--limit", "1", "--no_progress"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'pixel-harness[vllm]'" in err


def test_engine_kwargs() -> None:
    options = VLLMOptions(tensor_parallel_size=2, max_model_len=16384, max_images=16, min_pixels=None)
    assert engine_kwargs("org/model", options, seed=3) == {
        "model": "org/model",
        "tensor_parallel_size": 2,
        "dtype": "auto",
        "seed": 3,
        "gpu_memory_utilization": 0.9,
        "enforce_eager": False,
        "trust_remote_code": False,
        "limit_mm_per_prompt": {"image": 16, "video": 1},
        "mm_processor_kwargs": {"max_pixels": 16384 * 28 * 28},
        "enable_prefix_caching": True,
        "max_model_len": 16384,
    }


@pytest.mark.parametrize(
    ("sampling", "options", "expected"),
    [
        (
            Sampling(max_new_tokens=2048, seed=5),
            VLLMOptions(stop_at_tool_call=True),
            {
                "temperature": 0.0,
                "top_p": 1.0,
                "max_tokens": 2048,
                "seed": 5,
                "stop": ["<|im_end|>", "<|endoftext|>", "</tool_call>"],
            },
        ),
        (
            Sampling(temperature=0.7, top_p=0.9, max_new_tokens=64, seed=1),
            VLLMOptions(),  # the default, as released: </tool_call> is not a stop
            {
                "temperature": 0.7,
                "top_p": 0.9,
                "max_tokens": 64,
                "seed": 1,
                "stop": ["<|im_end|>", "<|endoftext|>"],
                "top_k": 0,  # vLLM's "off"
            },
        ),
        (
            Sampling(temperature=1.0, top_p=0.95, top_k=40, max_new_tokens=64, seed=1),
            VLLMOptions(),  # the released GRPO sampling
            {"temperature": 1.0, "top_p": 0.95, "top_k": 40},
        ),
        (Sampling(top_k=40), VLLMOptions(), {"temperature": 0.0, "top_k": 0}),  # greedy: no top-k
    ],
)
def test_sampling_kwargs(sampling: Sampling, options: VLLMOptions, expected: dict[str, Any]) -> None:
    got = sampling_kwargs(sampling, options, stop_token_ids=[7, 9])
    assert {k: got[k] for k in expected} == expected
    assert got["include_stop_str_in_output"] is True  # </tool_call> must survive; the rest is cut after
    assert got["stop_token_ids"] == [7, 9]


def fake_output(text: str, finish: str, n_tokens: int = 5, n_prompt: int = 11) -> Any:
    completion = types.SimpleNamespace(text=text, token_ids=list(range(n_tokens)), finish_reason=finish)
    return types.SimpleNamespace(outputs=[completion], prompt_token_ids=list(range(n_prompt)))


@pytest.mark.parametrize(
    ("text", "finish", "reply_text", "reason"),
    [
        ("look <tool_call>{}</tool_call>", "stop", "look <tool_call>{}</tool_call>", "stop"),
        ("done<|im_end|>", "stop", "done", "stop"),
        ("cut off", "length", "cut off", "length"),
        ("<tool_call>{}</tool_call>", "length", "<tool_call>{}</tool_call>", "length"),
        # text after </tool_call> survives (a final answer, not a call), as released
        (
            "<tool_call>{}</tool_call>\nSo \\boxed{A}<|im_end|>",
            "stop",
            "<tool_call>{}</tool_call>\nSo \\boxed{A}",
            "stop",
        ),
    ],
)
def test_to_reply(text: str, finish: str, reply_text: str, reason: str) -> None:
    reply = to_reply(fake_output(text, finish), Sampling(), VLLMOptions(), seconds=0.5)
    assert (reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == (
        reply_text,
        reason,
        11,
        5,
    )


@pytest.fixture
def conversations(
    backend_harness: Harness, make_samples: Any, scripted_policy: Callable[[str], Any]
) -> list[Request]:
    """Second-turn requests (original + crop, or video + selected frames) of real episodes."""
    oracle = scripted_policy("oracle")
    out = []
    for task in ("vstar", "mvbench", "tallyqa"):
        spec = backend_harness.task(task)
        for sample in make_samples(task, 1):
            episode = make_episode(spec, sample, backend_harness.tools, RolloutConfig())
            first = Request(list(episode.messages), Sampling(), sample, 0, 0)
            episode.step(oracle.generate([first])[0])
            out.append(Request(list(episode.messages), Sampling(), sample, 1, 0))
    return out


@needs_hf
def test_prompts_match_the_hf_backend(hf_policy: Any, conversations: list[Request]) -> None:
    from harness.backends.hf import render_prompts
    from harness.backends.vllm_engine import build_prompts

    options = VLLMOptions()
    payloads = build_prompts(hf_policy.processor, conversations, options)
    assert [p["prompt"] for p in payloads] == render_prompts(
        hf_policy.processor, [r.messages for r in conversations]
    )
    for payload, request in zip(payloads, conversations, strict=True):
        data = payload["multi_modal_data"]
        hf_inputs = hf_policy._encode([request])
        # the same text and pixels give the same model input as the hf backend's
        ours = hf_policy.processor(
            text=[payload["prompt"]],
            images=data.get("image"),
            videos=[list(v) for v in data["video"]] if "video" in data else None,
            video_metadata=[
                {"total_num_frames": len(v), "fps": 2.0, "frames_indices": list(range(len(v)))}
                for v in data.get("video", [])
            ]
            or None,
            return_tensors="pt",
        )
        assert ours["input_ids"].tolist() == hf_inputs["input_ids"].tolist()
        for key in ("pixel_values", "pixel_values_videos"):
            if key in hf_inputs:
                assert np.array_equal(ours[key].numpy(), hf_inputs[key].numpy()), key
        n_images = sum(p["type"] == "image" for m in request.messages for p in m["content"])
        assert len(data.get("image", [])) == n_images
        if "video" in data:
            (video,) = data["video"]
            assert video.ndim == 4 and video.shape[-1] == 3 and video.dtype == np.uint8
            assert payload["mm_processor_kwargs"] == {"fps": options.video_fps}


@needs_hf
def test_policy_glue_with_a_stand_in_engine(
    tiny_model: Path, conversations: list[Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    """VLLMPolicy's own code (not vLLM) against a stand-in module with vLLM's two names."""
    calls: dict[str, Any] = {}

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            calls["engine"] = kwargs

        def generate(self, prompts: list[dict[str, Any]], params: list[Any], use_tqdm: bool) -> list[Any]:
            if any("too long" in p["prompt"] for p in prompts):
                raise ValueError("prompt too long")
            calls.setdefault("batches", []).append(len(prompts))
            return [fake_output(f"reply {k}<|im_end|>", "stop") for k in range(len(prompts))]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw))
    from harness.backends.vllm_engine import VLLMPolicy

    policy = VLLMPolicy(str(tiny_model), VLLMOptions(tensor_parallel_size=2, engine="offline"), seed=4)
    assert calls["engine"]["tensor_parallel_size"] == 2 and calls["engine"]["seed"] == 4
    assert policy.stop_token_ids == [
        policy.processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")
    ]
    replies = policy.generate(conversations)
    assert [r.text for r in replies] == [f"reply {k}" for k in range(len(conversations))]
    assert calls["batches"] == [len(conversations)]  # one round, one generate call
    long = conversations[0].messages + [{"role": "user", "content": [{"type": "text", "text": "too long"}]}]
    import dataclasses

    mixed = policy.generate([conversations[1], dataclasses.replace(conversations[0], messages=long)])
    assert mixed[0].finish_reason == "stop" and mixed[1].finish_reason == "error"
    # the rollout engine's interface on the offline engine: waiting requests batched together
    futures = [policy.submit(r) for r in conversations]
    assert [f.result(timeout=30).text for f in futures][0].startswith("reply ")
    policy.close()


def _stand_in_async_vllm(monkeypatch: pytest.MonkeyPatch, calls: dict[str, Any]) -> None:
    """vLLM's names the async glue uses, as a stand-in: AsyncEngineArgs, AsyncLLM, SamplingParams."""
    import asyncio

    class AsyncEngineArgs:
        def __init__(self, **kwargs: Any) -> None:
            calls["engine_args"] = kwargs

    class AsyncLLM:
        in_flight = 0

        @classmethod
        def from_engine_args(cls, args: AsyncEngineArgs) -> AsyncLLM:
            calls["loop_thread"] = __import__("threading").current_thread().name
            return cls()

        async def generate(self, prompt: dict[str, Any], params: dict[str, Any], request_id: str) -> Any:
            if "too long" in prompt["prompt"]:
                raise ValueError("prompt too long")
            AsyncLLM.in_flight += 1
            calls["max_in_flight"] = max(calls.get("max_in_flight", 0), AsyncLLM.in_flight)
            calls.setdefault("ids", []).append(request_id)
            calls.setdefault("output_kind", set()).add(params["output_kind"])
            await asyncio.sleep(0.2)
            AsyncLLM.in_flight -= 1
            yield fake_output(f"reply {params['seed']}<|im_end|>", "stop")

        def shutdown(self) -> None:
            calls["shutdown"] = True

    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
    modules = {
        "vllm": vllm,
        "vllm.engine": types.ModuleType("vllm.engine"),
        "vllm.engine.arg_utils": types.SimpleNamespace(AsyncEngineArgs=AsyncEngineArgs),
        "vllm.v1": types.ModuleType("vllm.v1"),
        "vllm.v1.engine": types.ModuleType("vllm.v1.engine"),
        "vllm.v1.engine.async_llm": types.SimpleNamespace(AsyncLLM=AsyncLLM),
        "vllm.sampling_params": types.SimpleNamespace(
            RequestOutputKind=types.SimpleNamespace(FINAL_ONLY="final-only")
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


@needs_hf
def test_async_engine_glue_with_a_stand_in(
    tiny_model: Path, conversations: list[Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    """engine=async (the default): AsyncEngineArgs with the same arguments plus prefix caching,
    each request on its own into AsyncLLM.generate, all in flight together, final output only."""
    import dataclasses

    calls: dict[str, Any] = {}
    _stand_in_async_vllm(monkeypatch, calls)
    from harness.backends.vllm_engine import VLLMPolicy

    policy = VLLMPolicy(str(tiny_model), VLLMOptions(), seed=4)
    try:
        assert calls["engine_args"] == engine_kwargs(str(tiny_model), VLLMOptions(), 4)
        assert calls["engine_args"]["enable_prefix_caching"] is True
        assert calls["loop_thread"] == "harness-vllm-async"
        requests = [
            dataclasses.replace(r, sampling=dataclasses.replace(r.sampling, seed=10 + k))
            for k, r in enumerate(conversations)
        ]
        futures = [policy.submit(r) for r in requests]
        assert [f.result(timeout=60).text for f in futures] == [
            f"reply {10 + k}" for k in range(len(requests))
        ]
        assert calls["max_in_flight"] == len(requests)  # not one at a time
        assert len(set(calls["ids"])) == len(requests) and calls["output_kind"] == {"final-only"}
        long = conversations[0].messages + [
            {"role": "user", "content": [{"type": "text", "text": "too long"}]}
        ]
        bad = policy.generate([dataclasses.replace(conversations[0], messages=long)])
        assert bad[0].finish_reason == "error" and "too long" in bad[0].text
    finally:
        policy.close()
    assert calls["shutdown"] is True


def test_engine_option_is_validated() -> None:
    with pytest.raises(ValueError, match="engine must be async or offline"):
        VLLMOptions(engine="sync")


# -- the real vLLM (CI's .venv-vllm); everything short of generation, which needs a GPU ----------

needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="needs vLLM (CI's second environment, .venv-vllm)")


@needs_vllm
@pytest.mark.parametrize("options", [VLLMOptions(), VLLMOptions(stop_at_tool_call=True)])
def test_real_sampling_params_accept_our_arguments(options: VLLMOptions) -> None:
    import vllm
    from vllm.sampling_params import RequestOutputKind

    kwargs = sampling_kwargs(Sampling(temperature=0.7, top_p=0.9, max_new_tokens=64, seed=5), options, [7])
    params = vllm.SamplingParams(**kwargs, output_kind=RequestOutputKind.FINAL_ONLY)
    assert (params.temperature, params.top_p, params.max_tokens, params.seed) == (0.7, 0.9, 64, 5)
    assert params.stop == kwargs["stop"] and params.include_stop_str_in_output
    assert params.output_kind == RequestOutputKind.FINAL_ONLY


@needs_vllm
def test_real_engine_args_accept_our_arguments(tiny_model: Path) -> None:
    from vllm.engine.arg_utils import AsyncEngineArgs, EngineArgs

    kwargs = engine_kwargs(str(tiny_model), VLLMOptions(max_model_len=4096), seed=3)
    for cls in (EngineArgs, AsyncEngineArgs):
        args = cls(**kwargs)
        assert args.model == str(tiny_model) and args.seed == 3 and args.enable_prefix_caching is True
        assert args.limit_mm_per_prompt == {"image": 16, "video": 1}
        assert args.mm_processor_kwargs == kwargs["mm_processor_kwargs"]


@needs_vllm
def test_real_model_config_of_the_tiny_model(tiny_model: Path) -> None:
    """vLLM reads the tiny Qwen2.5-VL's config as a multimodal Qwen2.5-VL model (no GPU needed)."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    args = AsyncEngineArgs(**engine_kwargs(str(tiny_model), VLLMOptions(max_model_len=4096), seed=0))
    config = args.create_model_config()
    assert config.is_multimodal_model
    assert "Qwen2_5_VLForConditionalGeneration" in config.architectures
    assert config.max_model_len == 4096


@needs_vllm
def test_real_async_llm_construction_stops_only_for_want_of_a_gpu(tiny_model: Path) -> None:
    """AsyncLLM.from_engine_args gets as far as this machine allows: on a GPU machine it builds
    (and is shut down); here it must fail on the device, not on our arguments."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    args = AsyncEngineArgs(
        **engine_kwargs(str(tiny_model), VLLMOptions(max_model_len=4096, gpu_memory_utilization=0.2), 0)
    )
    try:
        engine = AsyncLLM.from_engine_args(args)
    except Exception as exc:  # noqa: BLE001 (which error vLLM raises without a GPU varies)
        text = f"{type(exc).__name__}: {exc}".lower()
        assert any(w in text for w in ("cuda", "gpu", "device", "nvml", "platform", "driver")), text
    else:
        engine.shutdown()
