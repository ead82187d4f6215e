"""The request body of ``POST /v1/chat/completions`` as pydantic models (``harness serve``).

Strict types: a number must be a JSON number (``"0.5"`` is refused, an integer field refuses
``3.0``), every float must be finite (``NaN``, ``Infinity`` and ``1e999``, which JSON parsers
read as infinity, are refused), integers are bounded (``max_tokens`` to 1..2**31-1, ``seed`` to
the range ``torch.manual_seed`` accepts). Fields this server does not use (``model``, ``user``,
``frequency_penalty``, ...) are ignored, as OpenAI-compatible servers do. :func:`validate_body`
turns the first error into an :class:`~harness.interop.http_error.HTTPError` (400) that names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.interop.http_error import HTTPError

MAX_TOKENS = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # torch.manual_seed's range


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class URL(_Model):
    url: str


class TextPart(_Model):
    type: Literal["text"]
    text: str = ""


class ImagePart(_Model):
    type: Literal["image_url"]
    image_url: URL | str


class VideoPart(_Model):
    type: Literal["video_url"]
    video_url: URL | str


Part = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class ChatMessage(_Model):
    role: str
    content: str | list[Part] | None = None


class ChatBody(_Model):
    """The fields of an OpenAI chat-completions body that ``harness serve`` reads."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    top_p: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    top_k: int | None = Field(default=None, ge=-1, le=1_000_000)  # vLLM's extra parameter; -1, 0: off
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    n: int | None = None
    stream: bool | None = None


_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|list|dict|[A-Z]\w*)$|[\[\]-]")


def field_name(loc: tuple[int | str, ...]) -> str:
    """``('messages', 0, 'content', 'list[...]', 1, 'image_url', 'image_url', 'URL', 'url')`` ->
    ``messages[0].content[1].image_url.url`` (pydantic's union-member tags dropped)."""
    out = ""
    last: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif not _TYPE_TAG.search(item) and item != last:
            out += f".{item}" if out else item
        last = item
    return out or "body"


def validate_body(body: Any) -> ChatBody:
    """``body`` (parsed JSON) as a :class:`ChatBody`; an :class:`HTTPError` 400 naming the field if not."""
    if not isinstance(body, dict):
        raise HTTPError(400, "the body must be a JSON object")
    try:
        parsed = ChatBody.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        named = [(field_name(tuple(e["loc"])), str(e["msg"]), e["loc"][0]) for e in errors]
        by_top: dict[Any, list[tuple[str, str]]] = {}
        for field, message, top in named:
            by_top.setdefault(top, []).append((field, message))
        parts = []
        for found in by_top.values():  # per top-level field, its most specific error(s)
            field = max(found, key=lambda fm: fm[0].count(".") + fm[0].count("["))[0]
            parts.append(f"{field}: {' or '.join(dict.fromkeys(m for f, m in found if f == field))}")
        raise HTTPError(400, "; ".join(parts), param=parts[0].split(":", 1)[0]) from None
    if parsed.stream:
        raise HTTPError(400, "stream: streaming is not supported", param="stream")
    if parsed.n not in (None, 1):
        raise HTTPError(400, "n: only n=1 is supported", param="n")
    return parsed
