"""The OpenAI-compatible backend against real local HTTP servers (stdlib, in a thread): retries,
timeouts, bounded concurrency, error handling, the API key. The hf-backed ``harness serve``
parity test is in test_serve.py."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from backend_support import needs_openai
from PIL import Image

from harness.backends.chat import DataUrlCache
from harness.backends.openai_api import OpenAIOptions, request_body, restore_tool_end
from harness.loop.policy import Request, Sampling
from harness.records import Sample

SECRET = "sk-test-do-not-log-4f1c"


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    content: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)


class FakeEndpoint:
    """A real HTTP server that answers chat completions from a script of behaviours."""

    def __init__(
        self, script: list[Behaviour] | None = None, fail_marker: str | None = None, delay: float = 0.0
    ) -> None:
        self.script, self.fail_marker, self.delay = list(script or []), fail_marker, delay
        self.hits: list[dict[str, Any]] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.hits.append({"body": body, "auth": self.headers.get("Authorization")})
                    endpoint.inflight += 1
                    endpoint.max_inflight = max(endpoint.max_inflight, endpoint.inflight)
                    step = endpoint.script.pop(0) if endpoint.script else Behaviour(delay=endpoint.delay)
                if endpoint.fail_marker and endpoint.fail_marker in json.dumps(body["messages"]):
                    step = Behaviour(status=500)
                time.sleep(step.delay)
                with endpoint.lock:
                    endpoint.inflight -= 1
                if step.status == 200:
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.content},
                        "finish_reason": "stop",
                    }
                    choice.update(step.extra)
                    payload: dict[str, Any] = {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [choice],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
                    }
                else:
                    payload = {"error": {"message": f"status {step.status}", "type": "err"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(step.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("retry-after-ms", "10")  # the client's backoff honours it: fast tests
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Callable[..., FakeEndpoint]]:
    made: list[FakeEndpoint] = []

    def make(*args: Any, **kwargs: Any) -> FakeEndpoint:
        made.append(FakeEndpoint(*args, **kwargs))
        return made[-1]

    yield make
    for e in made:
        e.close()


def request(text: str = "Q", **sampling: Any) -> Request:
    image = Image.new("RGB", (56, 28), (9, 9, 9))
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]},
    ]
    return Request(
        messages, Sampling(**sampling), Sample(task="t", id=text, question=text, answer="", media=()), 0, 0
    )


def policy(url: str, **options: Any) -> Any:
    from harness.backends.openai_api import OpenAIPolicy

    return OpenAIPolicy("test-model", OpenAIOptions(base_url=url, **options))


def test_request_body() -> None:
    body = request_body(
        request(max_new_tokens=99, seed=12, temperature=0.5, top_p=0.8), OpenAIOptions(), DataUrlCache()
    )
    assert body["stop"] == ["<|im_end|>", "<|endoftext|>"]  # as released: </tool_call> is no stop
    kept = request_body(request(), OpenAIOptions(stop_at_tool_call=True), DataUrlCache())
    assert kept["stop"] == ["<|im_end|>", "<|endoftext|>", "</tool_call>"]
    assert (body["max_tokens"], body["seed"], body["temperature"], body["top_p"]) == (99, 12, 0.5, 0.8)
    assert body["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    jpeg = request_body(
        request(),
        OpenAIOptions(image_format="jpeg", max_tokens_field="max_completion_tokens"),
        DataUrlCache("jpeg"),
    )
    assert "max_completion_tokens" in jpeg and jpeg["messages"][1]["content"][0]["image_url"][
        "url"
    ].startswith("data:image/jpeg")
    assert "extra_body" not in body  # top_k off: nothing beyond the OpenAI parameters
    assert request_body(request(top_k=40), OpenAIOptions(), DataUrlCache())["extra_body"] == {"top_k": 40}


@pytest.mark.parametrize(
    ("text", "finish", "extra", "expected"),
    [
        ("a <tool_call>{}", "stop", {"stop_reason": "</tool_call>"}, "a <tool_call>{}</tool_call>"),
        ("a <tool_call>{}", "stop", {"stop_reason": None}, "a <tool_call>{}"),  # ended on EOS: left as is
        ("a <tool_call>{}", "stop", {}, "a <tool_call>{}</tool_call>"),  # no stop_reason: open call closed
        ("a <tool_call>{}</tool_call> b", "stop", {}, "a <tool_call>{}</tool_call> b"),
        ("plain", "stop", {}, "plain"),
        ("a <tool_call>{}", "length", {}, "a <tool_call>{}"),
    ],
)
def test_restore_tool_end(text: str, finish: str, extra: dict[str, Any], expected: str) -> None:
    assert restore_tool_end(text, finish, extra) == expected


@needs_openai
@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_then_succeeds(endpoint: Callable[..., FakeEndpoint], status: int) -> None:
    server = endpoint([Behaviour(status=status), Behaviour(status=status)])
    (reply,) = policy(server.url, max_retries=3).generate([request()])
    assert (reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == (
        "ok",
        "stop",
        7,
        2,
    )
    assert len(server.hits) == 3


@needs_openai
def test_timeout_is_retried(endpoint: Callable[..., FakeEndpoint]) -> None:
    server = endpoint([Behaviour(delay=2.0)])
    (reply,) = policy(server.url, timeout=0.5, max_retries=2).generate([request()])
    assert reply.text == "ok" and len(server.hits) == 2


@needs_openai
def test_a_failing_request_ends_only_its_episode(endpoint: Callable[..., FakeEndpoint]) -> None:
    server = endpoint(fail_marker="poison")
    good, bad = policy(server.url, max_retries=1).generate([request("fine"), request("poison")])
    assert good.text == "ok"
    assert bad.finish_reason == "error" and "HTTP 500" in bad.text
    assert sum("poison" in json.dumps(h["body"]) for h in server.hits) == 2  # tried, retried once


@needs_openai
@pytest.mark.parametrize("status", [401, 403, 404])
def test_configuration_errors_stop_the_run(endpoint: Callable[..., FakeEndpoint], status: int) -> None:
    from harness.backends.openai_api import BackendConfigError

    server = endpoint([Behaviour(status=status)])
    with pytest.raises(BackendConfigError, match=f"refused the request \\({status}\\)"):
        policy(server.url, max_retries=0).generate([request()])


@needs_openai
def test_unreachable_server_is_an_episode_error() -> None:
    (reply,) = policy("http://127.0.0.1:9/v1", max_retries=0, timeout=2).generate([request()])
    assert reply.finish_reason == "error" and "APIConnectionError" in reply.text


@needs_openai
def test_concurrency_is_bounded(endpoint: Callable[..., FakeEndpoint]) -> None:
    server = endpoint(delay=0.3)
    replies = policy(server.url, concurrency=2).generate([request(str(k)) for k in range(6)])
    assert [r.text for r in replies] == ["ok"] * 6
    assert server.max_inflight == 2
    assert {h["body"]["messages"][1]["content"][1]["text"] for h in server.hits[:2]} == {"0", "1"}


@needs_openai
def test_api_key_from_the_named_variable_and_never_logged(
    endpoint: Callable[..., FakeEndpoint], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MY_ENDPOINT_KEY", SECRET)
    server = endpoint([Behaviour(status=500)], fail_marker="poison")
    with caplog.at_level(logging.DEBUG):
        p = policy(server.url, api_key_env="MY_ENDPOINT_KEY", max_retries=1)
        replies = p.generate([request("x"), request("poison")])
    assert {h["auth"] for h in server.hits} == {f"Bearer {SECRET}"}
    assert SECRET not in caplog.text
    assert all(SECRET not in r.text for r in replies) and SECRET not in p.name


@needs_openai
def test_stop_reason_brings_back_the_tool_end(endpoint: Callable[..., FakeEndpoint]) -> None:
    server = endpoint([Behaviour(content="<tool_call>{}", extra={"stop_reason": "</tool_call>"})])
    (reply,) = policy(server.url, stop_at_tool_call=True).generate([request()])
    assert reply.text == "<tool_call>{}</tool_call>"


@needs_openai
def test_text_after_the_tool_end_is_kept_by_default(endpoint: Callable[..., FakeEndpoint]) -> None:
    # as released, </tool_call> is not a stop: the reply keeps what follows (a final answer)
    text = '<tool_call>{"name": "x", "arguments": {}}</tool_call>\nSo the answer is \\boxed{A}'
    server = endpoint([Behaviour(content=text)])
    (reply,) = policy(server.url).generate([request()])
    assert reply.text == text
    assert "</tool_call>" not in server.hits[0]["body"]["stop"]
