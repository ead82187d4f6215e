"""Golden tests: the harness against the released Pixel-Reasoner evaluation arithmetic.

Expected values are literals computed from the released code's arithmetic by the independent
transcription in ``tests/pixel_reasoner_reference.py`` (which imports nothing from the harness);
``test_reference_gives_the_table`` checks that transcription against the literals, the other tests
check the harness against the same literals. Each image row: original size, ``bbox_2d``, the copy
the tools hold (crops are cut from it), the size the engine shows the input, the pixel box PIL
cuts, the "Image Size: WxH" text, and the size the engine shows the crop.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pixel_reasoner_reference as ref
import pytest
from PIL import Image

from harness.loop.episode import Episode
from harness.loop.limits import Limits
from harness.loop.policy import Reply
from harness.loop.protocol import parse_reply
from harness.records import Sample
from harness.tools import BUILTIN_TOOLS

Size = tuple[int, int]
Box = tuple[int, int, int, int]

# (original, bbox_2d, tools' copy, input shown, crop box, "Image Size", crop shown)
IMAGE_ROWS: list[tuple[str, Size, list[float], Size, Size, Box, Size, Size]] = [
    ("small", (640, 480), [0.4, 0.4, 0.6, 0.6], (644, 476), (756, 560), (193, 143, 451, 333), (532, 392), (756, 560)),
    ("2MP-pixels", (1920, 1080), [800, 400, 1100, 700], (1932, 1092), (1932, 1092), (607, 291, 1293, 809), (672, 504), (756, 560)),
    ("4MP", (2448, 1632), [0.3, 0.6, 0.35, 0.7], (2436, 1624), (2436, 1624), (487, 812, 1096, 1299), (616, 476), (728, 560)),
    ("8MP-vstar", (3840, 2160), [0.45, 0.45, 0.5, 0.5], (3332, 1876), (2660, 1484), (1166, 657, 1999, 1126), (840, 476), (868, 504)),
    ("very-tall", (1000, 9000), [0.1, 0.5, 0.9, 0.55], (812, 7504), (644, 6076), (0, 3002, 812, 4878), (812, 1876), (812, 1876)),
    ("edge", (1920, 1080), [0.9, 0.9, 0.999, 0.999], (1932, 1092), (1932, 1092), (1546, 874, 1932, 1092), (616, 364), (840, 504)),
    ("pixels-0011", (640, 480), [0, 0, 1, 1], (644, 476), (756, 560), (0, 0, 65, 49), (532, 392), (756, 560)),
    ("15MP-whole", (5000, 3000), [0, 0, 0.999, 0.999], (3220, 1932), (2576, 1540), (0, 0, 3220, 1932), (2576, 1540), (2576, 1540)),
    ("5-element", (3840, 2160), [0.45, 0.45, 0.5, 0.5, 7], (3332, 1876), (2660, 1484), (1166, 657, 1999, 1126), (840, 476), (868, 504)),
]  # fmt: skip
# tiny: an inverted box narrower than the padding; the released assertion text
TINY = ((640, 480), [0.8, 0.8, 0.62, 0.62], "Cropped image is too small: 13x10")
# video frames: original frame, "Frame Size" (<= 512*28*28), shown by the engine (>= 512*28*28)
FRAME_ROWS: list[tuple[Size, Size, Size]] = [
    ((640, 360), (644, 364), (868, 504)),
    ((1920, 1080), (840, 448), (868, 476)),
    ((320, 240), (308, 252), (728, 588)),
]


def gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    arr = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 90.0)], axis=-1)
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def sample(kind: str = "image") -> Sample:
    return Sample(task="vstar", id="g", question="Q?", answer="A", media=("x",), media_kind=kind)  # type: ignore[arg-type]


def call(name: str, **arguments: Any) -> Reply:
    return Reply(
        f"Let me look.\n<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"
    )


@pytest.mark.parametrize("row", IMAGE_ROWS, ids=[r[0] for r in IMAGE_ROWS])
def test_reference_gives_the_table(row: tuple[str, Size, list[float], Size, Size, Box, Size, Size]) -> None:
    _, size, bbox, source, shown, box, text, crop_shown = row
    assert ref.input_source(size) == source
    assert ref.engine_shown(source) == shown
    assert ref.released_crop(source, bbox) == box
    assert ref.crop_text_size(box) == text
    assert ref.engine_shown(text) == crop_shown


def test_reference_tiny_and_frames() -> None:
    size, bbox, message = TINY
    with pytest.raises(AssertionError, match=message):
        ref.released_crop(ref.input_source(size), bbox)
    for frame, text, shown in FRAME_ROWS:
        assert (ref.frame_size(frame), ref.engine_shown(text)) == (text, shown)


@pytest.mark.parametrize("row", IMAGE_ROWS, ids=[r[0] for r in IMAGE_ROWS])
def test_episode_crops_like_the_released_eval(
    row: tuple[str, Size, list[float], Size, Size, Box, Size, Size],
) -> None:
    _, size, bbox, _source, shown, box, text, crop_shown = row
    ep = Episode(sample(), [gradient(*size)], mode="vcot", question="Q?", tools=BUILTIN_TOOLS)
    first = ep.messages[1]["content"][0]["image"]
    assert first.size == shown and ep.shown_sizes == [shown]
    ep.step(call("crop_image_normalized", bbox_2d=bbox, target_image=1))
    obs = ep.turns[0].observation
    assert obs is not None and obs.kind == "crop", obs
    assert obs.box == box and obs.size == text and obs.shown_sizes == (crop_shown,)
    content = ep.messages[-1]["content"]
    assert content[0]["text"] == f"\nHere is the cropped image (Image Size: {text[0]}x{text[1]}):"
    assert content[1]["image"].size == crop_shown  # the pixels every backend sends the model
    ep.step(Reply("\\boxed{A}"))
    traj = ep.trajectory()
    assert traj.shown_sizes == (shown,) and traj.turns[0].observation == obs


def test_episode_tiny_crop_is_the_released_error() -> None:
    size, bbox, message = TINY
    ep = Episode(sample(), [gradient(*size)], mode="vcot", question="Q?", tools=BUILTIN_TOOLS)
    ep.step(call("crop_image_normalized", bbox_2d=bbox, target_image=1))
    assert ep.messages[-1]["content"] == [{"type": "text", "text": f"\nExecution error:\n{message}\n"}]


@pytest.mark.parametrize(("frame", "text", "shown"), FRAME_ROWS)
def test_episode_frames_like_the_released_eval(frame: Size, text: Size, shown: Size) -> None:
    frames = [gradient(*frame) for _ in range(16)]
    ep = Episode(sample("video"), frames, mode="vcot", question="Q?", tools=BUILTIN_TOOLS)
    video = ep.messages[1]["content"][0]["video"]
    assert {f.size for f in video} == {shown} and ep.shown_sizes == [shown] * 16
    ep.step(call("select_frames", target_frames=[2, 9]))
    content = ep.messages[-1]["content"]
    assert (
        content[0]["text"]
        == f"\nHere are the selected frames (Frame Size: {text[0]}x{text[1]}, Numbered 1 to 2):"
    )
    assert [p["image"].size for p in content[1:]] == [shown, shown]
    obs = ep.turns[0].observation
    assert obs is not None and obs.size == text and obs.shown_sizes == (shown, shown)


def test_engine_bounds_can_be_turned_off() -> None:
    # min_pixels=0 and a huge max_pixels: the model sees the tools' copies (the harness's old behaviour)
    wide = Limits(min_pixels=0, max_pixels=10**9)
    ep = Episode(
        sample(), [gradient(3840, 2160)], mode="vcot", question="Q?", tools=BUILTIN_TOOLS, limits=wide
    )
    assert ep.messages[1]["content"][0]["image"].size == (3332, 1876)


# -- stop handling ------------------------------------------------------------------------------

CALL_TEXT = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 1}}\n</tool_call>'


def released_requires_tool(reply: str) -> bool:
    """The released test, verbatim in effect: ``rsp = out.replace("<|im_end|>", "")``, then
    ``rsp[-len(tool_end)-10:].endswith(tool_end)`` (i.e. ``rsp.endswith(tool_end)``)."""
    rsp = reply.replace("<|im_end|>", "")
    last = rsp[-len("</tool_call>") - 10 :] if len(rsp) > len("</tool_call>") + 10 else rsp
    return last.endswith("</tool_call>")


@pytest.mark.parametrize(
    "reply",
    [
        f"Zoom.\n{CALL_TEXT}",
        f"Zoom.\n{CALL_TEXT}<|im_end|>",
        f"{CALL_TEXT}\nSo the answer is \\boxed{{A}}",
        f"{CALL_TEXT}\nSo the answer is \\boxed{{A}}<|im_end|>",
        f"{CALL_TEXT} B",
        "The answer is \\boxed{A}.",
        f"{CALL_TEXT}{CALL_TEXT}",
    ],
)
def test_tool_call_iff_released_says_so(reply: str) -> None:
    assert parse_reply(reply).is_tool_call == released_requires_tool(reply)


def test_text_after_tool_call_is_a_final_answer() -> None:
    ep = Episode(sample(), [gradient(640, 480)], mode="vcot", question="Q?", tools=BUILTIN_TOOLS)
    reply = f"{CALL_TEXT}\nSo the answer is \\boxed{{A}}"
    ep.step(Reply(reply))
    traj = ep.trajectory()
    assert (traj.end_reason, traj.final_reply, traj.n_ops) == ("answer", reply, 0)
    assert traj.turns[0].observation is None and traj.turns[0].tool_call is None


def test_records_written_before_shown_sizes_still_load() -> None:
    from harness.records import Observation, Trajectory

    obs = Observation.from_dict(
        {"kind": "crop", "tool": "crop_image_normalized", "text": "t", "size": [532, 392]}
    )
    assert obs.shown_sizes == ()
    old = {
        "task": "vstar",
        "sample_id": "1",
        "prompt_mode": "vcot",
        "system": "",
        "prompt": "",
        "turns": [],
        "end_reason": "answer",
    }
    assert Trajectory.from_dict(old).shown_sizes == ()


def test_trailing_whitespace_after_the_call_is_a_documented_deviation() -> None:
    # the released check has no rstrip: "...</tool_call>\n" was an answer there; here it is a call
    # (docs/deviations.md, Evaluation); only text that is not whitespace makes a final answer
    reply = CALL_TEXT + "\n"
    assert not released_requires_tool(reply) and parse_reply(reply).is_tool_call
