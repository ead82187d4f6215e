"""Message conversions shared by the backends (pure: PIL only)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from PIL import Image

from harness.backends.chat import (
    BadRequest,
    DataUrlCache,
    collect_media,
    finish_text,
    from_openai_messages,
    to_openai_messages,
)

STOPS = ("<|im_end|>", "<|endoftext|>")


@pytest.mark.parametrize(
    ("text", "expected", "found"),
    [
        ("plain answer", "plain answer", False),
        ("answer<|im_end|>", "answer", True),
        ("answer<|endoftext|>junk", "answer", True),
        ("a <tool_call>\n{}\n</tool_call>", "a <tool_call>\n{}\n</tool_call>", True),
        ("a <tool_call>{}</tool_call><|im_end|>more", "a <tool_call>{}</tool_call>", True),
        ("x<|im_end|><tool_call>{}</tool_call>", "x", True),
        ("", "", False),
    ],
)
def test_finish_text_keeping_tool_end(text: str, expected: str, found: bool) -> None:
    # stop_at_tool_call=true: </tool_call> ends the reply and stays in it
    assert finish_text(text, STOPS, keep=("</tool_call>",)) == (expected, found)


@pytest.mark.parametrize(
    ("text", "expected", "found"),
    [
        ("a <tool_call>{}</tool_call>", "a <tool_call>{}</tool_call>", False),
        (
            "<tool_call>{}</tool_call>\nSo the answer is \\boxed{A}<|im_end|>x",
            "<tool_call>{}</tool_call>\nSo the answer is \\boxed{A}",
            True,
        ),
        ("answer<|endoftext|>junk", "answer", True),
    ],
)
def test_finish_text_default_is_released(text: str, expected: str, found: bool) -> None:
    # as released: only end-of-turn strings stop; text after </tool_call> stays
    assert finish_text(text, STOPS) == (expected, found)


def test_finish_text_without_keep_removes_tool_end() -> None:
    assert finish_text("a</tool_call>b", ("</tool_call>",), keep=()) == ("a", True)


def image(w: int, h: int, colour: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", (w, h), colour)
    im.putpixel((1, 1), (1, 2, 3))
    return im


def conversation() -> list[dict[str, Any]]:
    a, b = image(56, 28, (200, 10, 10)), image(28, 56, (10, 200, 10))
    frames = [image(28, 28, (k, k, k)) for k in (0, 50, 100)]
    return [
        {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
        {"role": "user", "content": [{"type": "image", "image": a}, {"type": "text", "text": "Q"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<tool_call>{}</tool_call>"}]},
        {"role": "user", "content": [{"type": "text", "text": "R"}, {"type": "image", "image": b}]},
        {"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": "V"}]},
    ]


def test_collect_media_in_prompt_order() -> None:
    conv = conversation()
    images, videos = collect_media(conv)
    assert [im.size for im in images] == [(56, 28), (28, 56)]
    assert len(videos) == 1 and len(videos[0]) == 3


def test_openai_round_trip_keeps_every_pixel() -> None:
    conv = conversation()
    wire = to_openai_messages(conv)
    assert wire[0] == {"role": "system", "content": "SYS"}
    assert wire[2] == {"role": "assistant", "content": "<tool_call>{}</tool_call>"}
    assert wire[1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert wire[4]["content"][0]["type"] == "video_url"
    assert wire[4]["content"][0]["video_url"]["url"].startswith("data:video/jpeg;base64,")
    back = from_openai_messages(wire)
    assert [m["role"] for m in back] == [m["role"] for m in conv]
    got_images, got_videos = collect_media(back)
    want_images, want_videos = collect_media(conv)
    for got, want in zip(got_images + got_videos[0], want_images + want_videos[0], strict=True):
        assert got.size == want.size and got.tobytes() == want.tobytes()


def test_video_as_images() -> None:
    wire = to_openai_messages(conversation(), video="images")
    assert [p["type"] for p in wire[4]["content"]] == ["image_url"] * 3 + ["text"]


def test_cache_encodes_each_live_image_once() -> None:
    cache = DataUrlCache()
    im = image(28, 28, (1, 1, 1))
    first = cache.image_url(im)
    im.putpixel((0, 0), (255, 255, 255))  # same object: the cached encoding comes back
    assert cache.image_url(im) == first
    twin = image(28, 28, (1, 1, 1))
    twin.putpixel((0, 0), (255, 255, 255))
    assert cache.image_url(twin) != first  # another object: encoded anew, with its own pixels
    del twin
    del im
    gc.collect()
    assert len(cache._cache) == 0  # entries die with their images


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "non-empty list"),
        ([{"content": "x"}], "needs a 'role'"),
        ([{"role": "user", "content": 3}], "string or a list"),
        ([{"role": "user", "content": [{"type": "audio"}]}], "unsupported part type 'audio'"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
            "data URLs",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}],
                }
            ],
            "base64",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
                }
            ],
            "not a readable image",
        ),
        ([{"role": "user", "content": [{"type": "image_url"}]}], "missing image_url.url"),
    ],
)
def test_bad_messages_are_named(messages: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        from_openai_messages(messages)
