"""``harness serve``: a model backend as an OpenAI-compatible endpoint (127.0.0.1 by default).

    harness serve --model hf:PATH --port 8000          # then: --model openai:NAME
                                                       #   --model_args base_url=http://127.0.0.1:8000/v1

Endpoints: ``POST /v1/chat/completions`` (messages with base64 data-URL images and
``video_url`` frame sequences, as :mod:`harness.backends.chat` writes them; temperature, top_p,
max_tokens / max_completion_tokens, stop, seed; no streaming, ``n`` = 1), ``GET /v1/models`` and
``GET /health``. Requests that arrive together are generated as one batch (up to ``--max_batch``),
so concurrent clients share the model. When a client asks for the stop string ``</tool_call>``
the reply is cut at its first one and comes back without it and with
``"stop_reason": "</tool_call>"``, as vLLM's server does (the backends themselves do not stop there
by default, as in the released code).

This module is the model side and stays light (PIL only; ``plugins/grpo_generation.py`` imports
:class:`Batcher` from here): the :class:`Batcher`, the request limits (:class:`ServeOptions`),
request validation (:func:`parse_completion`: the pydantic body model of
:mod:`harness.interop.serve_schema`, then every image's pixel count read from its header *before* it is
decoded) and the response body. The HTTP side (uvicorn + Starlette: keep-alive, listen backlog,
read timeouts, body limit, API key, JSON errors for malformed HTTP) is :mod:`harness.interop.serve_http`.
Every refusal is an :class:`HTTPError`: a 4xx with an OpenAI-style JSON error body whose
``param`` names the field.
"""

from __future__ import annotations

import base64
import binascii
import io
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from harness.errors import OptionError
from harness.interop.http_error import HTTPError
from harness.loop.limits import Limits
from harness.loop.policy import DEFAULT_STOP, Policy, Reply, Request, Sampling
from harness.loop.protocol import TOOL_END
from harness.records import Sample

HOST = "127.0.0.1"
DEFAULT_MAX_TOKENS = 2048
# Any request an episode with the default limits sends fits: max_images images of max_pixels each.
DEFAULT_MAX_REQUEST_PIXELS = Limits().max_images * Limits().max_pixels
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # what Image.open may try


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the server listens on and what it accepts (``harness serve --help``)."""

    host: str = HOST
    port: int = 8000
    max_batch: int = 8
    api_key: str | None = None  # None: no authentication
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS  # all images of one request, from headers
    max_body_bytes: int = 256 * 1024 * 1024
    read_timeout: float = 30.0  # request head, each body read, and idle keep-alive connections
    backlog: int = 2048  # listen queue: connections waiting to be accepted
    verbose: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise OptionError(f"--port must be in 0..65535, got {self.port}")
        for name in ("max_batch", "max_request_pixels", "max_body_bytes", "backlog"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not self.read_timeout > 0:
            raise OptionError(f"--read_timeout must be > 0, got {self.read_timeout}")
        if self.api_key is not None and not self.api_key:
            raise OptionError("--api-key must not be empty")


class Batcher:
    """One worker thread runs the policy; requests queued together go in one ``generate`` call."""

    def __init__(self, policy: Policy, max_batch: int = 8, window: float = 0.01) -> None:
        self.policy, self.max_batch, self.window = policy, max_batch, window
        self._queue: queue.Queue[tuple[Request, Future[Reply]]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="harness-serve-model", daemon=True)
        self._thread.start()

    def submit(self, request: Request) -> Future[Reply]:
        future: Future[Reply] = Future()
        self._queue.put((request, future))
        return future

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.window
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                replies = self.policy.generate([r for r, _ in batch])
            except Exception as exc:  # report to every waiting client, keep serving
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                future.set_result(reply)


@dataclass(frozen=True)
class Completion:
    """A parsed chat-completions request."""

    request: Request
    client_stops: tuple[str, ...]


def _data_urls(messages: Any) -> Iterator[tuple[str, str]]:
    """(field, base64 payload) of every data-URL image and video frame in validated messages."""
    for i, message in enumerate(messages):
        if not isinstance(message.content, list):
            continue
        for j, part in enumerate(message.content):
            holder = getattr(part, part.type, None) if part.type != "text" else None
            url = holder if isinstance(holder, str) else getattr(holder, "url", None)
            head, sep, data = (url or "").partition(",")
            if not (head.startswith("data:") and sep and head.endswith(";base64")):
                continue  # not a base64 data URL: from_openai_messages refuses it by name
            what = f"messages[{i}].content[{j}]"
            if part.type == "video_url":
                yield from ((f"{what} frame {k}", f) for k, f in enumerate(data.split(",")) if f)
            else:
                yield what, data


PIL_DEFAULT_MAX_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS as PIL ships it


def check_pixels(messages: Any, budget: int) -> int:
    """Sum the pixels of every image and frame from its header, before anything is decoded.

    Refuses (413, naming the part) an image over PIL's ``MAX_IMAGE_PIXELS`` or a request whose
    images together exceed ``budget``; 400 for bad base64 or a header PIL cannot read. Returns
    the total.
    """
    from PIL import Image

    total = 0
    for what, data in _data_urls(messages):
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPError(400, f"{what}: invalid base64 ({exc})", param=what) from None
        try:
            with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as im:  # reads the header only
                width, height = im.size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HTTPError(400, f"{what}: not a readable image ({message})", param=what) from None
        pixels = width * height
        # PIL's global limit, but never above its default: code sharing this process (open_media
        # for large benchmark images) may have raised the global, which must not loosen the server.
        limit = min(Image.MAX_IMAGE_PIXELS or PIL_DEFAULT_MAX_PIXELS, PIL_DEFAULT_MAX_PIXELS)
        if pixels > limit:
            raise HTTPError(
                413, f"{what}: a {width}x{height} image exceeds PIL's limit of {limit} pixels", param=what
            )
        total += pixels
        if total > budget:
            raise HTTPError(
                413,
                f"{what}: the request's images have {total} pixels so far, more than the server's "
                f"budget of {budget} (harness serve --max_request_pixels)",
                param=what,
            )
    return total


def parse_completion(body: Any, max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS) -> Completion:
    """Validate an OpenAI chat-completions body into a :class:`Request` (:class:`HTTPError` if bad)."""
    from harness.backends.chat import BadRequest, from_openai_messages
    from harness.interop.serve_schema import validate_body

    parsed = validate_body(body)
    check_pixels(parsed.messages, max_request_pixels)
    try:
        messages = from_openai_messages(body["messages"])
    except BadRequest as exc:
        field = str(exc).split(":", 1)[0]
        raise HTTPError(400, str(exc), param=field if field.startswith("messages") else None) from None
    stops = (parsed.stop,) if isinstance(parsed.stop, str) else tuple(parsed.stop or ())
    sampling = Sampling(
        temperature=1.0 if parsed.temperature is None else parsed.temperature,
        top_p=1.0 if parsed.top_p is None else parsed.top_p,
        top_k=max(parsed.top_k or 0, 0),
        max_new_tokens=parsed.max_completion_tokens or parsed.max_tokens or DEFAULT_MAX_TOKENS,
        stop=tuple(s for s in stops if s != TOOL_END) or DEFAULT_STOP,
        seed=parsed.seed or 0,
    )
    sample = Sample(task="serve", id=uuid.uuid4().hex, question="", answer="", media=())
    return Completion(Request(messages, sampling, sample, turn=0, seed=sampling.seed), stops)


def completion_response(reply: Reply, completion: Completion, model: str) -> dict[str, Any]:
    """The chat-completions response body for ``reply``."""
    text, stop_reason, finish = reply.text, None, reply.finish_reason
    # A client that asked to stop at </tool_call> gets the reply cut at its first one, whether or
    # not the backend itself stopped there (backends no longer stop there by default, as released):
    # greedy text up to that point is what a stop would have produced; completion_tokens may count
    # the tokens after it.
    if TOOL_END in completion.client_stops and finish != "error" and TOOL_END in text:
        text, stop_reason, finish = text[: text.index(TOOL_END)], TOOL_END, "stop"
    prompt, done = reply.prompt_tokens or 0, reply.completion_tokens or 0
    return {
        "id": f"chatcmpl-{completion.request.sample.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "stop_reason": stop_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done},
    }
