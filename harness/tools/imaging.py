"""Pixels of the visual tools: Qwen2.5-VL's smart resize into a pixel budget, the image an episode
shows, and the crop / frame selection the built-in tools run (pure functions on PIL images;
invalid arguments raise :class:`harness.tools.api.ToolError` with the text shown to the model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PIL import Image

from harness.json_safe import short
from harness.loop.limits import PATCH, Limits
from harness.tools.api import Box, ToolError

MAX_RATIO = 200

# Verbatim: released execute_tool messages.
TOO_MANY_FRAMES = (
    "Execution Error: You have selected {n} frames in total. Think again which frames you need to "
    "check in details (no more than {max} frames)"
)
FRAMES_OUT_OF_RANGE = (
    "Execution Error: There are {n} frames numbered in range [1,{n}]. "
    "Your selection `target_frames={tgt}` is out of range."
)
CROP_TOO_SMALL = "Cropped image is too small: {w}x{h}"


def smart_resize(
    height: int,
    width: int,
    factor: int = PATCH,
    min_pixels: int = 4 * PATCH * PATCH,
    max_pixels: int = 16384 * PATCH * PATCH,
) -> tuple[int, int]:
    """Qwen2.5-VL's target size ``(h, w)``: multiples of ``factor``, area within the pixel bounds.

    Rounds each side to the nearest multiple, then scales down (floor) when above ``max_pixels`` or
    up (ceil) when below ``min_pixels``, keeping the aspect ratio. Raises ``ValueError`` for
    non-positive sides or an aspect ratio above 200 (qwen_vl_utils semantics).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image sides must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, "
            f"got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB (itself when already RGB); transparent pixels of RGBA images become white (as released)."""
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_to_budget(image: Image.Image, min_pixels: int, max_pixels: int) -> Image.Image:
    """``image`` in RGB, resized with :func:`smart_resize` into ``min_pixels``..``max_pixels``."""
    image = to_rgb(image)
    width, height = image.size
    new_h, new_w = smart_resize(height, width, PATCH, min_pixels, max_pixels)
    if (new_w, new_h) == (width, height):
        return image
    return image.resize((new_w, new_h))


def shown_input(image: Image.Image, limits: Limits) -> Image.Image:
    """An input image as the model is shown it: bounded to the tools' source budget first, then
    resized into the engine's ``min_pixels``..``max_pixels`` (the two resizes of the released
    evaluation; :class:`harness.loop.episode.Episode` keeps the first copy for the tools)."""
    source = resize_to_budget(image, limits.source_min_pixels, limits.source_max_pixels)
    return resize_to_budget(source, limits.min_pixels, limits.max_pixels)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError
    out = float(value)
    if not math.isfinite(out):
        raise ValueError
    return out


def crop_image_normalized(
    image: Image.Image, bbox_2d: Any, *, padding: float = 0.1, min_side: int = PATCH
) -> tuple[Image.Image, tuple[int, int, int, int], Box]:
    """Cut ``bbox_2d`` = [x1, y1, x2, y2] out of ``image``; return (crop, pixel box, fraction box).

    The values are fractions of the image when all four are < 1, else pixels of this image (so
    [0, 0, 1, 1] means one pixel). The box is padded by ``padding`` (a fraction of the size) on each
    side, clamped to [0, 1] and rounded to pixels as PIL does; the crop must be larger than
    ``min_side`` in both dimensions. A list longer than four (e.g. a fifth "label" value) uses its
    first four, as the released code (which indexes ``bbox_2d[0..3]``) does.
    """
    if not isinstance(bbox_2d, (list, tuple)) or len(bbox_2d) < 4:
        raise ToolError(
            f"Execution Error: `bbox_2d` must be a list of 4 numbers [x1, y1, x2, y2], got {short(bbox_2d)}."
        )
    try:
        vals = [_number(v) for v in bbox_2d[:4]]
    except (TypeError, ValueError, OverflowError):
        raise ToolError(
            "Execution Error: `bbox_2d` must contain 4 finite numbers [x1, y1, x2, y2], "
            f"got {short(bbox_2d)}."
        ) from None
    img_w, img_h = image.size
    if img_w <= 0 or img_h <= 0:
        raise ToolError("Execution Error: the target image is empty.")
    if all(v < 1 for v in vals):
        x1, y1, x2, y2 = vals
    else:
        x1, y1, x2, y2 = vals[0] / img_w, vals[1] / img_h, vals[2] / img_w, vals[3] / img_h
    fx1, fy1, fx2, fy2 = (
        min(max(0.0, v), 1.0) for v in (x1 - padding, y1 - padding, x2 + padding, y2 + padding)
    )
    # PIL's crop rounds float boxes with round(); do it here so the recorded box is the real one.
    px = (round(fx1 * img_w), round(fy1 * img_h), round(fx2 * img_w), round(fy2 * img_h))
    w, h = px[2] - px[0], px[3] - px[1]
    if w < 0 or h < 0:
        raise ToolError(
            f"Execution Error: `bbox_2d` {short(bbox_2d)} is empty: x2 must be greater than x1 "
            "and y2 greater than y1."
        )
    if not (w > min_side and h > min_side):
        raise ToolError(CROP_TOO_SMALL.format(w=w, h=h))
    crop = image.crop(px)
    box_norm = (px[0] / img_w, px[1] / img_h, px[2] / img_w, px[3] / img_h)
    return crop, px, box_norm


def select_frames(
    frames: Sequence[Image.Image], target_frames: Any, *, max_frames: int = 8
) -> list[Image.Image]:
    """The frames at the 1-based indices ``target_frames`` (at most ``max_frames``, in range)."""
    if not isinstance(target_frames, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in target_frames
    ):
        raise ToolError(
            "Execution Error: `target_frames` must be a list of integer frame indices, "
            f"got {short(target_frames)}."
        )
    if not target_frames:
        raise ToolError("Execution Error: `target_frames` is empty; select at least one frame.")
    if len(target_frames) > max_frames:
        raise ToolError(TOO_MANY_FRAMES.format(n=len(target_frames), max=max_frames))
    n = len(frames)
    if min(target_frames) < 1 or max(target_frames) > n:
        raise ToolError(FRAMES_OUT_OF_RANGE.format(n=n, tgt=target_frames))
    return [frames[t - 1] for t in target_frames]
