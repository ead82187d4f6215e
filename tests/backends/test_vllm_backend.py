"""The vLLM backend without vLLM: the install hint, and the engine arguments, sampling parameters
and multimodal prompts it builds, checked against the hf backend's rendering of the same
conversations on the tiny model."""

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
from harness.plugins import Harness
from harness.policy import Request, Sampling
from harness.rollout import RolloutConfig, make_episode

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
            },
        ),
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

    policy = VLLMPolicy(str(tiny_model), VLLMOptions(tensor_parallel_size=2), seed=4)
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
