"""Tool-use traces for SFT, built by driving the harness's own :class:`~harness.episode.Episode`.

A trace is what the eval rollout would record for a policy that reasons briefly, calls the tool
on the annotated region (V* ``target_boxes``; ``key_frames`` for videos), sees the tool result and
answers in ``\\boxed{}``. Because the conversation comes out of ``Episode.step`` itself, its
messages are exactly the eval protocol's (system prompt, observations as user turns with images,
error texts), so SFT trains on the format that ``harness eval`` shows the model.

Also reads the Pixel-Reasoner SFT data (``message_list`` records: Qwen message format, tool calls
inside assistant text, tool results as user turns with images) into the same message format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from harness.backends.scripted import boxed, oracle_box, tool_call_text
from harness.episode import Episode, Message
from harness.policy import Reply
from harness.records import Sample
from harness.rollout import RolloutConfig, make_episode
from harness.task import TaskSpec
from harness.tools import ToolSpec

ZOOM_THOUGHT = "The detail is small; let me zoom in on the region that matters."
VIDEO_THOUGHT = "Let me look closer at the frames that matter."
ANSWER_THOUGHT = "Now the detail is clear."


def trace_replies(sample: Sample) -> list[str] | None:
    """The scripted replies of the trace for ``sample``; ``None`` without a box or key frames."""
    if sample.media_kind == "video":
        frames = sample.metadata.get("key_frames")
        if not frames:
            return None
        call = tool_call_text("select_frames", {"target_frames": [int(f) for f in frames]}, VIDEO_THOUGHT)
    else:
        box = oracle_box(sample)
        if box is None:
            return None
        call = tool_call_text("crop_image_normalized", {"bbox_2d": box, "target_image": 1}, ZOOM_THOUGHT)
    return [call, f"{ANSWER_THOUGHT} {boxed(sample.answer)}"]


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
    spec: TaskSpec, samples: Sequence[Sample], tools: Sequence[ToolSpec], config: RolloutConfig
) -> list[Episode]:
    """One finished trace per sample that has a target; the ones whose tool call failed are dropped."""
    out = []
    for sample in samples:
        replies = trace_replies(sample)
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


def _pr_part(part: Any, root: Path) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("text", "")}
    if kind in ("image", "image_url"):
        ref = part.get("image") or part.get("image_url") or ""
        ref = ref.get("url", "") if isinstance(ref, dict) else ref
        path = Path(str(ref).removeprefix("file://"))
        return {
            "type": "image",
            "image": Image.open(path if path.is_absolute() else root / path).convert("RGB"),
        }
    raise ValueError(f"unsupported content part {kind!r}")


def read_pixel_reasoner_sft(path: Path, image_root: Path | None = None) -> Iterator[list[Message]]:
    """Each ``message_list`` of a Pixel-Reasoner SFT JSON file, in the harness message format.

    Image paths are read relative to ``image_root`` (default: the file's folder).
    """
    root = image_root if image_root is not None else Path(path).parent
    records = json.loads(Path(path).read_text(encoding="utf-8"))
    for k, record in enumerate(records):
        messages = record.get("message_list") if isinstance(record, dict) else None
        if not isinstance(messages, list):
            raise ValueError(f"{path}: record {k} has no message_list")
        out = []
        for m in messages:
            content = m["content"]
            parts = [_pr_part(p, root) for p in (content if isinstance(content, list) else [content])]
            out.append({"role": m["role"], "content": parts})
        yield out
