"""Trace synthesis: eval-protocol transcripts from the Episode itself; Pixel-Reasoner SFT reading."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from harness.loop.limits import Limits
from harness.loop.rollout import RolloutConfig
from harness.plugins import Harness
from harness.records import Sample
from harness.scoring.modes import score_trajectory
from harness_plugins.traces import read_pixel_reasoner_sft, synthesize, to_trl_example, trace_replies


def test_traces_follow_the_eval_protocol(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    spec = harness_instance.task("vstar")
    episodes = synthesize(spec, make_samples("vstar", 4), harness_instance.tools, RolloutConfig())
    assert len(episodes) == 4
    for ep in episodes:
        roles = [m["role"] for m in ep.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        assert "<tool_call>" in ep.messages[2]["content"][0]["text"]
        observation = [p["type"] for p in ep.messages[3]["content"]]
        assert observation == ["text", "image"]  # the crop sits in a user turn, as eval shows it
        traj = ep.trajectory()
        assert (traj.n_ops, traj.n_errors, traj.end_reason) == (1, 0, "answer")
        assert score_trajectory(spec, ep.sample, traj).score == 1.0


def test_trace_without_target_is_skipped(make_samples: Callable[..., list[Sample]]) -> None:
    bare = dataclasses.replace(make_samples("vstar", 1)[0], metadata={})
    assert trace_replies(bare) is None


def test_to_trl_example_uses_ordered_placeholders(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    spec = harness_instance.task("vstar")
    ep = synthesize(spec, make_samples("vstar", 1), harness_instance.tools, RolloutConfig(limits=Limits()))[0]
    example = to_trl_example(ep.messages)
    assert example["images"] == ep.images
    n_placeholders = sum(p == {"type": "image"} for m in example["messages"] for p in m["content"])
    assert n_placeholders == len(ep.images) == 2


def test_read_pixel_reasoner_sft(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "a.png")
    record = {
        "message_list": [
            {"role": "system", "content": [{"type": "text", "text": "sys"}]},
            {"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "q"}]},
            {"role": "assistant", "content": "<tool_call>{}</tool_call>"},
        ]
    }
    (tmp_path / "sft.json").write_text(json.dumps([record]))
    (conv,) = list(read_pixel_reasoner_sft(tmp_path / "sft.json"))
    assert [m["role"] for m in conv] == ["system", "user", "assistant"]
    assert conv[1]["content"][0]["image"].size == (56, 56)  # released SFT processor: >= 4*28*28 pixels
    assert conv[2]["content"] == [{"type": "text", "text": "<tool_call>{}</tool_call>"}]
    (tmp_path / "bad.json").write_text(json.dumps([{"x": 1}]))
    with pytest.raises(ValueError, match="message_list"):
        list(read_pixel_reasoner_sft(tmp_path / "bad.json"))


def test_video_traces_select_the_annotated_frames(
    harness_instance: Harness, make_samples: Callable[..., list[Sample]]
) -> None:
    spec = harness_instance.task("mvbench")
    samples = [s for s in make_samples("mvbench", 4) if s.metadata.get("key_frames")]
    episodes = synthesize(spec, samples, harness_instance.tools, RolloutConfig())
    assert episodes and len(episodes) == len(samples)
    for ep in episodes:
        traj = ep.trajectory()
        assert traj.turns[0].tool_call is not None and traj.turns[0].tool_call.name == "select_frames"
        assert score_trajectory(spec, ep.sample, traj).score == 1.0
