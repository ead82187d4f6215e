"""``harness serve``: a model backend as an OpenAI-compatible endpoint on 127.0.0.1.

    harness serve --model hf:PATH --port 8000          # then: --model openai:NAME
                                                       #   --model_args base_url=http://127.0.0.1:8000/v1

Endpoints: ``POST /v1/chat/completions`` (messages with base64 data-URL images and
``video_url`` frame sequences, as :mod:`harness.backends.chat` writes them; temperature, top_p,
max_tokens / max_completion_tokens, stop, seed; no streaming, ``n`` = 1) and ``GET /v1/models``.
Requests that arrive together are generated as one batch (up to ``--max_batch``), so concurrent
clients share the model. A reply that ended on a requested stop string ``</tool_call>`` comes back
without it and with ``"stop_reason": "</tool_call>"``, as vLLM's server does. There is no
authentication: the server listens on 127.0.0.1 only.

Built on the standard library's ``ThreadingHTTPServer`` rather than a web framework: two JSON
endpoints need no routing, validation or async machinery, and the model runs on one worker thread
anyway (the batcher below), so a framework would add a dependency and nothing else.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .policy import DEFAULT_STOP, Policy, Reply, Request, Sampling
from .protocol import TOOL_END
from .records import Sample

HOST = "127.0.0.1"
MAX_BODY = 512 * 1024 * 1024
DEFAULT_MAX_TOKENS = 2048


class HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


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


def parse_completion(body: Any) -> Completion:
    """Validate an OpenAI chat-completions body into a :class:`Request` (HTTPError 400 if bad)."""
    from .backends.chat import BadRequest, from_openai_messages

    if not isinstance(body, dict):
        raise HTTPError(400, "the body must be a JSON object")
    if body.get("stream"):
        raise HTTPError(400, "streaming is not supported")
    if body.get("n", 1) != 1:
        raise HTTPError(400, "only n=1 is supported")
    try:
        messages = from_openai_messages(body.get("messages"))
        stop = body.get("stop") or []
        stops = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
        seed = body.get("seed")
        sampling = Sampling(
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            max_new_tokens=int(max_tokens),
            stop=tuple(s for s in stops if s != TOOL_END) or DEFAULT_STOP,
            seed=int(seed) if seed is not None else 0,
        )
    except BadRequest as exc:
        raise HTTPError(400, str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise HTTPError(400, f"bad parameter: {exc}") from None
    if sampling.temperature < 0 or not 0 < sampling.top_p <= 1 or sampling.max_new_tokens < 1:
        raise HTTPError(400, "temperature must be >= 0, top_p in (0, 1], max_tokens >= 1")
    sample = Sample(task="serve", id=uuid.uuid4().hex, question="", answer="", media=())
    return Completion(Request(messages, sampling, sample, turn=0, seed=sampling.seed), stops)


def completion_response(reply: Reply, completion: Completion, model: str) -> dict[str, Any]:
    """The chat-completions response body for ``reply``."""
    text, stop_reason = reply.text, None
    if reply.finish_reason == "stop" and TOOL_END in completion.client_stops and text.endswith(TOOL_END):
        text, stop_reason = text[: -len(TOOL_END)], TOOL_END
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
                "finish_reason": reply.finish_reason,
                "stop_reason": stop_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done},
    }


def make_server(
    policy: Policy, port: int, model: str, max_batch: int = 8, verbose: bool = False
) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0 picks a free port) serving ``policy``."""
    batcher = Batcher(policy, max_batch=max_batch)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # request lines only, never headers
            if verbose:
                sys.stderr.write(f"harness serve: {self.address_string()} {format % args}\n")

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, exc: HTTPError) -> None:
            self._send(exc.status, {"error": {"message": exc.message, "type": exc.kind, "code": exc.status}})

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(
                    200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "harness"}]}
                )
            elif self.path.rstrip("/") in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            else:
                self._error(HTTPError(404, f"no route {self.path}", "not_found_error"))

        def do_POST(self) -> None:  # noqa: N802
            try:
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    raise HTTPError(404, f"no route {self.path}", "not_found_error")
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise HTTPError(
                        413 if length else 411, "a JSON body with Content-Length is required (<= 512 MiB)"
                    )
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError as exc:
                    raise HTTPError(400, f"invalid JSON: {exc}") from None
                completion = parse_completion(body)
                try:
                    reply = batcher.submit(completion.request).result()
                except Exception as exc:
                    raise HTTPError(
                        500, f"the model failed: {type(exc).__name__}: {exc}", "server_error"
                    ) from None
                if reply.finish_reason == "error":
                    raise HTTPError(400, reply.text)
                self._send(200, completion_response(reply, completion, model))
            except HTTPError as exc:
                self._error(exc)

    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    return server


def serve(
    model: str, model_args: dict[str, str], port: int, max_batch: int = 8, verbose: bool = False
) -> None:
    """Load the backend, then serve until interrupted (``harness serve``)."""
    from .backends import BackendContext, split_model
    from .plugins import Harness

    harness = Harness()
    prefix, rest = split_model(model)
    policy = harness.backend(prefix)(rest, BackendContext(model_args=dict(model_args), tasks=harness.tasks))
    server = make_server(policy, port, model, max_batch=max_batch, verbose=verbose)
    print(f"harness serve: {model} on http://{HOST}:{server.server_address[1]}/v1 (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("harness serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
