"""The visual tools: the API (:mod:`.api`), their pixels (:mod:`.imaging`) and the built-in tools
(:mod:`.builtin`). This package re-exports the public names of all three.

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

from harness.loop.limits import PATCH
from harness.tools.api import Box, SeenImage, ToolContext, ToolError, ToolFn, ToolResult, ToolSpec
from harness.tools.builtin import (
    BUILTIN_TOOLS,
    CROP_IMAGE_SCHEMA,
    CROP_IMAGE_TOOL,
    CROP_SCHEMA,
    CROP_TOOL,
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    SELECT_FRAMES_SCHEMA,
    SELECT_FRAMES_TOOL,
    compose_box,
    harness_register_tools,
    run_crop,
    run_crop_image,
    run_select_frames,
    tools_for_protocol,
)
from harness.tools.imaging import (
    MAX_RATIO,
    crop_image_normalized,
    resize_to_budget,
    select_frames,
    shown_input,
    smart_resize,
    to_rgb,
)

__all__ = [
    "BUILTIN_TOOLS",
    "CROP_IMAGE_SCHEMA",
    "CROP_IMAGE_TOOL",
    "CROP_SCHEMA",
    "CROP_TOOL",
    "DEFAULT_PROTOCOL",
    "MAX_RATIO",
    "PATCH",
    "PROTOCOLS",
    "SELECT_FRAMES_SCHEMA",
    "SELECT_FRAMES_TOOL",
    "Box",
    "SeenImage",
    "ToolContext",
    "ToolError",
    "ToolFn",
    "ToolResult",
    "ToolSpec",
    "compose_box",
    "crop_image_normalized",
    "harness_register_tools",
    "resize_to_budget",
    "run_crop",
    "run_crop_image",
    "run_select_frames",
    "select_frames",
    "shown_input",
    "smart_resize",
    "to_rgb",
    "tools_for_protocol",
]
