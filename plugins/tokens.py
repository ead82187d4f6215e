"""Token ids and the assistant-only loss mask of a finished conversation, exactly as eval encodes it.

The eval backend (:class:`harness.backends.hf.HFPolicy`) renders each turn's conversation with the
processor's own chat template (``add_generation_prompt=True``) and encodes it with the processor
and the conversation's images. Training encodes the whole finished conversation the same way
(same template, same images, same processor call). The loss mask is found by encoding, for every
assistant turn, the prefix eval fed the model for that turn and the prefix that ends with the
turn: the tokens between them are the reply the model generated (plus the template's end-of-turn
tokens). Everything else (system, questions, tool observations and their image tokens) gets label
-100. No ``{% generation %}`` template surgery is needed, and the ids the loss sees are the ids eval
fed the model, by construction (checked by ``tests/plugins/test_parity.py``).

torch and transformers are imported by the caller's processor; this module imports torch lazily.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.chat import collect_media
from harness.loop.episode import Message

IGNORE = -100
# Concatenated over the batch (one entry per image / video / patch): the media and its grids.
MEDIA_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
)
# Right-padded with 0 like input_ids: Qwen2.5-VL's token types (image / video / text), without
# which transformers gives every token a 1-D position instead of the 3-D M-RoPE ones.
TOKEN_KEYS = ("mm_token_type_ids",)
BATCHED_KEYS = frozenset({"input_ids", "attention_mask", *MEDIA_KEYS, *TOKEN_KEYS})  # what collate batches


def encode(
    processor: Any, messages: Sequence[Message], *, generation_prompt: bool, video_fps: float = 2.0
) -> Any:
    """``messages`` rendered with the processor's chat template and encoded as the hf backend does
    (``video_fps``: the backend's ``video_fps`` option, for frame lists)."""
    text = processor.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=generation_prompt
    )
    images, videos = collect_media(messages)
    kwargs: dict[str, Any] = {}
    if videos:
        kwargs["video_metadata"] = [
            {"total_num_frames": len(v), "fps": video_fps, "frames_indices": list(range(len(v)))}
            for v in videos
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return processor(
            text=[text], images=images or None, videos=videos or None, return_tensors="pt", **kwargs
        )


@dataclass
class Encoded:
    """One conversation: model inputs (batch of 1), its labels (-100 outside assistant turns) and
    the [start, end) token span of each kept assistant turn."""

    inputs: dict[str, Any]
    labels: Any
    spans: tuple[tuple[int, int], ...] = ()


def encode_with_mask(processor: Any, messages: Sequence[Message], last_turns: int | None = None) -> Encoded:
    """The full conversation's inputs and labels that keep only assistant-turn tokens: every
    assistant turn, or only the last ``last_turns`` of them (the released SFT keeps the last two,
    so the deliberately wrong operation of a self-correction trace is never imitated)."""
    full = encode(processor, messages, generation_prompt=False)
    ids = full["input_ids"][0]
    labels = ids.clone().fill_(IGNORE)
    turns = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
    if last_turns is not None:
        turns = turns[-last_turns:] if last_turns > 0 else []
    spans = []
    for k in turns:
        prefix = encode(processor, messages[:k], generation_prompt=True)["input_ids"][0]
        start = int(prefix.shape[0])
        end = int(encode(processor, messages[: k + 1], generation_prompt=False)["input_ids"].shape[1])
        if not bool((ids[:start] == prefix).all()):
            raise ValueError(
                "the chat template is not prefix-stable: a turn's prompt is not a prefix of the conversation"
            )
        labels[start:end] = ids[start:end]
        spans.append((start, end))
    return Encoded(inputs=dict(full), labels=labels, spans=tuple(spans))


def collate(processor: Any, pad_id: int, rows: Sequence[Encoded]) -> dict[str, Any]:
    """Right-pad a batch of encoded conversations into model inputs with ``labels``."""
    import torch

    width = max(int(r.inputs["input_ids"].shape[1]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, r in enumerate(rows):
        n = int(r.inputs["input_ids"].shape[1])
        ids[i, :n] = r.inputs["input_ids"][0]
        mask[i, :n] = r.inputs["attention_mask"][0]
        labels[i, :n] = r.labels
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    for key in TOKEN_KEYS:
        if all(key in r.inputs for r in rows):
            out[key] = torch.zeros((len(rows), width), dtype=rows[0].inputs[key].dtype)
            for i, r in enumerate(rows):
                out[key][i, : r.inputs[key].shape[1]] = r.inputs[key][0]
    for key in MEDIA_KEYS:
        parts = [torch.as_tensor(r.inputs[key]) for r in rows if key in r.inputs]
        if parts:
            out[key] = torch.cat(parts, dim=0)
    return out
