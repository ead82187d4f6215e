"""OpenAI-compatible backend: ``--model openai:MODEL --model_args base_url=URL,...``.

Any ``/v1/chat/completions`` endpoint (``harness serve``, vLLM's or SGLang's OpenAI server, a
hosted API) through the official ``openai`` client (``pip install 'pixel-harness[openai]'``).
Images travel as base64 data URLs (PNG by default: lossless; each image encoded once per episode),
a video as one ``video_url`` frame sequence (vLLM's form) or, with ``video=images``, as separate
images. The rollout engine sends each request on its own as soon as its episode is ready
(``submit``: the async client on an event-loop thread, at most ``concurrency`` in flight, images
encoded on the worker pool); ``generate(batch)`` runs a batch on a thread pool of ``concurrency``
workers. Each request carries its seed, temperature, top_p, max_tokens and stop strings.

Retries with exponential backoff on 408/409/429/5xx, connection errors and timeouts are the
client's own (``max_retries``, ``timeout``). A request that still fails becomes that episode's
error reply (the rollout records it and goes on); a configuration error (bad URL scheme,
unknown model, rejected key) stops the run at once with one line. The API key is read from the
environment variable named by ``api_key_env`` (default ``OPENAI_API_KEY``; unset means "no key",
fine for a local server) and is never logged or written to results.

Stops are the request's (``<|im_end|>``/``<|endoftext|>``), as in the released evaluation:
``</tool_call>`` is not a stop, so text after it makes the reply a final answer. With
``stop_at_tool_call=true`` it is sent as a stop too and restored (OpenAI semantics drop a stop
string from the reply): when the server reports which stop ended the reply (``stop_reason``, as
vLLM and ``harness serve`` do), or, when it does not, when the reply stopped inside an open
``<tool_call>`` block.

Images are sent as the episode sized them, i.e. at the size the released engine showed them
(``Limits.min_pixels``..``max_pixels`` = 512..5120 * 28*28, multiples of 28). A vLLM server keeps
them so when its processor bounds contain that range, e.g.
``vllm serve MODEL --mm-processor-kwargs '{"min_pixels": 401408, "max_pixels": 4014080}'`` (the
released values; a smart-resize inside the bounds leaves such an image unchanged).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from harness import hookimpl
from harness.backends import BackendContext, BackendFactory
from harness.backends.chat import DataUrlCache, finish_text, to_openai_messages
from harness.backends.options import MissingExtra, parse_options
from harness.errors import OptionError, UserError
from harness.loop.policy import Policy, Reply, Request
from harness.loop.protocol import TOOL_END, TOOL_START

INSTALL_HINT = "the openai backend needs the openai client: pip install 'pixel-harness[openai]'"
NO_KEY = "EMPTY"  # sent when the key variable is unset (local servers ignore it)


class BackendConfigError(UserError):
    """The endpoint refused the configuration (URL, model, key): no request can succeed."""


@dataclass(frozen=True)
class OpenAIOptions:
    """``--model_args`` of the openai backend."""

    base_url: str | None = None  # default: $OPENAI_BASE_URL, else the OpenAI API
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 600.0  # seconds per attempt
    image_format: Literal["png", "jpeg"] = "png"  # png (lossless) or jpeg (smaller)
    video: Literal["video_url", "images"] = "video_url"  # video_url (vLLM, harness serve) or images
    stop_at_tool_call: bool = False  # true: </tool_call> is a stop too, restored (not as released)
    max_tokens_field: str = "max_tokens"  # or max_completion_tokens (newer OpenAI models)
    logprobs: bool = False  # fill Reply.logprobs (a vLLM server: token ids as "token_id:N")

    def __post_init__(self) -> None:
        if self.base_url is not None and urlparse(self.base_url).scheme not in ("http", "https"):
            raise OptionError(f"openai: --model_args base_url must be an http(s) URL, got {self.base_url!r}")
        if self.concurrency < 1:
            raise OptionError(f"openai: --model_args concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0 or self.timeout <= 0:
            raise OptionError("openai: --model_args max_retries must be >= 0 and timeout > 0")
        if self.image_format not in ("png", "jpeg"):
            raise OptionError(
                f"openai: --model_args image_format must be png or jpeg, got {self.image_format!r}"
            )
        if self.video not in ("video_url", "images"):
            raise OptionError(f"openai: --model_args video must be video_url or images, got {self.video!r}")
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise OptionError(
                "openai: --model_args max_tokens_field must be max_tokens or max_completion_tokens"
            )


def request_body(request: Request, options: OpenAIOptions, cache: DataUrlCache) -> dict[str, Any]:
    """The chat-completions parameters for one request (without ``model``)."""
    sampling = request.sampling
    keep = (TOOL_END,) if options.stop_at_tool_call else ()
    body: dict[str, Any] = {
        "messages": to_openai_messages(request.messages, cache, video=options.video),
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        options.max_tokens_field: sampling.max_new_tokens,
        "stop": list(dict.fromkeys((*sampling.stop, *keep))),
        "seed": sampling.seed,
    }
    if sampling.top_k > 0:  # not an OpenAI parameter: sent in the body, where vLLM's server (and
        body["extra_body"] = {"top_k": sampling.top_k}  # harness serve) read it
    if options.logprobs:  # the sampled tokens' log-probabilities, ids as vLLM's "token_id:N"
        body.update(logprobs=True, top_logprobs=0)
        body.setdefault("extra_body", {})["return_tokens_as_token_ids"] = True
    return body


def sampled_logprobs(choice: Any) -> tuple[tuple[int, float], ...] | None:
    """(token id, log-probability) of every sampled token of a chat-completions choice asked for
    with ``logprobs`` and vLLM's ``return_tokens_as_token_ids``; ``None`` when it has none."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    out = []
    for item in content:
        token = str(item.token)
        if not token.startswith("token_id:"):
            return None  # not vLLM's token ids: cannot be lined up with a tokenizer
        out.append((int(token.removeprefix("token_id:")), float(item.logprob)))
    return tuple(out)


def restore_tool_end(text: str, finish_reason: str | None, extra: dict[str, Any]) -> str:
    """Put back a ``</tool_call>`` the server cut as a stop string (see the module docstring)."""
    if finish_reason != "stop" or text.rstrip().endswith(TOOL_END):
        return text
    if "stop_reason" in extra:
        return text + TOOL_END if extra["stop_reason"] == TOOL_END else text
    opened = text.rfind(TOOL_START)
    return text + TOOL_END if opened >= 0 and text.find(TOOL_END, opened) < 0 else text


class OpenAIPolicy:
    """An OpenAI-compatible chat endpoint behind the :class:`~harness.loop.policy.Policy` interface."""

    def __init__(self, model: str, options: OpenAIOptions = OpenAIOptions()) -> None:  # noqa: B008 (frozen)
        try:
            import openai
        except ImportError as exc:
            raise MissingExtra(INSTALL_HINT) from exc
        if not model:
            raise UserError("openai needs a model name: --model openai:MODEL --model_args base_url=URL")
        self.openai, self.model, self.options = openai, model, options
        self.name = f"openai:{model}"
        self.client = openai.OpenAI(
            api_key=os.environ.get(options.api_key_env) or NO_KEY,
            base_url=options.base_url,
            max_retries=options.max_retries,
            timeout=options.timeout,
        )
        self.cache = DataUrlCache(options.image_format)
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="harness-openai")
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None  # submit(): started on first use
        self._encoder: ThreadPoolExecutor
        self._aclient: Any
        self._limit: asyncio.Semaphore

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        return list(self.pool.map(self._one, requests))

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.client.close()
        loop, self._loop = self._loop, None
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._aclient.close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            self._encoder.shutdown(wait=False)

    def submit(self, request: Request) -> Future[Reply]:
        """Send one request without blocking (the rollout engine's interface): the async client
        on this policy's event-loop thread, at most ``concurrency`` requests in flight, the
        images encoded to base64 on a worker pool (off the event loop and the engine)."""
        return asyncio.run_coroutine_threadsafe(self._aone(request), self._async_loop())

    def _async_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                from harness.data.media_pool import worker_pool

                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="harness-openai-async", daemon=True).start()
                self._encoder = worker_pool(name="harness-openai-encode")
                self._aclient = self.openai.AsyncOpenAI(
                    api_key=os.environ.get(self.options.api_key_env) or NO_KEY,
                    base_url=self.options.base_url,
                    max_retries=self.options.max_retries,
                    timeout=self.options.timeout,
                )
                self._limit = asyncio.Semaphore(self.options.concurrency)
                self._loop = loop
            return self._loop

    async def _aone(self, request: Request) -> Reply:
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(self._encoder, request_body, request, self.options, self.cache)
        async with self._limit:
            try:
                response = await self._aclient.chat.completions.create(model=self.model, **body)
            except self.openai.APIError as exc:
                return self._failed(exc, start)
        return self._to_reply(request, response, start)

    def _one(self, request: Request) -> Reply:
        start = time.perf_counter()
        body = request_body(request, self.options, self.cache)
        try:
            response = self.client.chat.completions.create(model=self.model, **body)
        except self.openai.APIError as exc:
            return self._failed(exc, start)
        return self._to_reply(request, response, start)

    def _failed(self, exc: Exception, start: float) -> Reply:
        """A failed request as the episode's error reply; a configuration error raises."""
        openai = self.openai
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)):
            raise BackendConfigError(
                f"openai: {self.client.base_url} refused the request ({exc.status_code}): {_message(exc)}"
            ) from None
        status = getattr(exc, "status_code", None)
        where = f"HTTP {status}" if status else type(exc).__name__
        return Reply(
            f"openai backend: {where}: {_message(exc)}", "error", seconds=time.perf_counter() - start
        )

    def _to_reply(self, request: Request, response: Any, start: float) -> Reply:
        if not response.choices:
            return Reply(
                "openai backend: the response has no choices", "error", seconds=time.perf_counter() - start
            )
        choice = response.choices[0]
        text = choice.message.content or ""
        keep = (TOOL_END,) if self.options.stop_at_tool_call else ()
        if keep:  # </tool_call> was sent as a stop: put it back (not a stop by default, as released)
            text = restore_tool_end(text, choice.finish_reason, choice.model_extra or {})
        text, _ = finish_text(text, request.sampling.stop, keep)
        usage = response.usage
        return Reply(
            text=text,
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            seconds=time.perf_counter() - start,
            logprobs=sampled_logprobs(choice) if self.options.logprobs else None,
        )


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", None) or exc).splitlines()[0]


def make_openai(rest: str, ctx: BackendContext) -> Policy:
    """Factory for ``--model openai:MODEL``: imports the openai client only now."""
    return OpenAIPolicy(rest, parse_options(OpenAIOptions, ctx.model_args, "openai"))


FACTORIES: dict[str, Callable[[str, BackendContext], Policy]] = {"openai": make_openai}


@hookimpl
def harness_register_backends() -> dict[str, BackendFactory]:
    return dict(FACTORIES)
