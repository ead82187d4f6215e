"""An independent transcription of the released Pixel-Reasoner image arithmetic, for golden tests.

Written from the released sources, not from the harness (nothing here imports ``harness``):

- ``qwen_smart_resize``: qwen_vl_utils ``smart_resize`` (``round_by_factor`` / ``floor_by_factor``
  / ``ceil_by_factor``), used by the released ``fetch_image`` (input images, video frames) and
  ``resize_cropped`` (crops);
- ``engine_smart_resize``: transformers' ``Qwen2VLImageProcessor`` ``smart_resize``, what the vLLM
  engine's processor applied with ``mm_processor_kwargs`` min/max pixels = MIN_PIXELS/MAX_PIXELS;
- ``released_crop``: ``crop_image_normalized`` of
  curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py (padding 0.1, all-four-< 1
  rule, clamping, PIL's rounding of a float box, the ``w > 28 and h > 28`` assertion);
- the evaluation bounds of ``_generate_vllm``: inputs ``eval_minpixel``/``eval_maxpixel`` =
  256/8000 * 28*28, crops ``resize_cropped(min 256, max 5120)``, video frames ``max_pixels =
  512*28*28`` (qwen_vl_utils' default minimum 4*28*28), and the engine's 512/5120 * 28*28
  (scripts/example_eval.sh: MIN_PIXELS=401408, MAX_PIXELS=4014080).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

F = 28
P = F * F
EVAL_MIN, EVAL_MAX = 256 * P, 8000 * P  # eval_minpixel / eval_maxpixel ("for tools, should be 8000")
CROP_MIN, CROP_MAX = 256 * P, 5120 * P  # resize_cropped(min_pixels=256*28*28, max_pixels=5120*28*28)
FRAME_MIN, FRAME_MAX = 4 * P, 512 * P  # fetch_video: max_pixels 512*28*28, qwen_vl_utils MIN_PIXELS
ENGINE_MIN, ENGINE_MAX = 401408, 4014080  # MIN_PIXELS / MAX_PIXELS of the released eval scripts


def _round_by(x: float, f: int) -> int:
    return round(x / f) * f


def _floor_by(x: float, f: int) -> int:
    return math.floor(x / f) * f


def _ceil_by(x: float, f: int) -> int:
    return math.ceil(x / f) * f


def qwen_smart_resize(h: int, w: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """qwen_vl_utils.smart_resize(height, width, factor=28, min_pixels, max_pixels) -> (h, w)."""
    if max(h, w) / min(h, w) > 200:
        raise ValueError("aspect ratio over 200")
    hb, wb = max(F, _round_by(h, F)), max(F, _round_by(w, F))
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb, wb = _floor_by(h / beta, F), _floor_by(w / beta, F)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = _ceil_by(h * beta, F), _ceil_by(w * beta, F)
    return hb, wb


def engine_smart_resize(
    h: int, w: int, min_pixels: int = ENGINE_MIN, max_pixels: int = ENGINE_MAX
) -> tuple[int, int]:
    """transformers Qwen2VL image processor smart_resize -> (h, w)."""
    hb, wb = round(h / F) * F, round(w / F) * F
    if hb * wb > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        hb, wb = max(F, math.floor(h / beta / F) * F), max(F, math.floor(w / beta / F) * F)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / F) * F, math.ceil(w * beta / F) * F
    return hb, wb


def wh(hw: tuple[int, int]) -> tuple[int, int]:
    return hw[1], hw[0]


def input_source(size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of an input image as the released eval holds it (crops are cut from this copy)."""
    w, h = size
    return wh(qwen_smart_resize(h, w, EVAL_MIN, EVAL_MAX))


def frame_size(size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of a video frame as the released eval holds it (the "Frame Size" text)."""
    w, h = size
    return wh(qwen_smart_resize(h, w, FRAME_MIN, FRAME_MAX))


def engine_shown(size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) the engine's processor shows the model for an image of ``size``."""
    w, h = size
    return wh(engine_smart_resize(h, w))


def released_crop(
    size: tuple[int, int], bbox: Sequence[float], padding: float = 0.1
) -> tuple[int, int, int, int]:
    """The pixel box PIL cuts for ``crop_image_normalized(image of size, bbox)``; raises
    ``AssertionError("Cropped image is too small: WxH")`` as the released code does."""
    img_x, img_y = size
    if bbox[0] < 1 and bbox[1] < 1 and bbox[2] < 1 and bbox[3] < 1:
        n = (
            float(bbox[0]) - padding,
            float(bbox[1]) - padding,
            float(bbox[2]) + padding,
            float(bbox[3]) + padding,
        )
    else:
        n = (
            float(bbox[0]) / img_x - padding,
            float(bbox[1]) / img_y - padding,
            float(bbox[2]) / img_x + padding,
            float(bbox[3]) / img_y + padding,
        )
    x1, y1, x2, y2 = (min(max(0, v), 1) for v in n)
    # PIL's Image.crop rounds a float box: map(int, map(round, box))
    box = tuple(int(round(v)) for v in (x1 * img_x, y1 * img_y, x2 * img_x, y2 * img_y))
    w, h = box[2] - box[0], box[3] - box[1]
    assert w > 28 and h > 28, f"Cropped image is too small: {w}x{h}"
    return box[0], box[1], box[2], box[3]


def crop_text_size(box: tuple[int, int, int, int]) -> tuple[int, int]:
    """(w, h) of ``resize_cropped`` of the crop: the "Image Size: WxH" text."""
    w, h = box[2] - box[0], box[3] - box[1]
    return wh(qwen_smart_resize(h, w, CROP_MIN, CROP_MAX))
