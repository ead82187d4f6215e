"""harness.loop.episode: full multi-turn flows driven by scripted replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness.loop.episode import Episode, safe_name
from harness.loop.limits import Limits
from harness.loop.policy import Reply
from harness.loop.protocol import system_prompt, user_text
from harness.records import Sample, Trajectory
from harness.tools import BUILTIN_TOOLS, CROP_TOOL, ToolContext, ToolResult, ToolSpec, resize_to_budget

ERR = "\nExecution error:\n"


def gradient(w: int, h: int) -> Image.Image:
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, w)[None, :].round().astype(np.uint8)
    arr[..., 1] = np.linspace(0, 255, h)[:, None].round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def sample(kind: str = "image", sid: str = "s1") -> Sample:
    return Sample(task="synthetic", id=sid, question="What is it?", answer="A", media=("x",), media_kind=kind)  # type: ignore[arg-type]


def call(name: str, **arguments: Any) -> Reply:
    body = json.dumps({"name": name, "arguments": arguments})
    return Reply(
        text=f"Let me look closer.\n<tool_call>\n{body}\n</tool_call>",
        prompt_tokens=100,
        completion_tokens=20,
    )


def crop(bbox: list[float], target: int = 1) -> Reply:
    return call("crop_image_normalized", bbox_2d=bbox, target_image=target)


ANSWER = Reply(text="So the answer is \\boxed{A}.", prompt_tokens=300, completion_tokens=10, seconds=0.5)


def image_episode(*media: Image.Image, **kw: Any) -> Episode:
    kw.setdefault("mode", "vcot")
    return Episode(
        sample(**kw.pop("sample_kw", {})),
        list(media) or [gradient(640, 480)],
        question="What is it?",
        tools=BUILTIN_TOOLS,
        **kw,
    )


def video_episode(**kw: Any) -> Episode:
    frames = [Image.new("RGB", (320, 240), (10 * k, 0, 0)) for k in range(16)]
    return Episode(sample("video"), frames, mode="vcot", question="What happens?", tools=BUILTIN_TOOLS, **kw)


def last_user_text(ep: Episode) -> str:
    msg = ep.messages[-1]
    assert msg["role"] == "user"
    text: str = msg["content"][0]["text"]
    return text


def test_initial_messages_vcot_image() -> None:
    ep = image_episode()
    assert [m["role"] for m in ep.messages] == ["system", "user"]
    assert ep.messages[0]["content"] == [{"type": "text", "text": system_prompt(BUILTIN_TOOLS)}]
    parts = ep.messages[1]["content"]
    assert [p["type"] for p in parts] == ["image", "text"]
    assert parts[0]["image"].size == (756, 560)  # smart-resized into 512..5120 x 28x28 pixels
    assert parts[1]["text"] == user_text("What is it?", "vcot")
    assert ep.images == [parts[0]["image"]] and not ep.done


@pytest.mark.parametrize("mode", ["notool", "official"])
def test_single_turn_modes(mode: Any) -> None:
    ep = image_episode(mode=mode)
    assert ep.messages[0]["content"][0]["text"] == "You are a helpful assistant."
    assert ep.messages[1]["content"][-1]["text"] == user_text("What is it?", mode)
    ep.step(crop([0.1, 0.1, 0.5, 0.5]))  # even a tool call is the final reply here
    t = ep.trajectory()
    assert (t.end_reason, t.n_ops, len(t.turns)) == ("answer", 0, 1)
    assert t.final_reply is not None and t.final_reply.endswith("</tool_call>")
    assert t.turns[0].observation is None and t.turns[0].tool_call is None


def test_crop_then_answer() -> None:
    ep = image_episode()
    ep.step(crop([0.4, 0.4, 0.6, 0.6]))
    assert not ep.done and ep.n_ops == 1
    msg = ep.messages[-1]
    assert [p["type"] for p in msg["content"]] == ["text", "image"]
    assert msg["content"][0]["text"] == "\nHere is the cropped image (Image Size: 532x392):"
    assert msg["content"][1]["image"].size == (756, 560)  # shown at the engine's >= 512*28*28
    ep.step(ANSWER)
    t = ep.trajectory()
    assert [m["role"] for m in ep.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert ep.messages[-1]["content"] == [{"type": "text", "text": ANSWER.text}]
    assert (t.end_reason, t.final_reply, t.n_ops, t.n_errors, t.last_op_failed) == (
        "answer",
        ANSWER.text,
        1,
        0,
        False,
    )
    obs = t.turns[0].observation
    assert obs is not None and obs.kind == "crop"
    assert obs.box == (193, 143, 451, 333)  # pixels of the 644x476 copy the tools hold
    assert obs.images == (2,) and obs.size == (532, 392) and obs.source_image == 1
    assert obs.shown_sizes == ((756, 560),) and t.shown_sizes == ((756, 560),)
    assert t.turns[0].tool_call is not None and t.turns[0].tool_call.arguments["target_image"] == 1
    assert t.turns[1].observation is None and t.turns[1].seconds == 0.5 and t.turns[1].prompt_tokens == 300
    assert t.system == system_prompt(BUILTIN_TOOLS) and t.prompt == user_text("What is it?", "vcot")


def test_crop_is_cut_from_the_resized_image() -> None:
    # released: the crop comes from the input bounded to 256..8000*28*28 (not the engine's copy),
    # is resized into 256..5120*28*28 (its "Image Size"), then the engine shows it at 512..5120
    img, lim = gradient(640, 480), Limits()
    ep = image_episode(img)
    ep.step(crop([0.4, 0.4, 0.6, 0.6]))
    obs = ep.turns[0].observation
    assert obs is not None and obs.box is not None and obs.size is not None
    source = img.resize((644, 476))
    assert resize_to_budget(img, lim.source_min_pixels, lim.source_max_pixels).size == source.size
    expected = source.crop(obs.box).resize(obs.size).resize(obs.shown_sizes[0])
    assert np.array_equal(np.asarray(ep.images[1]), np.asarray(expected))
    assert ep.images[0].size == (756, 560) and np.array_equal(
        np.asarray(ep.images[0]), np.asarray(source.resize((756, 560)))
    )


def test_fifth_call_ends_the_episode() -> None:
    ep = image_episode()
    for _ in range(4):
        ep.step(crop([0.2, 0.2, 0.6, 0.6]))
    assert not ep.done and ep.n_ops == 4 and len(ep.images) == 5
    ep.step(crop([0.2, 0.2, 0.6, 0.6]))
    t = ep.trajectory()
    assert (t.end_reason, t.final_reply, t.n_ops) == ("max_ops", None, 5)  # released num_toolcalls
    assert t.turns[4].observation is None and t.turns[4].tool_call is not None  # not executed
    assert ep.messages[-1]["role"] == "assistant" and len(ep.images) == 5
    assert sum(tt.observation is not None for tt in t.turns) == 4


def test_error_turn_then_answer_sets_last_op_failed() -> None:
    ep = image_episode()
    ep.step(
        Reply(text='<tool_call>{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1,</tool_call>')
    )
    assert not ep.done
    assert last_user_text(ep).startswith(
        ERR + "Invalid tool call: the content of <tool_call> is not valid JSON"
    )
    assert ep.messages[-1]["content"][0]["text"].endswith("\n") and len(ep.messages[-1]["content"]) == 1
    ep.step(ANSWER)
    t = ep.trajectory()
    assert (t.end_reason, t.n_ops, t.n_errors, t.last_op_failed) == ("answer", 1, 1, True)
    obs = t.turns[0].observation
    assert obs is not None and obs.kind == "error" and obs.tool == "" and obs.error is not None
    assert t.turns[0].tool_call is None


def test_error_then_successful_call_clears_last_op_failed() -> None:
    ep = image_episode()
    ep.step(crop([0.5, 0.5, 0.5, 0.5], target=3))
    ep.step(crop([0.4, 0.4, 0.6, 0.6]))
    ep.step(ANSWER)
    t = ep.trajectory()
    assert (t.n_ops, t.n_errors, t.last_op_failed) == (2, 1, False)
    assert t.turns[0].observation is not None and t.turns[0].observation.tool == "crop_image_normalized"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            call("select_frames", target_frames=[1, 2]),
            "Execution Error: You attempted to `select_frames` from **image** not **video**. "
            "You should use `crop_image_normalized` instead for inspecting **image**.",
        ),
        (
            call("zoom_in", bbox_2d=[0, 0, 1, 1]),
            "Execution Error: Unknown tool `zoom_in`. "
            "Available tools: `crop_image_normalized`, `select_frames`.",
        ),
        (
            crop([0.5, 0.5, 0.5, 0.5], target=2),
            "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
            "You can only pick an image within [1,1]",
        ),
        (crop([0.5, 0.5, 0.52, 0.52]), "Cropped image is too small: 141x105"),  # of the 644x476 copy
        (
            call("crop_image_normalized", target_image=1),
            "Execution Error: `crop_image_normalized` requires the argument `bbox_2d`.",
        ),
    ],
)
def test_execution_error_turns_use_exact_texts(reply: Reply, error: str) -> None:
    ep = image_episode(limits=Limits(min_crop_side=200))
    ep.step(reply)
    assert last_user_text(ep) == ERR + error + "\n"
    obs = ep.turns[0].observation
    assert obs is not None and obs.kind == "error" and obs.error == error and ep.n_errors == 1


def test_tool_bugs_become_execution_errors() -> None:
    def boom(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise ZeroDivisionError("division by zero")

    def wrong(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return "not a result"  # type: ignore[return-value]

    tools = [
        ToolSpec("boom", {"name": "boom"}, ("image",), boom),
        ToolSpec("wrong", {"name": "wrong"}, ("image",), wrong),
    ]
    ep = Episode(sample(), [gradient(64, 48)], mode="vcot", question="Q", tools=tools)
    ep.step(call("boom"))
    assert last_user_text(ep) == ERR + "Execution Error: `boom` failed: ZeroDivisionError: division by zero\n"
    ep.step(call("wrong"))
    assert last_user_text(ep).startswith(ERR + "Execution Error: `wrong` failed: TypeError")
    assert (ep.n_ops, ep.n_errors, ep.done) == (2, 2, False)


def test_video_flow_numbering_and_crop_of_selected_frame() -> None:
    ep = video_episode()
    parts = ep.messages[1]["content"]
    assert [p["type"] for p in parts] == ["video", "text"]
    # frames bounded to 512*28*28 (308x252, the "Frame Size"), shown at the engine's >= 512*28*28
    assert len(parts[0]["video"]) == 16 and parts[0]["video"][0].size == (728, 588)
    assert ep.shown_sizes == [(728, 588)] * 16
    ep.step(call("select_frames", target_frames=[1, 5, 9]))
    msg = ep.messages[-1]["content"]
    assert msg[0]["text"] == "\nHere are the selected frames (Frame Size: 308x252, Numbered 1 to 3):"
    assert [p["type"] for p in msg] == ["text", "image", "image", "image"]
    assert msg[2]["image"].getpixel((0, 0))[0] == 40  # frame 5
    assert [p["image"].size for p in msg[1:]] == [(728, 588)] * 3
    obs0 = ep.turns[0].observation
    assert obs0 is not None and obs0.images == (2, 3, 4) and obs0.frames == (1, 5, 9)
    assert obs0.size == (308, 252) and obs0.shown_sizes == ((728, 588),) * 3
    ep.step(crop([0.2, 0.2, 0.6, 0.6], target=3))  # slot 3 = second selected frame = frame 5
    obs1 = ep.turns[1].observation
    assert obs1 is not None and obs1.kind == "crop" and obs1.frames == (5,) and obs1.images == (5,)
    ep.step(call("select_frames", target_frames=[2]))
    assert last_user_text(ep) == "\nHere are the selected frames (Frame Size: 308x252, Numbered 5 to 5):"
    ep.step(crop([0.2, 0.2, 0.6, 0.6], target=1))  # the video slot cannot be cropped any more
    assert last_user_text(ep).startswith(ERR + "Execution Error: Incorrect `target_image`")
    assert "within range [2,6]" in last_user_text(ep)
    ep.step(ANSWER)
    t = ep.trajectory()
    assert (t.end_reason, t.n_ops, t.n_errors, t.last_op_failed) == ("answer", 4, 1, True)


def test_video_crop_before_any_selection_picks_a_frame() -> None:
    ep = video_episode()
    ep.step(crop([0.2, 0.2, 0.6, 0.6], target=16))
    obs = ep.turns[0].observation
    assert obs is not None and obs.kind == "crop" and obs.frames == (16,) and obs.images == (2,)
    assert obs.box == (31, 25, 216, 176)


def test_crop_of_a_crop_maps_back_to_the_original() -> None:
    ep = image_episode(gradient(2000, 1500))
    assert ep.images[0].size == (1988, 1512)
    ep.step(crop([0.5, 0.5, 0.7, 0.7]))  # padded: 0.4..0.8 of the original
    ep.step(crop([0.45, 0.45, 0.55, 0.55], target=2))  # padded: 0.35..0.65 of crop 1
    first, second = ep.turns[0].observation, ep.turns[1].observation
    assert first is not None and second is not None
    assert first.box == (795, 605, 1590, 1210)
    assert first.box_in_original == pytest.approx((0.4, 0.4, 0.8, 0.8), abs=1e-3)
    assert second.source_image == 2 and second.images == (3,)
    assert second.box_in_original == pytest.approx((0.54, 0.54, 0.66, 0.66), abs=2e-3)
    # a crop of the second input image has no box in the first one
    ep2 = image_episode(gradient(640, 480), gradient(800, 600))
    ep2.step(crop([0.1, 0.1, 0.5, 0.5], target=2))
    ep2.step(crop([0.1, 0.1, 0.5, 0.5], target=3))
    assert [tt.observation.box_in_original for tt in ep2.turns if tt.observation] == [None, None]


def test_crop_dir_saves_pngs(tmp_path: Path) -> None:
    ep = image_episode(sample_kw={"sid": "a/b: c?"}, crop_dir=tmp_path / "crops")
    ep.step(crop([0.4, 0.4, 0.6, 0.6]))
    ep.step(
        call("crop_image_normalized", bbox_2d=[0.5, 0.5, 0.5, 0.5], target_image=9)
    )  # error: nothing saved
    ep.step(crop([0.1, 0.1, 0.5, 0.5], target=2))
    obs = [tt.observation for tt in ep.turns]
    assert obs[0] is not None and obs[1] is not None and obs[2] is not None
    assert obs[1].saved == ()
    assert len(obs[0].saved) == 1 and obs[0].saved[0].endswith("__t00_0.png")
    assert obs[2].saved[0].endswith("__t02_0.png")
    for name, o in ((obs[0].saved[0], obs[0]), (obs[2].saved[0], obs[2])):
        assert "/" not in name and ":" not in name and "?" not in name
        with Image.open(tmp_path / "crops" / name) as png:
            assert png.format == "PNG" and png.size == o.size
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == sorted(
        [obs[0].saved[0], obs[2].saved[0]]
    )


def test_safe_name_distinguishes_ids_that_sanitize_alike() -> None:
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("../../etc").startswith("etc-")


def test_trajectory_json_round_trip() -> None:
    ep = video_episode()
    ep.step(call("select_frames", target_frames=[2, 4]))
    ep.step(crop([0.1, 0.1, 0.9, 0.9], target=2))
    ep.step(Reply(text="<tool_call>nope</tool_call>"))
    ep.step(ANSWER)
    t = ep.trajectory()
    back = Trajectory.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back == t
    assert back.turns[1].observation is not None and isinstance(back.turns[1].observation.box, tuple)


def test_max_images_ends_without_showing_the_result() -> None:
    ep = image_episode(limits=Limits(max_images=2))
    ep.step(crop([0.4, 0.4, 0.6, 0.6]))
    assert not ep.done
    ep.step(crop([0.4, 0.4, 0.6, 0.6]))
    t = ep.trajectory()
    assert (t.end_reason, t.final_reply, t.n_ops) == ("max_images", None, 2)
    obs = t.turns[1].observation
    assert obs is not None and obs.kind == "crop" and obs.images == ()
    assert ep.messages[-1]["role"] == "assistant" and len(ep.images) == 2


def test_max_images_counts_the_video_as_one_slot() -> None:
    ep = video_episode(limits=Limits(max_images=8))
    ep.step(call("select_frames", target_frames=[1, 2, 3, 4, 5, 6, 7]))  # 1 + 7 = 8 slots: fine
    assert not ep.done
    ep.step(call("select_frames", target_frames=[8]))
    assert ep.done and ep.end_reason == "max_images"


@pytest.mark.parametrize(
    ("reply", "end"),
    [
        (
            Reply(
                text=call("select_frames", target_frames=[1]).text, prompt_tokens=12000, completion_tokens=89
            ),
            "context",
        ),
        (
            Reply(
                text=call("select_frames", target_frames=[1]).text, prompt_tokens=12000, completion_tokens=88
            ),
            None,
        ),
        (
            Reply(
                text=call("select_frames", target_frames=[1]).text,
                prompt_tokens=None,
                completion_tokens=99999,
            ),
            None,
        ),
        (Reply(text="\\boxed{B}", prompt_tokens=12000, completion_tokens=500), "answer"),
    ],
)
def test_context_budget(reply: Reply, end: str | None) -> None:
    ep = video_episode()
    ep.step(reply)
    assert ep.end_reason == end
    assert ep.done is (end is not None)


def test_backend_error_ends_episode() -> None:
    ep = image_episode()
    ep.step(crop([0.5, 0.5, 0.5, 0.5], target=7))
    ep.step(Reply(text="CUDA out of memory", finish_reason="error"))
    t = ep.trajectory()
    assert (t.end_reason, t.error, t.final_reply, t.last_op_failed) == (
        "error",
        "CUDA out of memory",
        None,
        True,
    )


def test_misuse_raises() -> None:
    ep = image_episode()
    with pytest.raises(RuntimeError, match="not finished"):
        ep.trajectory()
    ep.step(ANSWER)
    with pytest.raises(RuntimeError, match="step\\(\\) called again"):
        ep.step(ANSWER)
    with pytest.raises(ValueError, match="unknown prompt mode"):
        Episode(sample(), [], mode="cot", question="Q", tools=())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate tool names"):
        Episode(sample(), [], mode="vcot", question="Q", tools=(CROP_TOOL, CROP_TOOL))
