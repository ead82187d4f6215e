"""``harness serve`` as a real subprocess, and the hf-vs-openai parity: the same tiny model and
samples give identical trajectories in process (hf) and over HTTP (openai -> harness serve)."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_support import HAVE_OPENAI, needs_hf
from PIL import Image
from serve_support import Served, harness_serve

from harness.interop.serve import HTTPError, completion_response, parse_completion
from harness.loop.limits import Limits
from harness.loop.policy import Policy, Reply
from harness.loop.rollout import RolloutConfig, rollout
from harness.plugins import Harness

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, "streaming"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n=1"),
        ({"messages": []}, "messages: List should have at least 1 item"),
        (
            {"messages": [{"role": "user", "content": "hi"}], "temperature": -1},
            "temperature: Input should be greater than or equal to 0",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}, "max_tokens: "),
    ],
)
def test_bad_bodies_are_400(body: Any, message: str) -> None:
    with pytest.raises(HTTPError, match=message) as info:
        parse_completion(body)
    assert info.value.status == 400


def test_parse_and_respond() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "SYS"},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}}],
            },
        ],
        "temperature": 0,
        "max_tokens": 9,
        "seed": 4,
        "stop": ["<|im_end|>", "</tool_call>"],
    }
    completion = parse_completion(body)
    sampling = completion.request.sampling
    assert (sampling.max_new_tokens, sampling.seed, sampling.stop) == (9, 4, ("<|im_end|>",))
    assert completion.request.messages[1]["content"][0]["image"].size == (1, 1)
    reply = Reply("<tool_call>{}</tool_call>", "stop", prompt_tokens=5, completion_tokens=3)
    out = completion_response(reply, completion, "m")
    choice = out["choices"][0]
    assert (choice["message"]["content"], choice["stop_reason"]) == ("<tool_call>{}", "</tool_call>")
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    # backends do not stop at </tool_call> by default (as released): a client that asked for that
    # stop still gets the reply cut at the first one, with the stop named
    late = Reply("<tool_call>{}</tool_call>\nSo the answer is \\boxed{A}", "length")
    choice = completion_response(late, completion, "m")["choices"][0]
    assert (choice["message"]["content"], choice["stop_reason"], choice["finish_reason"]) == (
        "<tool_call>{}",
        "</tool_call>",
        "stop",
    )
    # top_k (vLLM's extra parameter, which the openai backend sends) reaches the policy; -1 is off
    assert parse_completion({**body, "top_k": 40}).request.sampling.top_k == 40
    assert parse_completion({**body, "top_k": -1}).request.sampling.top_k == 0
    assert completion.request.sampling.top_k == 0
    # without that stop requested the whole reply comes back
    plain = parse_completion({**body, "stop": ["<|im_end|>"]})
    choice = completion_response(late, plain, "m")["choices"][0]
    assert (choice["message"]["content"], choice["stop_reason"]) == (late.text, None)


@pytest.fixture(scope="module")
def hf_server(tiny_model: Path) -> Iterator[Served]:
    """``harness serve --model hf:TINY --port 0`` in a subprocess."""
    with harness_serve(["--model", f"hf:{tiny_model}", "--port", "0"]) as server:
        yield server


@pytest.fixture(scope="module")
def served(hf_server: Served) -> str:
    """The hf server's base URL (``http://127.0.0.1:PORT/v1``)."""
    return hf_server.url


def http(url: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@needs_hf
def test_models_and_errors_over_http(served: str, tiny_model: Path) -> None:
    assert served.startswith("http://127.0.0.1:") and served.endswith("/v1")
    status, models = http(f"{served}/models")
    assert status == 200 and models["data"][0]["id"] == f"hf:{tiny_model}"
    status, err = http(f"{served}/chat/completions", b"{not json")
    assert status == 400 and "invalid JSON" in err["error"]["message"]
    status, err = http(f"{served}/nowhere")
    assert status == 404 and err["error"]["type"] == "not_found_error"
    ok = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0}
    status, out = http(f"{served}/chat/completions", json.dumps(ok).encode())
    assert status == 200 and out["usage"]["completion_tokens"] <= 3 and out["object"] == "chat.completion"


@needs_hf
def test_image_bomb_is_refused_before_decoding(hf_server: Served) -> None:
    """A 20 KB 1-bit PNG of 13000x13000 px once took this server to 2.6 GB: now a 413 from the header."""
    buf = io.BytesIO()
    Image.new("1", (13000, 13000)).save(buf, format="PNG", optimize=True)
    url = f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"
    part = {"type": "image_url", "image_url": {"url": url}}
    body = {"messages": [{"role": "user", "content": [part] * 5}], "max_tokens": 3}
    before = hf_server.memory_kib()["VmHWM"]  # the peak so far: about 790 MiB here (torch, the model)
    status, err = http(f"{hf_server.url}/chat/completions", json.dumps(body).encode())
    assert status == 413 and err["error"]["param"] == "messages[0].content[0]", err
    # one decoded 13000x13000 RGB image alone is 484 MiB; the peak grew by far less (KiB)
    assert hf_server.memory_kib()["VmHWM"] < before + 256 * 1024


def comparable(record: Any) -> dict[str, Any]:
    """A trajectory and its score without the wall-clock seconds."""
    traj = record.trajectory.to_dict()
    for turn in traj["turns"]:
        turn.pop("seconds", None)
    return {"trajectory": traj, "score": record.score.to_dict()}


@needs_hf
@pytest.mark.skipif(not HAVE_OPENAI, reason="needs the openai client: pip install -e '.[openai]'")
@pytest.mark.parametrize("scripted_first_turn", [False, True], ids=["model-only", "crops-and-frames"])
def test_hf_and_openai_give_identical_trajectories(
    served: str,
    hf_policy: Any,
    backend_harness: Harness,
    make_samples: Any,
    first_turn_oracle: Callable[[Policy], Policy],
    scripted_first_turn: bool,
) -> None:
    from harness.backends.openai_api import OpenAIOptions, OpenAIPolicy

    items = [
        (backend_harness.task(t), s)
        for t, n in (("vstar", 2), ("mvbench", 2), ("tallyqa", 1))
        for s in make_samples(t, n)
    ]
    config = RolloutConfig(limits=Limits(max_new_tokens=24), batch_size=4)
    remote: Policy = OpenAIPolicy("tiny", OpenAIOptions(base_url=served, concurrency=4, max_retries=0))
    local: Policy = hf_policy
    if scripted_first_turn:
        local, remote = first_turn_oracle(local), first_turn_oracle(remote)
    via_hf = {r.key: comparable(r) for r in rollout(items, local, backend_harness.tools, config)}
    via_http = {r.key: comparable(r) for r in rollout(items, remote, backend_harness.tools, config)}
    assert len(via_hf) == len(items)
    for key, expected in via_hf.items():
        assert via_http[key] == expected, key
    skip = 1 if scripted_first_turn else 0  # the scripted turn has no token counts
    model_turns = [t for v in via_hf.values() for t in v["trajectory"]["turns"][skip:]]
    assert len(model_turns) >= len(items)  # with the scripted first turn: the model saw the crops / frames
    assert all(t["prompt_tokens"] and t["completion_tokens"] for t in model_turns)
