"""Property tests: no model output can crash the protocol or an episode."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.loop.episode import Episode
from harness.loop.policy import Reply
from harness.loop.protocol import parse_reply
from harness.records import Sample
from harness.tools import BUILTIN_TOOLS

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = st.sampled_from(
    [
        "<tool_call>",
        "</tool_call>",
        "<|im_end|>",
        "<|endoftext|>",
        "{",
        "}",
        '"name"',
        '"arguments"',
        ":",
        ",",
        "\n",
        " ",
    ]
)
REPLY_TEXT = st.lists(st.one_of(st.text(max_size=20), FRAGMENTS), max_size=20).map("".join)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
NUMBER = st.one_of(st.integers(-5, 3000), st.floats(-2, 2, allow_nan=False), st.floats())
ARG_VALUES = st.one_of(
    JSON, st.lists(NUMBER, min_size=3, max_size=5), st.lists(st.integers(-2, 20), max_size=10)
)
SANE_BOX = st.builds(
    lambda x, y, w, h: [x, y, x + w, y + h],
    st.floats(0, 0.6),
    st.floats(0, 0.6),
    st.floats(0.05, 0.39),
    st.floats(0.05, 0.39),
)
BBOX = st.one_of(
    SANE_BOX,
    st.lists(st.floats(0, 0.99), min_size=4, max_size=4),
    st.lists(NUMBER, min_size=4, max_size=4),
    JSON,
)
FRAME_LIST = st.one_of(
    st.lists(st.integers(1, 16), min_size=1, max_size=8), st.lists(st.integers(-1, 18), max_size=10), JSON
)
WELL_FORMED = st.one_of(
    st.fixed_dictionaries(
        {
            "name": st.just("crop_image_normalized"),
            "arguments": st.fixed_dictionaries(
                {"bbox_2d": BBOX, "target_image": st.one_of(st.integers(1, 2), st.integers(-1, 3), NUMBER)}
            ),
        }
    ),
    st.fixed_dictionaries(
        {"name": st.just("select_frames"), "arguments": st.fixed_dictionaries({"target_frames": FRAME_LIST})}
    ),
)
ARBITRARY = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from([t.name for t in BUILTIN_TOOLS]), st.text(max_size=12), JSON),
        "arguments": st.one_of(
            st.dictionaries(
                st.sampled_from(["bbox_2d", "target_image", "target_frames"]) | st.text(max_size=8),
                ARG_VALUES,
                max_size=3,
            ),
            JSON,
        ),
    }
)
PAYLOAD = st.one_of(WELL_FORMED, ARBITRARY, JSON)  # JSON alone: anything at all inside the tags

IMAGE = Image.new("RGB", (64, 48), (20, 40, 60))
FRAMES = [Image.new("RGB", (320, 240), (k, 0, 0)) for k in range(16)]


@FAST
@given(REPLY_TEXT)
def test_parse_reply_never_raises(text: str) -> None:
    parsed = parse_reply(text)
    assert parsed.text == text
    assert parsed.is_tool_call or (parsed.call is None and parsed.error is None)
    if parsed.is_tool_call:
        assert (parsed.call is None) != (parsed.error is None)


@FAST
@given(st.text())
def test_parse_reply_never_raises_on_any_text(text: str) -> None:
    parse_reply(text)
    parse_reply(f"<tool_call>{text}</tool_call>")


@FAST
@given(kind=st.sampled_from(["image", "video"]), payload=PAYLOAD)
def test_episode_step_survives_any_call(kind: str, payload: Any) -> None:
    sample = Sample(task="fuzz", id="f", question="Q", answer="A", media=("x",), media_kind=kind)  # type: ignore[arg-type]
    media = FRAMES if kind == "video" else [IMAGE]
    ep = Episode(sample, media, mode="vcot", question="Q", tools=BUILTIN_TOOLS)
    body = json.dumps(payload)
    ep.step(Reply(text=f"thinking...\n<tool_call>\n{body}\n</tool_call>"))

    assert not ep.done and ep.n_ops == 1
    obs = ep.turns[0].observation
    assert obs is not None
    event(obs.kind)
    last = ep.messages[-1]
    assert last["role"] == "user"
    text = last["content"][0]["text"]
    if obs.kind == "error":
        assert ep.n_errors == 1 and obs.error
        assert text == f"\nExecution error:\n{obs.error}\n" and len(last["content"]) == 1
    else:
        assert obs.kind in ("crop", "frames") and ep.n_errors == 0
        assert text == obs.text
        assert [p["type"] for p in last["content"][1:]] == ["image"] * len(obs.images)
    # the episode goes on normally afterwards
    ep.step(Reply(text="\\boxed{A}"))
    assert ep.trajectory().end_reason == "answer"
