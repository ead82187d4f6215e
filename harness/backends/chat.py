"""Conversions shared by the model backends (pure functions; PIL only, no torch).

- :func:`collect_media`: the images and videos of a conversation, in prompt order (what a
  processor or ``multi_modal_data`` needs beside the rendered text).
- :func:`finish_text`: cut a generated text at the first stop string (removed). By default, as in
  the released evaluation, only end-of-turn strings stop a reply: text after ``</tool_call>``
  stays, and the reply is then a final answer. A backend run with ``stop_at_tool_call=true``
  passes ``keep=("</tool_call>",)``: the reply ends right after it, which is kept.
- :func:`to_openai_messages` / :func:`from_openai_messages`: our transformers-format messages to
  the OpenAI chat format and back. Images travel as base64 data URLs (PNG by default: lossless,
  so a server sees exactly the pixels the episode produced); a video travels as one
  ``video_url`` part ``data:video/jpeg;base64,<frame>,<frame>,...``, the frame-sequence form vLLM's
  OpenAI server reads (it decodes each frame by content, so PNG frames work under that type).
"""

from __future__ import annotations

import base64
import binascii
import io
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from PIL import Image

Message = dict[str, Any]
ImageFormat = Literal["png", "jpeg"]
VIDEO_MEDIA_TYPE = "video/jpeg"  # vLLM's name for "comma-separated base64 frames"


def collect_media(messages: Sequence[Message]) -> tuple[list[Image.Image], list[list[Image.Image]]]:
    """All image parts and video parts of ``messages``, each list in prompt order."""
    images: list[Image.Image] = []
    videos: list[list[Image.Image]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) or not content:
            continue
        for part in content:
            if part.get("type") == "image":
                images.append(part["image"])
            elif part.get("type") == "video":
                videos.append(list(part["video"]))
    return images, videos


def message_text(content: Any) -> str:
    """The text of a message's content (a string, or the text parts joined)."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if p.get("type") == "text")


def finish_text(text: str, stops: Iterable[str], keep: Iterable[str] = ()) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; return (text, whether a stop was found).

    A string in ``keep`` stays at the end of the text; any other stop is removed. Ties (two stops
    starting at the same place) go to the longer one.
    """
    keep = tuple(keep)
    best: tuple[int, int, str] | None = None
    for stop in dict.fromkeys((*stops, *keep)):
        if not stop:
            continue
        at = text.find(stop)
        if at >= 0 and (best is None or (at, -len(stop)) < (best[0], -best[1])):
            best = (at, len(stop), stop)
    if best is None:
        return text, False
    at, length, stop = best
    return (text[: at + length] if stop in keep else text[:at]), True


# -- OpenAI chat format ------------------------------------------------------------------------


def encode_image(image: Image.Image, fmt: ImageFormat = "png") -> str:
    """Base64 of ``image`` as PNG (lossless, fast compression) or JPEG (quality 95)."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buf, format="JPEG", quality=95)
    else:
        image.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class DataUrlCache:
    """Remembers the encoding of each live image, so a conversation's earlier images (sent again
    on every turn) are encoded once. Entries die with their image."""

    def __init__(self, fmt: ImageFormat = "png") -> None:
        self.fmt: ImageFormat = fmt
        self._cache: dict[int, tuple[weakref.ref[Image.Image], str]] = {}

    def b64(self, image: Image.Image) -> str:
        key = id(image)
        hit = self._cache.get(key)
        if hit is not None and hit[0]() is image:
            return hit[1]
        data = encode_image(image, self.fmt)

        def forget(_: weakref.ref[Image.Image]) -> None:
            self._cache.pop(key, None)

        self._cache[key] = (weakref.ref(image, forget), data)
        return data

    def image_url(self, image: Image.Image) -> str:
        return f"data:image/{self.fmt};base64,{self.b64(image)}"

    def video_url(self, frames: Sequence[Image.Image]) -> str:
        return f"data:{VIDEO_MEDIA_TYPE};base64," + ",".join(self.b64(f) for f in frames)


def to_openai_messages(
    messages: Sequence[Message],
    cache: DataUrlCache | None = None,
    video: Literal["video_url", "images"] = "video_url",
) -> list[dict[str, Any]]:
    """Our messages in the OpenAI chat format (system/assistant content as plain strings)."""
    cache = cache or DataUrlCache()
    out: list[dict[str, Any]] = []
    for message in messages:
        role, content = message["role"], message.get("content")
        if role != "user" or isinstance(content, str):
            out.append({"role": role, "content": message_text(content)})
            continue
        parts: list[dict[str, Any]] = []
        for part in content or ():
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image":
                parts.append({"type": "image_url", "image_url": {"url": cache.image_url(part["image"])}})
            elif kind == "video" and video == "images":
                parts += [
                    {"type": "image_url", "image_url": {"url": cache.image_url(f)}} for f in part["video"]
                ]
            elif kind == "video":
                parts.append({"type": "video_url", "video_url": {"url": cache.video_url(part["video"])}})
            else:
                raise ValueError(f"unsupported content part type {kind!r}")
        out.append({"role": role, "content": parts})
    return out


class BadRequest(ValueError):
    """A request the server cannot read; the message says what is wrong."""


def _b64decode(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{what}: invalid base64 ({exc})") from None


def decode_image(data: bytes, what: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.copy()
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise BadRequest(f"{what}: not a readable image ({exc})") from None


def _split_data_url(url: str, what: str) -> tuple[str, str]:
    head, sep, data = url.partition(",")
    if not (url.startswith("data:") and sep and head.endswith(";base64")):
        raise BadRequest(f"{what}: only base64 data URLs are accepted (data:<type>;base64,...)")
    return head[len("data:") : -len(";base64")].lower(), data


def _url_of(part: dict[str, Any], key: str, what: str) -> str:
    value = part.get(key)
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        raise BadRequest(f"{what}: missing {key}.url")
    return url


def from_openai_messages(messages: Any) -> list[Message]:
    """OpenAI chat messages (data-URL images and frame-sequence videos) back to our format."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    out: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}]: needs a 'role' and 'content'")
        content = message.get("content")
        if content is None or isinstance(content, str):
            out.append({"role": message["role"], "content": [{"type": "text", "text": content or ""}]})
            continue
        if not isinstance(content, list):
            raise BadRequest(f"messages[{i}].content must be a string or a list of parts")
        parts: list[dict[str, Any]] = []
        for j, part in enumerate(content):
            what = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                _, data = _split_data_url(_url_of(part, "image_url", what), what)
                parts.append({"type": "image", "image": decode_image(_b64decode(data, what), what)})
            elif kind == "video_url":
                _, data = _split_data_url(_url_of(part, "video_url", what), what)
                frames = [decode_image(_b64decode(f, what), what) for f in data.split(",") if f]
                if not frames:
                    raise BadRequest(f"{what}: a video needs at least one frame")
                parts.append({"type": "video", "video": frames})
            else:
                raise BadRequest(f"{what}: unsupported part type {kind!r} (text, image_url, video_url)")
        out.append({"role": message["role"], "content": parts})
    return out
