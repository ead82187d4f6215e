"""The visual tools: pure functions on PIL images, argument validation and the ``ToolSpec`` type.

Behaviour follows the released Pixel-Reasoner code (``experience_maker.py``: ``crop_image_normalized``,
``execute_tool``, ``resize_cropped``; qwen_vl_utils ``smart_resize``). Every invalid argument raises
:class:`ToolError`, whose text is shown to the model in an execution-error turn; where the released
code has a message for the case, the same text is used.

**Image numbering (``target_image``)**, 1-based over the *slots* of the conversation so far:

- image samples: slots are the input images, then every crop / frame returned, in order;
  ``target_image`` must be in ``[1, n]`` (the released code silently wrapped 0 and negatives to
  the last image; here they are out of range).
- video samples (reproducing the released behaviour): the video occupies slot 1. While no image
  has been added yet, ``target_image`` picks a frame of the video (``[1, n_frames]``). Once crops or
  selected frames have been added, ``target_image`` picks slot ``t`` in ``[2, n_slots]`` (the video
  itself cannot be cropped any more).
- ``select_frames`` answers "Numbered {a} to {b}" with ``a`` = the number of slots before the call
  (video included) and ``b = a + k - 1``, as released. So the first selection reads "Numbered 1 to
  k" although those frames are slots 2..k+1 for a later crop: an off-by-one the released model was
  trained with, kept on purpose. ``Observation.images`` always records slot numbers.
- ``target_frames`` index the video's own frames (1-based, at most ``max_frames_per_call``);
  0 and negatives are out of range (released: wrapped). Selected frames are shown as the model saw
  the tools hold the video's frames (no resize by the tool, as in the released eval). The released training-time
  "controlled rectify" (randomly trimming an over-long selection) is deliberately not reproduced:
  more than 8 frames is always an error. The ``Frame Size`` text is the size of the video's frames
  as the tools hold them (bounded to ``frame_max_pixels``); the episode shows them to the model at
  the engine's bounds like every other image.
- ``target_image`` accepts integral floats (the schema says "number"); anything else is an error.

Crops are cut from the image as the tools hold it (an input image bounded to
``source_min_pixels``..``source_max_pixels``, a crop at its ``Image Size``, a frame at its
``Frame Size``), not from the engine's copy the model is shown; ``box`` is in its pixels, ``box_norm`` is that
pixel box divided by its size, and ``box_in_original`` maps it back (through crops of crops) to
fractions of the sample's first image when the chain starts there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from harness import hookimpl
from harness.loop.limits import PATCH, Limits
from harness.loop.protocol import render_crop, render_frames
from harness.records import MediaKind, Observation

Box = tuple[float, float, float, float]
MAX_RATIO = 200

# Verbatim: released execute_tool messages.
SELECT_ON_IMAGE = (
    "Execution Error: You attempted to `select_frames` from **image** not **video**. "
    "You should use `crop_image_normalized` instead for inspecting **image**."
)
TOO_MANY_FRAMES = (
    "Execution Error: You have selected {n} frames in total. Think again which frames you need to "
    "check in details (no more than {max} frames)"
)
FRAMES_OUT_OF_RANGE = (
    "Execution Error: There are {n} frames numbered in range [1,{n}]. "
    "Your selection `target_frames={tgt}` is out of range."
)
TARGET_OUT_OF_RANGE = (
    "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
    "You can only pick an image within [1,{n}]"
)
TARGET_OUT_OF_VIDEO = (
    "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
    "You can only pick an image **from** the video within [1,{n}], but the current argument "
    "`target_image={tgt}`."
)
TARGET_AFTER_VIDEO = (
    "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
    "You can only pick an image within range [2,{n}], but the current argument `target_image={tgt}`."
)
CROP_TOO_SMALL = "Cropped image is too small: {w}x{h}"


class ToolError(Exception):
    """A tool could not run on the given arguments; ``str()`` is the reason shown to the model."""


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
            f"Execution Error: `bbox_2d` must be a list of 4 numbers [x1, y1, x2, y2], got {_short(bbox_2d)}."
        )
    try:
        vals = [_number(v) for v in bbox_2d[:4]]
    except (TypeError, ValueError, OverflowError):
        raise ToolError(
            "Execution Error: `bbox_2d` must contain 4 finite numbers [x1, y1, x2, y2], "
            f"got {_short(bbox_2d)}."
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
            f"Execution Error: `bbox_2d` {_short(bbox_2d)} is empty: x2 must be greater than x1 "
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
            f"got {_short(target_frames)}."
        )
    if not target_frames:
        raise ToolError("Execution Error: `target_frames` is empty; select at least one frame.")
    if len(target_frames) > max_frames:
        raise ToolError(TOO_MANY_FRAMES.format(n=len(target_frames), max=max_frames))
    n = len(frames)
    if min(target_frames) < 1 or max(target_frames) > n:
        raise ToolError(FRAMES_OUT_OF_RANGE.format(n=n, tgt=target_frames))
    return [frames[t - 1] for t in target_frames]


@dataclass(frozen=True, slots=True)
class SeenImage:
    """An image of the conversation as the model saw it, with where it came from.

    ``origin`` is ``"input"``, ``"crop"`` or ``"frames"`` (or a plugin tool's observation kind);
    ``box_in_original`` is its area as fractions of the sample's first image when known; ``frame``
    the 1-based video frame it shows or was cut from.
    """

    image: Image.Image
    origin: str = "input"
    box_in_original: Box | None = None
    frame: int | None = None


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool can see: the image slots so far, the video frames, the media kind and limits.

    For a video, ``images`` holds only what was added after the video (crops, selected frames);
    the video itself is slot 1 (see the module docstring) and ``frames`` are its frames.
    """

    images: tuple[SeenImage, ...]
    frames: tuple[Image.Image, ...] = ()
    media_kind: MediaKind = "image"
    limits: Limits = Limits()

    @property
    def n_slots(self) -> int:
        """Number of image slots in the conversation (a video counts as one)."""
        return len(self.images) + (1 if self.media_kind == "video" else 0)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A successful call: the user-turn text, the new images (already resized) and an observation.

    The episode fills ``observation.images`` (slot numbers) and ``observation.saved``.
    """

    text: str
    images: tuple[Image.Image, ...]
    observation: Observation


ToolFn = Callable[[dict[str, Any], ToolContext], ToolResult]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A visual tool: name, the JSON schema advertised in the system prompt, media and function.

    ``media_error`` is the text shown when the tool is called on a media kind not in ``media``
    (a generic message when empty).
    """

    name: str
    schema: dict[str, Any]
    media: tuple[str, ...]
    run: ToolFn
    media_error: str = ""

    def wrong_media(self, kind: str) -> str:
        """The error text for a call on a media kind this tool does not apply to."""
        if self.media_error:
            return self.media_error
        applies = ", ".join(self.media)
        return f"Execution Error: `{self.name}` cannot be used on **{kind}** (it applies to {applies})."


def _arg(args: dict[str, Any], name: str, tool: str) -> Any:
    if name not in args:
        raise ToolError(f"Execution Error: `{tool}` requires the argument `{name}`.")
    return args[name]


def _index(value: Any) -> int:
    """``target_image`` as an int (the schema says "number", so 2.0 is accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(
            f"Execution Error: `target_image` must be an integer image index, got {_short(value)}."
        )
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ToolError(
            f"Execution Error: `target_image` must be an integer image index, got {_short(value)}."
        )
    return int(value)


def _resolve_target(tgt: int, ctx: ToolContext) -> SeenImage:
    if ctx.media_kind == "video":
        if not ctx.images:
            if not 1 <= tgt <= len(ctx.frames):
                raise ToolError(TARGET_OUT_OF_VIDEO.format(n=len(ctx.frames), tgt=tgt))
            return SeenImage(ctx.frames[tgt - 1], origin="frames", frame=tgt)
        if not 2 <= tgt <= ctx.n_slots:
            raise ToolError(TARGET_AFTER_VIDEO.format(n=ctx.n_slots, tgt=tgt))
        return ctx.images[tgt - 2]
    if not 1 <= tgt <= len(ctx.images):
        raise ToolError(TARGET_OUT_OF_RANGE.format(n=len(ctx.images)))
    return ctx.images[tgt - 1]


def compose_box(outer: Box, inner: Box) -> Box:
    """Map ``inner`` (fractions of an image) into the frame of ``outer`` (that image's own box)."""
    ox1, oy1, ox2, oy2 = outer
    ow, oh = ox2 - ox1, oy2 - oy1
    return (ox1 + inner[0] * ow, oy1 + inner[1] * oh, ox1 + inner[2] * ow, oy1 + inner[3] * oh)


def run_crop(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """``crop_image_normalized(bbox_2d, target_image)`` on the conversation's image slots."""
    return _crop(args, ctx, "crop_image_normalized")


def run_crop_image(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """The same crop advertised under the earlier name ``crop_image`` (``--protocol crop_image``)."""
    return _crop(args, ctx, "crop_image")


def _crop(args: dict[str, Any], ctx: ToolContext, tool: str) -> ToolResult:
    tgt = _index(_arg(args, "target_image", tool))
    bbox = _arg(args, "bbox_2d", tool)
    source = _resolve_target(tgt, ctx)
    limits = ctx.limits
    crop, box, box_norm = crop_image_normalized(
        source.image, bbox, padding=limits.crop_padding, min_side=limits.min_crop_side
    )
    try:
        shown = resize_to_budget(crop, limits.crop_min_pixels, limits.crop_max_pixels)
    except ValueError as exc:
        raise ToolError(f"Execution Error: the cropped region cannot be shown ({exc}).") from None
    in_original = compose_box(source.box_in_original, box_norm) if source.box_in_original else None
    text = render_crop(*shown.size)
    obs = Observation(
        kind="crop",
        tool=tool,
        text=text,
        source_image=tgt,
        box=box,
        box_norm=box_norm,
        box_in_original=in_original,
        frames=(source.frame,) if source.frame is not None else (),
        size=shown.size,
    )
    return ToolResult(text=text, images=(shown,), observation=obs)


def run_select_frames(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """``select_frames(target_frames)`` on the video's frames (videos only)."""
    if ctx.media_kind != "video":
        raise ToolError(SELECT_ON_IMAGE)
    target = _arg(args, "target_frames", "select_frames")
    chosen = select_frames(ctx.frames, target, max_frames=ctx.limits.max_frames_per_call)
    a = ctx.n_slots
    w, h = chosen[0].size
    text = render_frames(w, h, a, a + len(chosen) - 1)
    obs = Observation(
        kind="frames", tool="select_frames", text=text, source_image=1, frames=tuple(target), size=(w, h)
    )
    return ToolResult(text=text, images=tuple(chosen), observation=obs)


# Verbatim: released CropImageNormalized (name, description, parameters) as qwen_agent's
# BaseTool.function exposes it.
CROP_SCHEMA: dict[str, Any] = {
    "name": "crop_image_normalized",
    "description": "Zoom in on the image based on the bounding box coordinates. "
    "It is useful when the object or text in the image is too small to be seen.",
    "parameters": {
        "type": "object",
        "properties": {
            "bbox_2d": {
                "type": "array",
                "description": "coordinates for bounding box of the area you want to zoom in. "
                "Values should be within [0.0,1.0].",
                "items": {"type": "number"},
            },
            "target_image": {
                "type": "number",
                "description": "The index of the image to crop. Index from 1 to the number of images. "
                "Choose 1 to operate on original image.",
            },
        },
        "required": ["bbox_2d", "target_image"],
    },
}

# Verbatim: released SelectFrames.
SELECT_FRAMES_SCHEMA: dict[str, Any] = {
    "name": "select_frames",
    "description": "Select frames from a video.",
    "parameters": {
        "type": "object",
        "properties": {
            "target_frames": {
                "type": "array",
                "description": "List of frame indices to select from the video "
                "(no more than 8 frames in total).",
                "items": {"type": "integer", "description": "Frame index from 1 to 16."},
            }
        },
        "required": ["target_frames"],
    },
}

# Verbatim: the earlier schema, advertised as ``crop_image`` with pixel-coordinate wording. It is
# commented out above CropImageNormalized in the released experience_maker.py (description and
# bbox_2d wording) and is the schema the verl-tool port still renders into its system prompt.
CROP_IMAGE_SCHEMA: dict[str, Any] = {
    "name": "crop_image",
    "description": "Zoom in on the image based on the bounding box coordinates.",
    "parameters": {
        "type": "object",
        "properties": {
            "bbox_2d": {
                "type": "array",
                "description": "coordinates for bounding box of the area you want to zoom in. "
                "minimum value is 0 and maximum value is the width/height of the image.",
                "items": {"type": "number"},
            },
            "target_image": {
                "type": "number",
                "description": "The index of the image to crop. Index from 1 to the number of images. "
                "Choose 1 to operate on original image.",
            },
        },
        "required": ["bbox_2d", "target_image"],
    },
}

CROP_TOOL = ToolSpec("crop_image_normalized", CROP_SCHEMA, ("image", "video"), run_crop)
CROP_IMAGE_TOOL = ToolSpec("crop_image", CROP_IMAGE_SCHEMA, ("image", "video"), run_crop_image)
SELECT_FRAMES_TOOL = ToolSpec(
    "select_frames", SELECT_FRAMES_SCHEMA, ("video",), run_select_frames, media_error=SELECT_ON_IMAGE
)
BUILTIN_TOOLS: tuple[ToolSpec, ...] = (CROP_TOOL, SELECT_FRAMES_TOOL)


#: ``--protocol`` choices: the tool schema advertised for cropping. ``crop_image_normalized`` is the
#: released schema (since June 2025); ``crop_image`` the earlier one (same arithmetic: fractions when
#: all four values are < 1, else pixels of the image being cropped).
PROTOCOLS: tuple[str, ...] = ("crop_image_normalized", "crop_image")
DEFAULT_PROTOCOL = "crop_image_normalized"


def tools_for_protocol(tools: Sequence[ToolSpec], protocol: str) -> list[ToolSpec]:
    """``tools`` with the crop tool advertised as ``protocol`` says (order kept)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown --protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if protocol == DEFAULT_PROTOCOL:
        return list(tools)
    return [CROP_IMAGE_TOOL if t.name == CROP_TOOL.name else t for t in tools]


@hookimpl
def harness_register_tools() -> list[ToolSpec]:
    """The built-in tools, in the order the released model saw them advertised."""
    return [CROP_TOOL, SELECT_FRAMES_TOOL]
