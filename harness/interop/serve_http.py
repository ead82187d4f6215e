"""The HTTP side of ``harness serve``: Starlette routes on uvicorn (``pip install 'pixel-harness[serve]'``).

uvicorn gives HTTP/1.1 keep-alive, a listen backlog of ``--backlog`` connections, and h11's
request parsing (a non-numeric ``Content-Length`` or a malformed request line is refused by the
parser). Two gaps of uvicorn's h11 protocol are closed by :class:`_Protocol`: its parse errors
are answered with plain text (here: the JSON error body, naming what h11 refused), and it has no
timeout for a request head that arrives slowly or never (here: ``--read_timeout`` seconds from
the connection or from the previous response; a partial head gets a 408, an idle connection is
closed). The routes check the API key in constant time before reading anything, read the body
with a size limit and a per-read timeout, then validate and decode it in a worker thread
(:func:`harness.interop.serve.parse_completion`) and wait for the :class:`~harness.interop.serve.Batcher` without
holding a thread, so a thousand waiting clients cost a thousand coroutines.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from harness.errors import UserError
from harness.interop.http_error import HTTPError
from harness.interop.serve import Batcher, ServeOptions, completion_response, parse_completion
from harness.loop.policy import Policy

log = logging.getLogger("harness.interop.serve")


def _raw_response(exc: HTTPError) -> bytes:
    """A complete HTTP/1.1 response with ``exc``'s JSON body that closes the connection."""
    data = json.dumps(exc.body()).encode("utf-8")
    reason = {400: "Bad Request", 408: "Request Timeout"}.get(exc.status, "Error")
    head = f"HTTP/1.1 {exc.status} {reason}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    return head.encode("ascii") + data


class _RecordingConnection(h11.Connection):
    """An h11 connection that remembers why it refused the peer's bytes."""

    last_error: str = ""

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = str(exc) or type(exc).__name__
            raise


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with JSON parse errors and a request-head timeout."""

    head_timeout = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size = getattr(self.conn, "_max_incomplete_event_size", 16 * 1024)  # uvicorn's choice
        self.recording = _RecordingConnection(h11.SERVER, size)
        self.conn = self.recording
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._head_bytes:  # a head started and never finished: say so, then close
            error = HTTPError(408, f"the request head did not arrive within {self.head_timeout:g} s")
            self.transport.write(_raw_response(error))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        error = HTTPError(400, f"malformed HTTP request: {self.recording.last_error or msg}")
        self.transport.write(_raw_response(error))
        self.transport.close()


def _error_response(exc: HTTPError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(_: HTTPRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return _error_response(exc)


async def _starlette_error(request: HTTPRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    message = {
        404: f"no route {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, exc.detail)
    return _error_response(HTTPError(exc.status_code, message, kind))


async def _server_error(_: HTTPRequest, exc: Exception) -> Response:
    log.error("harness serve: internal error: %s: %s", type(exc).__name__, exc)
    return _error_response(HTTPError(500, f"internal error: {type(exc).__name__}", "server_error"))


def make_app(policy: Policy, model: str, options: ServeOptions) -> Starlette:
    """The ASGI app serving ``policy`` under ``options`` (one :class:`Batcher` thread)."""
    batcher = Batcher(policy, max_batch=options.max_batch)
    key = options.api_key.encode("utf-8") if options.api_key is not None else None

    def authorised(request: HTTPRequest) -> None:
        if key is None:
            return
        given = request.headers.get("authorization", "")
        token = given[len("Bearer ") :] if given[:7].lower() == "bearer " else ""
        # latin-1: the header's bytes as sent; compare_digest takes as long for any wrong key
        if not hmac.compare_digest(token.strip().encode("latin-1"), key):
            raise HTTPError(
                401, "invalid or missing API key (Authorization: Bearer KEY)", "authentication_error"
            )

    async def read_body(request: HTTPRequest) -> bytes:
        length = request.headers.get("content-length")
        limit = options.max_body_bytes
        if length is not None and not length.isdigit():
            raise HTTPError(400, f"Content-Length {length[:40]!r} is not a number", param="Content-Length")
        if length is not None and int(length) > limit:
            message = f"the body (Content-Length {length[:40]}) is larger than {limit} bytes (--max_body_mb)"
            raise HTTPError(413, message, param="Content-Length")
        chunks, size = [], 0
        stream = request.stream().__aiter__()
        try:
            while True:
                with anyio.fail_after(options.read_timeout):
                    chunk = await stream.__anext__()
                size += len(chunk)
                if size > limit:
                    raise HTTPError(
                        413, f"the body is larger than {limit} bytes (--max_body_mb)", param="body"
                    )
                chunks.append(chunk)
        except StopAsyncIteration:
            return b"".join(chunks)
        except TimeoutError:
            raise HTTPError(408, f"no body data for {options.read_timeout:g} s", param="body") from None
        except ClientDisconnect:
            raise HTTPError(400, "the client disconnected while sending the body", param="body") from None

    def parse(raw: bytes) -> Any:
        try:
            body = json.loads(raw)
        except RecursionError:
            raise HTTPError(400, "invalid JSON: nested too deeply", param="body") from None
        except ValueError as exc:
            raise HTTPError(400, f"invalid JSON: {str(exc)[:200]}", param="body") from None
        return parse_completion(body, options.max_request_pixels)

    async def chat_completions(request: HTTPRequest) -> Response:
        authorised(request)
        raw = await read_body(request)
        completion = await anyio.to_thread.run_sync(parse, raw)
        try:
            reply = await asyncio.wrap_future(batcher.submit(completion.request))
        except Exception as exc:
            message = f"the model failed: {type(exc).__name__}: {str(exc)[:500]}"
            raise HTTPError(500, message, "server_error") from None
        if reply.finish_reason == "error":
            raise HTTPError(400, reply.text)
        return JSONResponse(completion_response(reply, completion, model))

    async def models(request: HTTPRequest) -> Response:
        authorised(request)
        return JSONResponse(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "harness"}]}
        )

    async def health(_: HTTPRequest) -> Response:
        return JSONResponse({"status": "ok"})

    routes: list[tuple[str, Callable[[HTTPRequest], Awaitable[Response]], str]] = [
        ("/chat/completions", chat_completions, "POST"),
        ("/models", models, "GET"),
        ("/health", health, "GET"),
    ]
    return Starlette(
        routes=[
            Route(prefix + path, handler, methods=[method])
            for path, handler, method in routes
            for prefix in ("/v1", "")
        ],
        exception_handlers={
            HTTPError: _http_error,
            HTTPException: _starlette_error,
            Exception: _server_error,
        },
    )


def bind(options: ServeOptions) -> socket.socket:
    """A listening socket on ``options.host:options.port`` with a backlog of ``options.backlog``."""
    try:
        family = socket.getaddrinfo(options.host, options.port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((options.host, options.port), family=family, backlog=options.backlog)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot listen on --host {options.host} --port {options.port}: {reason}") from None


class Server:
    """A bound, not yet running server (``serve_forever`` / ``shutdown`` / ``server_close``, as
    the standard library's servers, so tests and callers can run it in a thread)."""

    def __init__(
        self, policy: Policy, model: str, options: ServeOptions, sock: socket.socket | None = None
    ) -> None:
        self.socket = sock or bind(options)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        protocol = type("HarnessH11Protocol", (_Protocol,), {"head_timeout": options.read_timeout})
        config = uvicorn.Config(
            make_app(policy, model, options),
            http=protocol,
            lifespan="off",
            log_config=None,
            log_level="info" if options.verbose else "warning",
            access_log=options.verbose,
            backlog=options.backlog,
            timeout_keep_alive=max(1, int(options.read_timeout)),
            timeout_graceful_shutdown=5,
            server_header=False,
        )
        self.uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown`, SIGINT or SIGTERM (signals only in the main thread)."""
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.uvicorn.should_exit = True
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def run_server(policy: Policy, model: str, options: ServeOptions, sock: socket.socket | None = None) -> None:
    """Serve ``policy`` until SIGINT/SIGTERM (on ``sock`` if given, bound by :func:`bind`);
    prints the URL (with the port chosen) first."""
    if options.verbose:
        logging.basicConfig(level=logging.INFO, format="harness serve: %(message)s", stream=sys.stderr)
    server = Server(policy, model, options, sock)
    host, port = server.server_address
    shown = f"[{host}]" if ":" in host else host
    auth = "API key required" if options.api_key else "no API key"
    print(f"harness serve: {model} on http://{shown}:{port}/v1 ({auth}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("harness serve: stopped", file=sys.stderr)
