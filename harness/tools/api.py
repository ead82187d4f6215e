"""The tool API: what a visual tool is (:class:`ToolSpec`), what it sees (:class:`ToolContext`)
and returns (:class:`ToolResult`) and the error it raises (:class:`ToolError`). The built-in tools are
:mod:`harness.tools.builtin`; see :mod:`harness.tools` for their rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from harness.loop.limits import Limits
from harness.records import MediaKind, Observation

Box = tuple[float, float, float, float]


class ToolError(Exception):
    """A tool could not run on the given arguments; ``str()`` is the reason shown to the model."""


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
