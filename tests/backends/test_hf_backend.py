"""The transformers backend on the tiny model (CPU): batching, stops, token counts, seeds, errors."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backend_support import needs_hf

from harness.backends import BackendContext
from harness.loop.limits import Limits
from harness.loop.policy import Policy, Request, Sampling
from harness.loop.rollout import RolloutConfig, rollout
from harness.plugins import Harness

pytestmark = needs_hf
CALL = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.6, 0.6], "target_image": 1}}\n</tool_call>'


@pytest.fixture
def force(hf_policy: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the model write given texts (one per batch row, the last one repeated), via a logits
    processor: the rest of the backend (stops, decoding, counting) runs for real."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    tokenizer = hf_policy.tokenizer

    class Forced(LogitsProcessor):
        def __init__(self, rows: list[list[int]]) -> None:
            self.rows, self.start = rows, None

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            self.start = input_ids.shape[1] if self.start is None else self.start
            step = input_ids.shape[1] - self.start
            for row in range(scores.shape[0]):
                seq = self.rows[min(row, len(self.rows) - 1)]
                scores[row] = -torch.inf
                scores[row, seq[min(step, len(seq) - 1)]] = 0.0
            return scores

    def apply(*texts: str) -> None:
        rows = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        original = hf_policy.model.generate

        def generate(**kwargs: Any) -> Any:
            return original(**kwargs, logits_processor=LogitsProcessorList([Forced(rows)]))

        monkeypatch.setattr(hf_policy.model, "generate", generate)

    return apply


def test_generates_for_images_and_video(hf_policy: Any, requests_for: Callable[..., list[Request]]) -> None:
    requests = requests_for("vstar", 2) + requests_for("mvbench", 1)
    replies = hf_policy.generate(requests)
    assert len(replies) == 3
    for request, reply in zip(requests, replies, strict=True):
        image_parts = [p for m in request.messages for p in m["content"] if p["type"] in ("image", "video")]
        assert image_parts
        assert reply.finish_reason in ("stop", "length")
        assert 1 <= reply.completion_tokens <= 16
        assert reply.prompt_tokens > 200  # the image / video tokens are counted
        assert reply.seconds > 0
    w, h = requests[0].messages[1]["content"][0]["image"].size
    assert replies[0].prompt_tokens > w * h // (28 * 28)  # one token per 28x28 patch, plus text


def test_batched_generation_equals_one_by_one(
    hf_policy: Any, requests_for: Callable[..., list[Request]], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = requests_for("vstar", 2, 8) + requests_for("mvbench", 1, 8) + requests_for("tallyqa", 1, 8)
    monkeypatch.setattr(hf_policy, "batch_size", 1)
    alone = hf_policy.generate(requests)
    monkeypatch.setattr(hf_policy, "batch_size", 4)  # one left-padded batch of four lengths
    together = hf_policy.generate(requests)
    strip = [(r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in alone]
    assert [(r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in together] == strip


@pytest.mark.parametrize(
    ("forced", "counted", "text", "finish"),
    [
        (  # as released, </tool_call> is not a stop: text after it stays (a final answer)
            f"Let me zoom.\n{CALL}\nSo the answer is \\boxed{{A}}.<|im_end|>junk",
            f"Let me zoom.\n{CALL}\nSo the answer is \\boxed{{A}}.<|im_end|>",
            f"Let me zoom.\n{CALL}\nSo the answer is \\boxed{{A}}.",
            "stop",
        ),
        (
            f"Let me zoom.\n{CALL}<|im_end|>",
            f"Let me zoom.\n{CALL}<|im_end|>",
            f"Let me zoom.\n{CALL}",
            "stop",
        ),
        (
            "The answer is \\boxed{A}.<|im_end|>junk",
            "The answer is \\boxed{A}.<|im_end|>",
            "The answer is \\boxed{A}.",
            "stop",
        ),
        ("42<|endoftext|>", "42<|endoftext|>", "42", "stop"),
        ("a", "a" * 12, "a" * 12, "length"),
    ],
    ids=["text-after-tool-call", "tool-call", "drops-im-end", "drops-endoftext", "length"],
)
def test_stops(
    hf_policy: Any,
    requests_for: Callable[..., list[Request]],
    force: Callable[..., None],
    forced: str,
    counted: str,
    text: str,
    finish: str,
) -> None:
    force(forced)
    (request,) = requests_for("vstar", 1, max_new_tokens=12 if finish == "length" else 160)
    (reply,) = hf_policy.generate([request])
    assert (reply.text, reply.finish_reason) == (text, finish)
    assert reply.completion_tokens == len(hf_policy.tokenizer.encode(counted, add_special_tokens=False))


def test_stop_at_tool_call_option(
    hf_policy: Any,
    requests_for: Callable[..., list[Request]],
    force: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # stop_at_tool_call=true (not the released behaviour) ends the turn right after </tool_call>
    monkeypatch.setattr(hf_policy, "options", dataclasses.replace(hf_policy.options, stop_at_tool_call=True))
    force(f"Let me zoom.\n{CALL}then more")
    (request,) = requests_for("vstar", 1, max_new_tokens=64)
    (reply,) = hf_policy.generate([request])
    assert (reply.text, reply.finish_reason) == (f"Let me zoom.\n{CALL}", "stop")


def test_rows_of_a_batch_stop_on_their_own(
    hf_policy: Any,
    requests_for: Callable[..., list[Request]],
    force: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hf_policy, "batch_size", 3)
    force(CALL + "<|im_end|>", "short<|im_end|>", "never stops ")
    replies = hf_policy.generate(requests_for("vstar", 3, max_new_tokens=100))
    assert [r.text for r in replies[:2]] == [CALL, "short"]
    assert [r.finish_reason for r in replies] == ["stop", "stop", "length"]
    assert replies[2].completion_tokens == 100


def test_multi_turn_with_crops_and_frames(
    hf_policy: Any, first_turn_oracle: Callable[[Policy], Policy], backend_harness: Harness, make_samples: Any
) -> None:
    items = [(backend_harness.task(t), s) for t in ("vstar", "mvbench") for s in make_samples(t, 2)]
    config = RolloutConfig(limits=Limits(max_new_tokens=8), batch_size=4)
    records = list(rollout(items, first_turn_oracle(hf_policy), backend_harness.tools, config))
    assert len(records) == 4
    for record in records:
        first, second = record.trajectory.turns[:2]
        assert first.observation is not None and first.observation.kind in ("crop", "frames")
        assert second.prompt_tokens is not None and second.completion_tokens is not None
        assert second.prompt_tokens > 50  # the original, the crop / frames, both turns' text


def test_context_budget_counts_backend_tokens(
    hf_policy: Any, force: Callable[..., None], backend_harness: Harness, make_samples: Any
) -> None:
    force(CALL + "<|im_end|>")
    items = [(backend_harness.task("vstar"), s) for s in make_samples("vstar", 1)]
    config = RolloutConfig(limits=Limits(max_new_tokens=64, max_context_tokens=300))
    (record,) = rollout(items, hf_policy, backend_harness.tools, config)
    assert record.trajectory.end_reason == "context"
    assert record.trajectory.turns[0].prompt_tokens > 300


def test_seeded_sampling_does_not_depend_on_the_batch(
    hf_policy: Any, requests_for: Callable[..., list[Request]]
) -> None:
    a, b = requests_for("vstar", 2, max_new_tokens=12, temperature=1.0)
    together = hf_policy.generate([b, a])
    (alone,) = hf_policy.generate([a])
    (reseeded,) = hf_policy.generate(
        [dataclasses.replace(a, sampling=dataclasses.replace(a.sampling, seed=7))]
    )
    assert together[1].text == alone.text
    assert reseeded.text != alone.text


def test_processor_leaves_episode_images_alone(
    hf_policy: Any, requests_for: Callable[..., list[Request]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="harness.backends.hf"):
        inputs = hf_policy._encode(requests_for("vstar", 1))
    (t, gh, gw), image = (
        inputs["image_grid_thw"][0].tolist(),
        requests_for("vstar", 1)[0].messages[1]["content"][0]["image"],
    )
    assert (t, gw * 14, gh * 14) == (1, *image.size)
    assert not caplog.records


def test_warns_when_its_bounds_would_resize(
    tiny_model: Path, requests_for: Callable[..., list[Request]], caplog: pytest.LogCaptureFixture
) -> None:
    from harness.backends.hf import HFOptions, HFPolicy

    policy = HFPolicy(str(tiny_model), HFOptions(device="cpu", max_pixels=64 * 28 * 28))
    with caplog.at_level(logging.WARNING, logger="harness.backends.hf"):
        policy.generate(requests_for("vstar", 1, max_new_tokens=2))
    assert "the processor resized" in caplog.text


def test_a_bad_conversation_is_that_episode_error(
    hf_policy: Any, requests_for: Callable[..., list[Request]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_policy, "batch_size", 4)
    good, bad = requests_for("vstar", 2, max_new_tokens=4)
    broken = [dict(m) for m in bad.messages]
    broken[1] = {"role": "user", "content": [{"type": "text", "text": "no image here <|image_pad|>"}]}
    replies = hf_policy.generate([good, dataclasses.replace(bad, messages=broken)])
    assert replies[0].finish_reason != "error"
    assert replies[1].finish_reason == "error" and "cannot encode" in replies[1].text


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("", {}, "hf needs a model"),
        ("@nope", {}, "unknown built-in model '@nope'"),
        ("./no/such/folder", {}, "no model folder"),
        ("@tiny", {"colour": "red"}, "unknown --model_args colour"),
    ],
)
def test_factory_errors_are_one_line(name: str, args: dict[str, str], message: str) -> None:
    from harness.backends.hf import make_hf

    with pytest.raises(ValueError, match=message) as info:
        make_hf(name, BackendContext(model_args=args))
    assert "\n" not in str(info.value)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_make_tiny_model_then_eval_all_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    model = tmp_path / "tiny-model"
    assert main(["make-tiny-model", str(model)]) == 0
    assert main(["make-tiny-model", str(model)]) == 2
    assert "not empty" in capsys.readouterr().err
    out = tmp_path / "run"
    argv = ["eval", "--tasks", "all", "--model", f"hf:{model}", "--data", "synthetic", "--limit", "2"]
    assert main([*argv, "--limits", "max_new_tokens=12", "--output_path", str(out), "--no_progress"]) == 0
    samples = rows(out / "samples.jsonl")
    assert len(samples) == 8
    for s in samples:  # every trajectory is recorded, garbage replies included
        turns = s["trajectory"]["turns"]
        assert turns and all(t["prompt_tokens"] and t["completion_tokens"] for t in turns)
        assert s["trajectory"]["end_reason"] in ("answer", "no_answer", "max_ops", "max_images", "context")
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == {"infovqa", "mvbench", "tallyqa", "vstar"}
    assert results["model"] == f"hf:{model}"


def test_cli_eval_without_model_runs_the_embedded_tiny_model(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    out = tmp_path / "demo"
    assert main(["eval", "--tasks", "vstar", "--limit", "2", "--output_path", str(out), "--no_progress"]) == 0
    captured = capsys.readouterr()
    assert "tiny random-weight" in captured.err and "mean nothing" in captured.err
    assert "vstar" in captured.out
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "hf:@tiny"
    assert results["config"]["limits"]["max_new_tokens"] == 64
    assert all(
        t["completion_tokens"] <= 64 for s in rows(out / "samples.jsonl") for t in s["trajectory"]["turns"]
    )


def test_hf_policy_respects_the_request_sampling(
    hf_policy: Any, requests_for: Callable[..., list[Request]]
) -> None:
    (request,) = requests_for("vstar", 1, max_new_tokens=3)
    longer = dataclasses.replace(request, sampling=Sampling(max_new_tokens=5, stop=()))
    short, long = hf_policy.generate([request, longer])
    assert short.completion_tokens <= 3 and long.completion_tokens <= 5


def test_bfloat16_weights_take_float_pixels(
    tiny_model: Path, requests_for: Callable[..., list[Request]]
) -> None:
    """The dtype a CUDA run uses by default, on the CPU: the processor's float32 pixels are cast."""
    from harness.backends.hf import HFOptions, HFPolicy

    policy = HFPolicy(str(tiny_model), HFOptions(device="cpu", dtype="bfloat16"))
    assert str(policy.model.dtype) == "torch.bfloat16"
    replies = policy.generate(
        requests_for("vstar", 1, max_new_tokens=4) + requests_for("mvbench", 1, max_new_tokens=4)
    )
    assert all(r.finish_reason in ("stop", "length") and 1 <= r.completion_tokens <= 4 for r in replies)


def test_top_k_is_applied_when_sampling(hf_policy: Any, requests_for: Callable[..., list[Request]]) -> None:
    """top_k=1 sampling can only pick the argmax: the greedy reply; without top-k the same seeds
    sample something else from the random model."""
    (request,) = requests_for("vstar", 1, max_new_tokens=12)
    (greedy,) = hf_policy.generate([request])
    sampled = [
        dataclasses.replace(
            request, sampling=dataclasses.replace(request.sampling, temperature=1.0, seed=s, top_k=k)
        )
        for k in (1, 0)
        for s in (1, 2)
    ]
    top1_a, top1_b, free_a, free_b = hf_policy.generate(sampled)
    assert top1_a.text == top1_b.text == greedy.text
    assert greedy.text not in (free_a.text, free_b.text)
