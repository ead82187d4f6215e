"""Tool-use traces for SFT, built by driving the harness's own :class:`~harness.loop.episode.Episode`.

A trace is what the eval rollout would record for a policy that reasons briefly, calls the tool
on the annotated region (V* ``target_boxes``; ``key_frames`` for videos), sees the tool result and
answers in ``\\boxed{}``. Two more styles, as in the released SFT data: an error-induced
*self-correction* trace (a deliberately wrong crop or frame choice, its observation, a
correction, the right operation, the answer; trained with the loss on the last two assistant
turns only, so the wrong operation is never imitated) and a *textual* trace (an answer without
any operation, to keep textual reasoning on easy queries). Because the conversation comes out of ``Episode.step`` itself, its
messages are exactly the eval protocol's (system prompt, observations as user turns with images,
error texts), so SFT trains on the format that ``harness eval`` shows the model.

Also reads the Pixel-Reasoner SFT data (``message_list`` records: Qwen message format, tool calls
inside assistant text, tool results as user turns with images) into the same message format.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from harness.backends.scripted import boxed, oracle_box, tool_call_text
from harness.errors import UserError
from harness.loop.episode import Episode, Message
from harness.loop.policy import Reply
from harness.loop.rollout import RolloutConfig, make_episode
from harness.records import Sample
from harness.task import TaskSpec
from harness.tools import ToolSpec

ZOOM_THOUGHT = "The detail is small; let me zoom in on the region that matters."
VIDEO_THOUGHT = "Let me look closer at the frames that matter."
ANSWER_THOUGHT = "Now the detail is clear."
CORRECTION_THOUGHT = "This is not the region that matters; the detail is elsewhere. Let me look again."
TEXT_THOUGHT = "The answer can be read from the input directly."
TraceStyle = Literal["single", "self_correction", "textual"]


def wrong_box(box: Sequence[float]) -> list[float]:
    """A 0.2 x 0.2 box (fractions) in the corner farthest from ``box``'s centre; with the tool's
    0.1 padding its crop stays on the other half of the image from the target's centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x = 0.05 if cx > 0.5 else 0.75
    y = 0.05 if cy > 0.5 else 0.75
    return [x, y, round(x + 0.2, 4), round(y + 0.2, 4)]


def wrong_frames(key: Sequence[int], total: int = 16) -> list[int]:
    """As many frames as ``key`` (at least one), from those farthest from the key frames."""
    keyset = set(key)
    far = sorted(
        (f for f in range(1, total + 1) if f not in keyset), key=lambda f: -min(abs(f - k) for k in key)
    )
    return sorted(far[: max(1, min(len(key), 8))])


def trace_replies(sample: Sample, style: TraceStyle = "single") -> list[str] | None:
    """The scripted replies of the ``style`` trace for ``sample``; ``None`` when a tool trace
    needs a box or key frames the sample does not have."""
    if style == "textual":
        return [f"{TEXT_THOUGHT} {boxed(sample.answer)}"]
    if sample.media_kind == "video":
        frames = sample.metadata.get("key_frames")
        if not frames:
            return None
        key = [int(f) for f in frames]
        call = tool_call_text("select_frames", {"target_frames": key}, VIDEO_THOUGHT)
        wrong = tool_call_text("select_frames", {"target_frames": wrong_frames(key)}, VIDEO_THOUGHT)
        fixed = tool_call_text("select_frames", {"target_frames": key}, CORRECTION_THOUGHT)
    else:
        box = oracle_box(sample)
        if box is None:
            return None
        call = tool_call_text("crop_image_normalized", {"bbox_2d": box, "target_image": 1}, ZOOM_THOUGHT)
        args = {"bbox_2d": wrong_box(box), "target_image": 1}
        wrong = tool_call_text("crop_image_normalized", args, ZOOM_THOUGHT)
        fixed = tool_call_text(
            "crop_image_normalized", {"bbox_2d": box, "target_image": 1}, CORRECTION_THOUGHT
        )
    answer = f"{ANSWER_THOUGHT} {boxed(sample.answer)}"
    return [wrong, fixed, answer] if style == "self_correction" else [call, answer]


def trace_styles(n: int, self_correction_ratio: float, textual_ratio: float, seed: int) -> list[TraceStyle]:
    """A seeded style per sample: ``textual`` and ``self_correction`` at the given rates."""
    if self_correction_ratio < 0 or textual_ratio < 0 or self_correction_ratio + textual_ratio > 1:
        raise UserError("trace ratios must be >= 0 and sum to at most 1")
    rng = random.Random(seed)
    out: list[TraceStyle] = []
    for _ in range(n):
        u = rng.random()
        out.append(
            "textual"
            if u < textual_ratio
            else "self_correction"
            if u < textual_ratio + self_correction_ratio
            else "single"
        )
    return out


def play(episode: Episode, replies: Sequence[str]) -> Episode:
    """Feed ``replies`` to ``episode`` in order (it must finish exactly on the last one)."""
    for k, text in enumerate(replies):
        if episode.done:
            raise ValueError(f"episode {episode.sample.key} ended before reply {k} ({episode.end_reason})")
        episode.step(Reply(text))
    if not episode.done:
        raise ValueError(f"episode {episode.sample.key} did not end after {len(replies)} replies")
    return episode


def synthesize(
    spec: TaskSpec,
    samples: Sequence[Sample],
    tools: Sequence[ToolSpec],
    config: RolloutConfig,
    styles: Sequence[TraceStyle] | None = None,
) -> list[Episode]:
    """One finished trace per sample (``styles[i]``, default ``single``) that has a target; the
    ones whose tool call failed are dropped."""
    out = []
    for i, sample in enumerate(samples):
        replies = trace_replies(sample, styles[i] if styles is not None else "single")
        if replies is None:
            continue
        episode = play(make_episode(spec, sample, tools, config), replies)
        if episode.n_errors == 0 and episode.end_reason == "answer":
            out.append(episode)
    return out


def to_trl_example(messages: Sequence[Message]) -> dict[str, Any]:
    """``{"messages", "images"}`` as TRL's vision collator wants them: image parts become
    ``{"type": "image"}`` placeholders filled, in order, from ``images``. Videos are not supported."""
    images: list[Image.Image] = []
    out: list[Message] = []
    for message in messages:
        parts = []
        for part in message["content"]:
            if part["type"] == "image":
                images.append(part["image"])
                parts.append({"type": "image"})
            elif part["type"] == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                raise ValueError(f"SFT traces support images and text, not {part['type']!r} parts")
        out.append({"role": message["role"], "content": parts})
    return {"messages": out, "images": images}


def read_pixel_reasoner_sft(path: Path, image_root: Path | None = None) -> Iterator[list[Message]]:
    """Each ``message_list`` of a Pixel-Reasoner SFT JSON file (images and videos), in the harness
    message format (:func:`harness_plugins.pr_data.read_sft_data`)."""
    from .pr_data import read_sft_data

    yield from read_sft_data(path, image_root)
