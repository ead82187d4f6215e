"""The training rollout and `harness eval` give identical transcripts and token ids; loss masks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from train_support import SMALL_LIMITS

from harness.cli import main
from harness.data import load_samples
from harness.loop.limits import Limits
from harness.loop.policy import Policy, Request, Sampling
from harness.loop.rollout import RolloutConfig, make_episode
from harness.plugins import Harness
from harness.records import Sample
from harness.run.results import read_samples
from harness_plugins.curiosity_grpo import Recorder, collect
from harness_plugins.traces import play


def _images(messages: list[dict[str, Any]]) -> list[bytes]:
    return [p["image"].tobytes() for m in messages for p in m["content"] if p["type"] == "image"]


def _texts(messages: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(m["role"], [p.get("text", p["type"]) for p in m["content"]]) for m in messages]


@pytest.mark.parametrize("kind", ["oracle", "random"])
def test_training_rollout_transcripts_equal_harness_eval(
    tmp_path: Path, harness_instance: Harness, scripted_policy: Callable[[str], Policy], kind: str
) -> None:
    seed = 3
    out = tmp_path / "run"
    argv = ["eval", "--tasks", "vstar", "--model", f"scripted:{kind}", "--limit", "4", "--seed", str(seed)]
    assert main([*argv, "--limits", SMALL_LIMITS, "--output_path", str(out), "--no_progress"]) == 0
    evaluated = {r.sample.id: r for r in read_samples(out / "samples.jsonl")}

    spec = harness_instance.task("vstar")
    samples = load_samples(spec, "synthetic", 4)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS), seed=seed)
    recorder = Recorder(scripted_policy(kind))
    rolls = collect(spec, samples, recorder, harness_instance.tools, config, generations=1)
    assert len(rolls) == len(evaluated) == 4
    for roll in rolls:
        ev = evaluated[roll.sample.id]
        assert roll.trajectory == ev.trajectory  # every turn, call, observation, end reason
        assert roll.score.score == ev.score.score
        # the recorded conversation is the one an Episode builds from eval's transcript
        replayed = play(
            make_episode(spec, roll.sample, harness_instance.tools, config),
            [t.reply for t in ev.trajectory.turns],
        )
        assert _texts(roll.messages) == _texts(replayed.messages)
        assert _images(roll.messages) == _images(replayed.messages)


def test_training_token_ids_are_eval_token_ids(
    tiny_policy: Any, harness_instance: Harness, scripted_policy: Callable[[str], Policy]
) -> None:
    from harness_plugins.tokens import encode_with_mask

    spec = harness_instance.task("vstar")
    samples = load_samples(spec, "synthetic", 2)
    config = RolloutConfig(limits=Limits.parse(SMALL_LIMITS))
    rolls = collect(spec, samples, Recorder(scripted_policy("oracle")), harness_instance.tools, config, 1)
    for roll in rolls:
        encoded = encode_with_mask(tiny_policy.processor, roll.messages)
        ids = encoded.inputs["input_ids"][0].tolist()
        turns = [k for k, m in enumerate(roll.messages) if m["role"] == "assistant"]
        assert len(turns) == 2
        for k in turns:  # what the eval backend feeds the model for this turn
            request = Request(roll.messages[:k], Sampling(), roll.sample, 0, 0)
            eval_ids = tiny_policy._encode([request])["input_ids"][0].tolist()
            assert ids[: len(eval_ids)] == eval_ids
            assert encoded.labels[len(eval_ids) - 1] == -100 and encoded.labels[len(eval_ids)] != -100


def test_observation_tokens_carry_no_loss(
    tiny_policy: Any, harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    from harness_plugins.tokens import IGNORE, encode_with_mask
    from harness_plugins.traces import synthesize

    spec = harness_instance.task("vstar")
    (ep,) = synthesize(
        spec,
        make_samples("vstar", 1),
        harness_instance.tools,
        RolloutConfig(limits=Limits.parse(SMALL_LIMITS)),
    )
    encoded = encode_with_mask(tiny_policy.processor, ep.messages)
    ids, labels = encoded.inputs["input_ids"][0], encoded.labels
    tok = tiny_policy.processor.tokenizer
    trained = tok.decode(ids[labels != IGNORE].tolist())
    replies = [m["content"][0]["text"] for m in ep.messages if m["role"] == "assistant"]
    assert trained == "".join(r + "<|im_end|>\n" for r in replies)
    image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert int((ids == image_pad).sum()) > 0
    assert not bool(((ids == image_pad) & (labels != IGNORE)).any())
    observation = ep.messages[3]["content"][0]["text"]
    assert observation not in trained and ep.prompt not in trained
