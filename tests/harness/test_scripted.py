from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.backends import BackendContext, parse_model_args, split_model
from harness.backends.scripted import oracle_box
from harness.loop.policy import Policy, Request, Sampling
from harness.plugins import Harness
from harness.records import Sample

SYSTEM_WITH_TOOLS = {"role": "system", "content": [{"type": "text", "text": "x <tools>\n{}\n</tools>"}]}


def _req(sample: Sample, turn: int = 0, seed: int = 0, tools: bool = True) -> Request:
    msgs = [SYSTEM_WITH_TOOLS] if tools else [{"role": "system", "content": "You are a helpful assistant."}]
    return Request(messages=msgs, sampling=Sampling(), sample=sample, turn=turn, seed=seed)


def test_oracle_zooms_then_answers(
    make_samples: Callable[..., list[Sample]], scripted_policy: Callable[[str], Policy]
) -> None:
    sample = make_samples("vstar", 1)[0]
    oracle = scripted_policy("oracle")
    first, second = oracle.generate([_req(sample, 0), _req(sample, 1)])
    assert first.text.rstrip().endswith("</tool_call>")
    assert '"crop_image_normalized"' in first.text
    assert second.text == f"The answer is \\boxed{{{sample.answer}}}."
    assert oracle.generate([_req(sample, 0, tools=False)])[0].text == second.text


def test_oracle_box_is_fractional_union(tmp_path: Path) -> None:
    s = Sample(
        task="t",
        id="1",
        question="q",
        answer="A",
        media=("x.jpg",),
        metadata={"image_size": [1000, 500], "target_boxes": [[100, 50, 10, 10], [900, 480, 100, 20]]},
    )
    assert oracle_box(s) == [0.1, 0.1, 0.999, 0.999]


def test_random_is_seeded(
    make_samples: Callable[..., list[Sample]], scripted_policy: Callable[[str], Policy]
) -> None:
    samples = make_samples("vstar", 20)
    a = [
        r.text
        for r in scripted_policy("random").generate([_req(s, 0, seed=i) for i, s in enumerate(samples)])
    ]
    b = [
        r.text
        for r in scripted_policy("random").generate([_req(s, 0, seed=i) for i, s in enumerate(samples)])
    ]
    c = [
        r.text
        for r in scripted_policy("random").generate([_req(s, 0, seed=i + 1) for i, s in enumerate(samples)])
    ]
    assert a == b
    assert a != c
    assert any("<tool_call>" in t for t in a) and any("\\boxed" in t for t in a)


def test_replay_from_json_and_missing_reply(
    tmp_path: Path, make_samples: Callable[..., list[Sample]], harness_instance: Harness
) -> None:
    sample = make_samples("vstar", 1)[0]
    path = tmp_path / "replies.json"
    path.write_text(json.dumps({sample.key: ["\\boxed{A}"]}))
    policy = harness_instance.backend("scripted")(f"replay:{path}", BackendContext())
    r0, r1 = policy.generate([_req(sample, 0), _req(sample, 1)])
    assert (r0.text, r0.finish_reason) == ("\\boxed{A}", "stop")
    assert r1.finish_reason == "error" and "no recorded reply" in r1.text


@pytest.mark.parametrize(
    ("rest", "args", "match"),
    [
        ("oracl", {}, "unknown scripted policy"),
        ("replay", {}, "needs a file"),
        ("oracle", {"x": "1"}, "unknown --model_args"),
    ],
)
def test_scripted_errors(harness_instance: Harness, rest: str, args: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        harness_instance.backend("scripted")(rest, BackendContext(model_args=args))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("hf:Qwen/Q", ("hf", "Qwen/Q")), ("scripted:replay:a:b", ("scripted", "replay:a:b")), ("x", ("x", ""))],
)
def test_split_model(spec: str, expected: tuple[str, str]) -> None:
    assert split_model(spec) == expected


def test_parse_model_args() -> None:
    assert parse_model_args("a=1, b = x") == {"a": "1", "b": "x"}
    with pytest.raises(ValueError, match="key=value"):
        parse_model_args("a")


def test_replay_from_samples_jsonl_gives_the_exact_replies(tmp_path: Path) -> None:
    """A recorded reply whose lone surrogate was cleaned is replayed from ``raw_reply``, exactly;
    a raw U+2028 inside a line (older files) does not split the line."""

    from harness.backends.scripted import load_replay

    lone = "look \ud83d here"
    turns = [
        {"reply": "look \ufffd here", "raw_reply": json.dumps(lone)},
        {"reply": "para\u2028graph \\boxed{A}"},
    ]
    line = json.dumps({"trajectory": {"task": "vstar", "sample_id": "7", "turns": turns}}, ensure_ascii=False)
    path = tmp_path / "samples.jsonl"
    path.write_text(line + "\n", encoding="utf-8", errors="surrogatepass")
    assert load_replay(path) == {"vstar/7": [lone, "para\u2028graph \\boxed{A}"]}
