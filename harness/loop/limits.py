"""Episode limits. Defaults are the values used for the published Pixel-Reasoner numbers
(docs/reference.md section 2); every one can be changed from the CLI (``--limits key=value,...``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.coerce import coerce, field_types
from harness.errors import OptionError
from harness.loop.policy import DEFAULT_MAX_NEW_TOKENS

PATCH = 28  # Qwen2.5-VL resize factor (14 px patches merged 2x2)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one episode.

    Pixel budgets (Qwen2.5-VL smart-resize semantics, factor 28), as in the released evaluation:

    - ``source_min_pixels``..``source_max_pixels`` (256..8000 * 28*28): each input image as the
      tools see it. Crops are cut from this copy (the released ``eval_minpixel``/``eval_maxpixel``).
    - ``crop_min_pixels``..``crop_max_pixels`` (256..5120 * 28*28): a crop is resized into this
      range; its size is the ``Image Size: WxH`` text, and crops of crops are cut from it.
    - ``frame_min_pixels``..``frame_max_pixels`` (4..512 * 28*28): each video frame (qwen_vl_utils'
      ``fetch_video`` with ``max_pixels=512*28*28``); its size is the ``Frame Size`` text.
    - ``min_pixels``..``max_pixels`` (512..5120 * 28*28): the serving engine's processor bounds
      (the released ``MIN_PIXELS``/``MAX_PIXELS``). Every image of the conversation (inputs, crops,
      video frames, selected frames) is resized into this range once more before the model sees
      it, as the released vLLM engine's processor did; the episode does it, so backends send the
      images as they are.
    """

    max_ops: int = 4
    max_images: int = 16
    max_context_tokens: int = 12 * 1024 - 200
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS  # the one stored reply budget of an episode
    min_pixels: int = 512 * PATCH * PATCH
    max_pixels: int = 5120 * PATCH * PATCH
    source_min_pixels: int = 256 * PATCH * PATCH
    source_max_pixels: int = 8000 * PATCH * PATCH
    crop_min_pixels: int = 256 * PATCH * PATCH
    crop_max_pixels: int = 5120 * PATCH * PATCH
    frame_min_pixels: int = 4 * PATCH * PATCH
    frame_max_pixels: int = 512 * PATCH * PATCH
    num_frames: int = 16
    max_frames_per_call: int = 8
    crop_padding: float = 0.1
    min_crop_side: int = PATCH

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise OptionError(f"limit {f.name} must be >= 0, got {value}")
        if self.min_pixels > self.max_pixels:
            raise OptionError("limit min_pixels must not exceed max_pixels")
        if self.source_min_pixels > self.source_max_pixels:
            raise OptionError("limit source_min_pixels must not exceed source_max_pixels")
        if self.frame_min_pixels > self.frame_max_pixels:
            raise OptionError("limit frame_min_pixels must not exceed frame_max_pixels")
        if self.crop_min_pixels > self.crop_max_pixels:
            raise OptionError("limit crop_min_pixels must not exceed crop_max_pixels")

    def replace(self, **changes: Any) -> Limits:
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, text: str | None) -> Limits:
        """Parse ``key=value,key=value`` (values are ints, or a float for crop_padding)."""
        if not text:
            return cls()
        types = field_types(cls)
        changes: dict[str, Any] = {}
        for item in text.split(","):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in types:
                raise OptionError(
                    f"--limits: unknown or malformed item {item!r}; valid keys: {', '.join(types)}"
                )
            try:
                changes[key] = coerce(raw, types[key])
            except ValueError:
                raise OptionError(f"--limits: {key} needs a number, got {raw!r}") from None
        return cls(**changes)
