"""``harness serve`` pushed as a hostile or careless client would (issue 15, deliverable 5): the real
CLI in a subprocess on 127.0.0.1 with a scripted policy, driven over raw sockets.

Every malformed request gets a 4xx with a JSON error body naming the field (never a dropped
connection or a 500); image bombs are refused from their headers and the server's peak RSS stays
small; slow heads and bodies time out with a 408; hundreds of simultaneous clients are all
answered; the API key is required when set.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from backend_support import needs_openai
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from serve_support import RawReply, Served, get, harness_serve, post, raw_request, read_reply

from harness.interop.serve import DEFAULT_MAX_REQUEST_PIXELS, HTTPError, check_pixels, parse_completion
from harness.interop.serve_schema import validate_body

CHAT = "/v1/chat/completions"
READ_TIMEOUT = 1.5
GIB = 1024 * 1024  # KiB
SECRET = "s3cret-key-for-tests"


def png_b64(size: tuple[int, int], mode: str = "1") -> str:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def image_body(*images: str, **extra: Any) -> dict[str, Any]:
    parts = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b}"}} for b in images]
    return {"messages": [{"role": "user", "content": [*parts, {"type": "text", "text": "q"}]}], **extra}


def ok_body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **extra}


@pytest.fixture(scope="module")
def bomb() -> str:
    """A 13000x13000 1-bit PNG: about 20 KB on the wire, 169 Mpx (a 500 MB RGB image once decoded)."""
    data = png_b64((13000, 13000))
    assert len(data) < 40_000
    return data


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    args = [
        "--model",
        "scripted:random",
        "--port",
        "0",
        "--read_timeout",
        str(READ_TIMEOUT),
        "--max_body_mb",
        "4",
    ]
    with harness_serve(args) as served:
        yield served


def assert_json_error(
    reply: RawReply, status: int | tuple[int, ...], field: str | None = None
) -> dict[str, Any]:
    statuses = (status,) if isinstance(status, int) else status
    assert reply.status in statuses, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    error = reply.json()["error"]
    assert error["code"] == reply.status and error["message"]
    if field is not None:
        assert field in error["message"], error
    return dict(error)


# -- in process: the validation functions --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (ok_body(max_tokens=math.inf), "max_tokens"),
        (ok_body(seed=math.inf), "seed"),
        (ok_body(temperature=math.nan), "temperature"),
        (ok_body(top_p=-math.inf), "top_p"),
        (ok_body(seed=2**64), "seed"),
        (ok_body(max_tokens=2**31), "max_tokens"),
        (ok_body(max_tokens=3.0), "max_tokens"),
        (ok_body(temperature="0.5"), "temperature"),
        (ok_body(stop=[1]), "stop[0]"),
        (ok_body(stream="yes"), "stream"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        ({"temperature": 0}, "messages"),
    ],
)
def test_malformed_fields_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(HTTPError) as info:
        validate_body(body)
    assert info.value.status == 400 and info.value.message.startswith(field), info.value.message
    assert info.value.param == field


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own note on the bomb
def test_pixel_budget_is_checked_from_headers(bomb: str) -> None:
    small = image_body(png_b64((100, 50)), png_b64((30, 30)))
    completion = parse_completion(small, max_request_pixels=5900)
    assert [p["image"].size for p in completion.request.messages[0]["content"][:2]] == [(100, 50), (30, 30)]
    with pytest.raises(
        HTTPError, match=r"messages\[0\]\.content\[1\]: .*5900 pixels so far, more than .* 5000"
    ):
        parse_completion(small, max_request_pixels=5000)
    with pytest.raises(HTTPError, match="13000x13000 image exceeds PIL's limit") as info:
        check_pixels(validate_body(image_body(bomb)).messages, budget=10**12)
    assert info.value.status == 413 and info.value.param == "messages[0].content[0]"
    frames = ",".join([png_b64((200, 200))] * 3)
    video = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "video_url", "video_url": {"url": f"data:video/jpeg;base64,{frames}"}}],
            }
        ]
    }
    assert check_pixels(validate_body(video).messages, budget=120_000) == 120_000
    with pytest.raises(HTTPError, match=r"content\[0\] frame 2: .*budget of 119999"):
        check_pixels(validate_body(video).messages, budget=119_999)
    assert DEFAULT_MAX_REQUEST_PIXELS == 16 * 5120 * 28 * 28


def test_unreadable_images_are_400() -> None:
    not_an_image = base64.b64encode(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n").decode()
    for data, needle in (("!!notbase64", "invalid base64"), (not_an_image, "not a readable image")):
        with pytest.raises(HTTPError, match=needle) as info:
            parse_completion(image_body(data))
        assert info.value.status == 400 and info.value.param == "messages[0].content[0]"


# -- over HTTP: a real server ----------------------------------------------------------------------

CHUNK = b" " * 1024 * 1024
CHUNKED = post(
    CHAT, b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) * 5 + b"0\r\n\r\n", {"Transfer-Encoding": "chunked"}
)
CHUNKED = CHUNKED.replace(b"Content-Length: %d\r\n" % (len(CHUNKED.partition(b"\r\n\r\n")[2])), b"")
MALFORMED: list[tuple[str, bytes, int | tuple[int, ...], str | None]] = [
    ("non-numeric Content-Length", post(CHAT, b"{}", {"Content-Length": "abc"}), 400, "Content-Length"),
    ("negative Content-Length", post(CHAT, b"{}", {"Content-Length": "-1"}), 400, "Content-Length"),
    ("huge Content-Length", post(CHAT, b"{}", {"Content-Length": "9" * 12}), 413, "Content-Length"),
    (
        "max_tokens 1e999",
        post(CHAT, b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":1e999}'),
        400,
        "max_tokens",
    ),
    ("seed 1e999", post(CHAT, b'{"messages":[{"role":"user","content":"hi"}],"seed":1e999}'), 400, "seed"),
    (
        "temperature NaN",
        post(CHAT, b'{"messages":[{"role":"user","content":"hi"}],"temperature":NaN}'),
        400,
        "temperature",
    ),
    (
        "top_p Infinity",
        post(CHAT, b'{"messages":[{"role":"user","content":"hi"}],"top_p":Infinity}'),
        400,
        "top_p",
    ),
    (
        "5000-digit integer",
        post(CHAT, b'{"messages":[{"role":"user","content":"hi"}],"seed":' + b"9" * 5000 + b"}"),
        400,
        "JSON",
    ),
    ("wrong type", post(CHAT, json.dumps(ok_body(max_tokens="many")).encode()), 400, "max_tokens"),
    ("missing messages", post(CHAT, b'{"max_tokens":3}'), 400, "messages"),
    ("bad base64", post(CHAT, json.dumps(image_body("@@@@")).encode()), 400, "messages[0].content[0]"),
    ("bad JSON", post(CHAT, b"{not json"), 400, "invalid JSON"),
    ("deep nesting", post(CHAT, b"[" * 200_000 + b"]" * 200_000), 400, "invalid JSON"),
    ("not UTF-8", post(CHAT, b'{"messages": "\xff\xfe"}'), 400, "invalid JSON"),
    ("empty body", post(CHAT, b""), 400, "invalid JSON"),
    ("a JSON array", post(CHAT, b"[1, 2]"), 400, "JSON object"),
    ("streaming", post(CHAT, json.dumps(ok_body(stream=True)).encode()), 400, "stream"),
    ("n=3", post(CHAT, json.dumps(ok_body(n=3)).encode()), 400, "n=1"),
    ("body over --max_body_mb", post(CHAT, b" " * (4 * 1024 * 1024 + 1)), 413, "the body"),
    ("chunked body over --max_body_mb", CHUNKED, 413, "the body is larger than 4194304 bytes"),
    ("garbage request line", b"\x00\x01 nonsense\r\n\r\n", 400, "malformed HTTP"),
    ("unknown route", get("/v1/nowhere"), 404, "/v1/nowhere"),
    ("wrong method", get(CHAT), 405, "GET"),
]


@pytest.mark.parametrize(
    ("data", "status", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_requests_get_a_json_4xx(
    server: Served, data: bytes, status: int, field: str | None
) -> None:
    assert_json_error(raw_request(server.address, data), status, field)


def test_server_answers_after_the_abuse(server: Served) -> None:
    for data in (b"\x00garbage\r\n\r\n", post(CHAT, b"{bad")):
        raw_request(server.address, data)
    assert raw_request(server.address, get("/health")).json() == {"status": "ok"}
    reply = raw_request(server.address, post(CHAT, json.dumps(ok_body()).encode()))
    assert reply.status == 200 and reply.json()["choices"][0]["message"]["role"] == "assistant"


def test_image_bombs_are_refused_from_headers_and_rss_stays_small(server: Served, bomb: str) -> None:
    one = raw_request(server.address, post(CHAT, json.dumps(image_body(bomb)).encode()))
    assert_json_error(one, 413, "messages[0].content[0]: a 13000x13000 image exceeds PIL's limit")
    five = raw_request(server.address, post(CHAT, json.dumps(image_body(*[bomb] * 5)).encode()))
    assert_json_error(five, 413, "messages[0].content[0]")
    # each under PIL's limit, together over the default budget of 64 Mpx: refused at the third
    mid = png_b64((5000, 5000))
    three = raw_request(server.address, post(CHAT, json.dumps(image_body(mid, mid, mid)).encode()))
    assert_json_error(three, 413, "messages[0].content[2]: the request's images have 75000000 pixels")
    memory = server.memory_kib()
    assert memory["VmHWM"] < GIB, memory  # the peak over the server's whole life so far


def test_slow_head_and_slow_body_time_out_with_408(server: Served) -> None:
    for partial in (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", post(CHAT, b"{" + b" " * 50)[:-10]):
        with socket.create_connection(server.address, timeout=READ_TIMEOUT * 6) as sock:
            start = time.monotonic()
            sock.sendall(partial)
            reply = read_reply(sock)
            assert_json_error(reply, 408)
            assert READ_TIMEOUT * 0.8 < time.monotonic() - start < READ_TIMEOUT * 5
            assert sock.recv(1) == b""  # and the connection is closed
    with socket.create_connection(server.address, timeout=READ_TIMEOUT * 6) as idle:  # sends nothing
        start = time.monotonic()
        assert idle.recv(1) == b""
        assert time.monotonic() - start < READ_TIMEOUT * 5


def test_keep_alive_serves_several_requests_on_one_connection(server: Served) -> None:
    with socket.create_connection(server.address, timeout=30) as sock:
        for k in range(3):
            sock.sendall(post(CHAT, json.dumps(ok_body(seed=k)).encode()))
            assert read_reply(sock).status == 200
        sock.sendall(post(CHAT, b"{bad"))  # an error answer keeps the connection too
        assert read_reply(sock).status == 400
        sock.sendall(get("/v1/models"))
        assert read_reply(sock).json()["data"][0]["id"] == "scripted:random"


async def _one_client(address: tuple[str, int], k: int) -> int:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(post(CHAT, json.dumps(ok_body(seed=k)).encode()))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
        )
        body = json.loads(await reader.readexactly(length))
        assert body["object"] == "chat.completion"
        return int(head.split()[1])
    finally:
        writer.close()


def test_many_concurrent_clients_are_all_answered(server: Served) -> None:
    n = 500

    async def main() -> list[int | BaseException]:
        return await asyncio.wait_for(
            asyncio.gather(*(_one_client(server.address, k) for k in range(n)), return_exceptions=True), 120
        )

    results = asyncio.run(main())
    failures = [r for r in results if not isinstance(r, int)]
    assert not failures, f"{len(failures)} of {n} failed, e.g. {failures[:3]!r}"
    assert results == [200] * n
    assert server.memory_kib()["VmHWM"] < GIB


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(
            ["messages", "temperature", "top_p", "max_tokens", "seed", "stop", "n", "stream", "x"]
        ),
        st.recursive(
            st.none()
            | st.booleans()
            | st.floats()
            | st.integers(min_value=-(2**70), max_value=2**70)
            | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["role", "content", "type", "text", "image_url", "url"]),
                    inner,
                    max_size=3,
                )
            ),
            max_leaves=8,
        ),
    )
)
def test_random_bodies_get_a_response(server: Served, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()  # NaN and Infinity written as JSON's extension
    reply = raw_request(server.address, post(CHAT, data))
    if reply.status != 200:
        assert_json_error(reply, (400, 413))


# -- API key and host ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> Iterator[Served]:
    args = ["--model", "scripted:random", "--port", "0", "--api_key_env", "HARNESS_TEST_SERVE_KEY"]
    with harness_serve(args, env={"HARNESS_TEST_SERVE_KEY": SECRET}) as served:
        yield served


def test_api_key_is_required_when_set(keyed: Served, server: Served) -> None:
    body = json.dumps(ok_body()).encode()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": SECRET},
        {"Authorization": "Bearer \xe9"},
    ):
        assert_json_error(raw_request(keyed.address, post(CHAT, body, headers)), 401, "API key")
        assert_json_error(raw_request(keyed.address, get("/v1/models", headers)), 401, "API key")
    good = {"Authorization": f"Bearer {SECRET}"}
    assert raw_request(keyed.address, post(CHAT, body, good)).status == 200
    assert raw_request(keyed.address, get("/v1/models", good)).status == 200
    assert raw_request(keyed.address, get("/health")).status == 200  # liveness needs no key
    # without --api-key any or no key is accepted; both listen on 127.0.0.1 by default
    assert raw_request(server.address, post(CHAT, body, {"Authorization": "Bearer anything"})).status == 200
    assert keyed.url.startswith("http://127.0.0.1:") and server.url.startswith("http://127.0.0.1:")


@needs_openai
def test_openai_backend_through_a_keyed_server(keyed: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.openai_api import BackendConfigError, OpenAIOptions, OpenAIPolicy
    from harness.loop.policy import Request, Sampling
    from harness.records import Sample

    image = Image.new("RGB", (56, 28), (9, 9, 9))
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "Q"}]}
    ]
    req = Request(
        messages,
        Sampling(max_new_tokens=8),
        Sample(task="t", id="1", question="Q", answer="", media=()),
        0,
        0,
    )
    monkeypatch.setenv("MY_SERVE_KEY", SECRET)
    good = OpenAIPolicy("m", OpenAIOptions(base_url=keyed.url, api_key_env="MY_SERVE_KEY", max_retries=0))
    (reply,) = good.generate([req])
    assert reply.finish_reason == "stop" and "boxed" in reply.text
    monkeypatch.setenv("MY_SERVE_KEY", "wrong")
    bad = OpenAIPolicy("m", OpenAIOptions(base_url=keyed.url, api_key_env="MY_SERVE_KEY", max_retries=0))
    with pytest.raises(BackendConfigError, match="401"):
        bad.generate([req])


def test_cli_refuses_bad_options(tmp_path: Any) -> None:
    import subprocess
    import sys

    busy = socket.create_server(("127.0.0.1", 0))  # a port in use: refused before any model loads
    port = str(busy.getsockname()[1])
    for args, needle in (
        (["--port", port], f"cannot listen on --host 127.0.0.1 --port {port}: Address already in use"),
        (["--host", "256.0.0.1"], "cannot listen on --host 256.0.0.1"),
        (["--api_key_env", "HARNESS_SURELY_UNSET_VAR"], "HARNESS_SURELY_UNSET_VAR"),
        (["--max_request_pixels", "0"], "max_request_pixels"),
        (["--port", "70000"], "--port"),
        (["--read_timeout", "0"], "read_timeout"),
    ):
        cmd = [sys.executable, "-m", "harness", "serve", "--model", "scripted:random", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and needle in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    busy.close()


def test_make_server_runs_in_a_thread_and_shuts_down() -> None:
    """The in-process form (``make_server`` + ``serve_forever`` in a thread) other code relies on."""
    import threading

    from harness.backends.scripted import OraclePolicy
    from harness.interop.server import make_server

    server = make_server(OraclePolicy(), 0, "oracle")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while True:  # uvicorn starts listening once its loop runs
            try:
                reply = raw_request(server.server_address, post(CHAT, json.dumps(ok_body()).encode()))
                break
            except ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert reply.status == 200 and "boxed" in reply.json()["choices"][0]["message"]["content"]
    finally:
        server.shutdown()
        server.server_close()
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_raised_pil_limit_in_the_process_does_not_loosen_the_server(
    bomb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_media raises PIL's global limit for large benchmark images; a server in the same
    process still refuses a 13000x13000 bomb at PIL's default limit."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000_000)
    with pytest.raises(HTTPError, match="13000x13000 image exceeds PIL's limit of 89478485") as info:
        check_pixels(validate_body(image_body(bomb)).messages, budget=10**12)
    assert info.value.status == 413
