"""The built-in tools (``crop_image_normalized``, its pixel-wording variant ``crop_image``,
``select_frames``): argument checks, image-slot numbering, schemas, the messages the released
code shows, and the ``harness_register_tools`` hook implementation (rules: :mod:`harness.tools`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness import hookimpl
from harness.json_safe import short
from harness.loop.protocol import render_crop, render_frames
from harness.records import Observation
from harness.tools.api import Box, SeenImage, ToolContext, ToolError, ToolResult, ToolSpec
from harness.tools.imaging import crop_image_normalized, resize_to_budget, select_frames

# Verbatim: released execute_tool messages.
SELECT_ON_IMAGE = (
    "Execution Error: You attempted to `select_frames` from **image** not **video**. "
    "You should use `crop_image_normalized` instead for inspecting **image**."
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


def _arg(args: dict[str, Any], name: str, tool: str) -> Any:
    if name not in args:
        raise ToolError(f"Execution Error: `{tool}` requires the argument `{name}`.")
    return args[name]


def _index(value: Any) -> int:
    """``target_image`` as an int (the schema says "number", so 2.0 is accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(
            f"Execution Error: `target_image` must be an integer image index, got {short(value)}."
        )
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ToolError(
            f"Execution Error: `target_image` must be an integer image index, got {short(value)}."
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
