"""The openai backend's ``submit`` (the rollout engine's interface): the async client, at most
``concurrency`` requests in flight, errors as in ``generate``; and a whole rollout through it."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.loop.policy import Request, Sampling
from harness.records import Sample

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openai") is None, reason="needs the openai extra")


class Server:
    """A chat-completions endpoint answering ``seed=N`` after ``delay`` s; status per model name."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay, self.in_flight, self.max_in_flight = delay, 0, 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(server.delay)
                with server.lock:
                    server.in_flight -= 1
                status = {"unauthorized": 401, "broken": 500}.get(body["model"], 200)
                payload: dict[str, Any] = (
                    {"error": {"message": f"status {status}"}}
                    if status != 200
                    else {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": f"seed {body['seed']}"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                    }
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()


def _request(seed: int) -> Request:
    sample = Sample(task="vstar", id=str(seed), question="Q", answer="A", media=("x.jpg",))
    messages = [{"role": "user", "content": [{"type": "text", "text": "Q"}]}]
    return Request(messages, Sampling(seed=seed), sample, 0, seed)


def _policy(url: str, model: str = "m", concurrency: int = 3) -> Any:
    from harness.backends.openai_api import OpenAIOptions, OpenAIPolicy

    return OpenAIPolicy(model, OpenAIOptions(base_url=url, concurrency=concurrency, max_retries=0))


def test_submit_returns_at_once_and_bounds_requests_in_flight(server: Server) -> None:
    policy = _policy(server.url, concurrency=3)
    try:
        start = time.perf_counter()
        futures = [policy.submit(_request(k)) for k in range(7)]
        assert time.perf_counter() - start < server.delay  # nothing waited for a reply
        replies = [f.result(timeout=30) for f in futures]
    finally:
        policy.close()
    assert [r.text for r in replies] == [f"seed {k}" for k in range(7)]
    assert all(r.completion_tokens == 2 for r in replies)
    assert server.max_in_flight == 3


def test_submit_errors_match_generate(server: Server) -> None:
    from harness.backends.openai_api import BackendConfigError

    broken = _policy(server.url, model="broken")
    refused = _policy(server.url, model="unauthorized")
    try:
        reply = broken.submit(_request(1)).result(timeout=30)
        assert reply.finish_reason == "error" and "HTTP 500" in reply.text
        with pytest.raises(BackendConfigError, match="refused the request \\(401\\)"):
            refused.submit(_request(1)).result(timeout=30)
    finally:
        broken.close()
        refused.close()
