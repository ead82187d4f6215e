"""harness.tools: smart resize, the crop and frame-selection rules, and every error text."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness.loop.limits import Limits
from harness.tools import (
    BUILTIN_TOOLS,
    CROP_TOOL,
    SELECT_FRAMES_TOOL,
    SeenImage,
    ToolContext,
    ToolError,
    ToolSpec,
    compose_box,
    crop_image_normalized,
    harness_register_tools,
    resize_to_budget,
    select_frames,
    smart_resize,
)

MIN = 512 * 28 * 28
MAX = 5120 * 28 * 28


def gradient(w: int, h: int) -> Image.Image:
    """Red grows with x, green with y: the colour tells where a pixel came from."""
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.float64)[None, :].round().astype(np.uint8)
    arr[..., 1] = np.linspace(0, 255, h, dtype=np.float64)[:, None].round().astype(np.uint8)
    arr[..., 2] = 128
    return Image.fromarray(arr, "RGB")


def solid(w: int, h: int, value: int) -> Image.Image:
    return Image.new("RGB", (w, h), (value, value, value))


# -- smart_resize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("h", "w", "min_pixels", "max_pixels", "expected"),
    [
        (480, 640, MIN, MAX, (560, 756)),  # below min: scale up with ceil
        (1500, 2000, MIN, MAX, (1512, 1988)),  # in range: round to multiples of 28
        (3000, 4000, MIN, MAX, (1708, 2296)),  # above max: scale down with floor
        (28, 28, 4 * 784, 16384 * 784, (56, 56)),
        (560, 756, MIN, MAX, (560, 756)),  # conforming sizes are left alone
        (70, 280, 1, 10**9, (56, 280)),  # 70/28 = 2.5 rounds half to even, like Python/Qwen
        (10, 2000, 1, 10**9, (28, 1988)),  # aspect ratio exactly 200 is allowed; sides >= factor
    ],
)
def test_smart_resize_hand_computed(
    h: int, w: int, min_pixels: int, max_pixels: int, expected: tuple[int, int]
) -> None:
    assert smart_resize(h, w, 28, min_pixels, max_pixels) == expected


@pytest.mark.parametrize(("h", "w"), [(28 * 20, 28 * 27), (28 * 54, 28 * 71), (28 * 40, 28 * 40)])
def test_smart_resize_idempotent_on_conforming_sizes(h: int, w: int) -> None:
    assert smart_resize(h, w, 28, MIN, MAX) == (h, w)
    assert smart_resize(*smart_resize(h, w, 28, MIN, MAX), 28, MIN, MAX) == (h, w)


@pytest.mark.parametrize(
    ("h", "w", "match"), [(10, 2001, "aspect ratio"), (0, 10, "positive"), (5, -1, "positive")]
)
def test_smart_resize_rejects(h: int, w: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        smart_resize(h, w, 28, MIN, MAX)


@pytest.mark.parametrize(("mode", "size"), [("RGBA", (640, 480)), ("L", (2000, 1500)), ("P", (100, 100))])
def test_resize_to_budget_is_rgb_and_in_budget(mode: str, size: tuple[int, int]) -> None:
    out = resize_to_budget(Image.new(mode, size), MIN, MAX)
    assert out.mode == "RGB"
    w, h = out.size
    assert w % 28 == 0 and h % 28 == 0
    assert MIN <= w * h <= MAX
    assert (h, w) == smart_resize(size[1], size[0], 28, MIN, MAX)


def test_resize_to_budget_rgba_transparent_becomes_white() -> None:
    out = resize_to_budget(Image.new("RGBA", (560, 756), (0, 0, 0, 0)), MIN, MAX)
    assert out.getpixel((10, 10)) == (255, 255, 255)


# -- crop_image_normalized ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bbox", "box_px"),
    [
        ([0.4, 0.4, 0.6, 0.6], (192, 144, 448, 336)),  # fractions, padded 0.1 each side
        ([0, 0, 0.5, 0.5], (0, 0, 384, 288)),  # padding clamped at 0
        ([0.95, 0.95, 0.99, 0.99], (544, 408, 640, 480)),  # clamped at 1
        ([0, 0, 1, 1], (0, 0, 65, 49)),  # not all < 1: PIXELS, so a 1-pixel box plus padding
        ([100, 50, 300, 200], (36, 2, 364, 248)),  # pixels of this image
        ([0.2, 0.2, 320, 10], (0, 0, 384, 58)),  # one value >= 1: all four read as pixels
        ((0.4, 0.4, 0.6, 0.6), (192, 144, 448, 336)),  # a tuple is fine too
        ([-5.0, -1.0, 0.3, 0.3], (0, 0, 256, 192)),  # negatives clamp to 0
    ],
)
def test_crop_fraction_vs_pixel_rule(bbox: list[float], box_px: tuple[int, int, int, int]) -> None:
    img = gradient(640, 480)
    w, h = box_px[2] - box_px[0], box_px[3] - box_px[1]
    crop, px, norm = crop_image_normalized(img, bbox)
    assert px == box_px
    assert crop.size == (w, h)
    assert norm == pytest.approx((px[0] / 640, px[1] / 480, px[2] / 640, px[3] / 480))
    # The crop really is that region: its top-left pixel is the source pixel at (x1, y1).
    assert crop.getpixel((0, 0)) == img.getpixel((px[0], px[1]))


@pytest.mark.parametrize(
    ("size", "bbox", "padding", "message"),
    [
        ((100, 100), [0.5, 0.5, 0.5, 0.5], 0.1, "Cropped image is too small: 20x20"),
        ((140, 140), [0.5, 0.5, 0.5, 0.5], 0.1, "Cropped image is too small: 28x28"),  # must be > 28
        ((640, 480), [0.1, 0.1, 0.14, 0.2], 0.0, "Cropped image is too small: 26x48"),
        ((640, 480), [0.5, 0.5, 0.5, 0.5], 0.0, "Cropped image is too small: 0x0"),
    ],
)
def test_crop_too_small(size: tuple[int, int], bbox: list[float], padding: float, message: str) -> None:
    with pytest.raises(ToolError) as err:
        crop_image_normalized(solid(*size, 7), bbox, padding=padding)
    assert str(err.value) == message


def test_crop_just_above_28_passes() -> None:
    crop, px, _ = crop_image_normalized(solid(145, 145, 7), [0.5, 0.5, 0.5, 0.5])
    assert crop.size == (29, 29) and px == (58, 58, 87, 87)


@pytest.mark.parametrize(
    "bbox",
    [
        None,
        "0.1, 0.2, 0.3, 0.4",
        [0.1, 0.2, 0.3],
        [0.1, 0.2, 0.3, "label"],
        [True, 0.2, 0.3, 0.4],
        ["0.1", 0.2, 0.3, 0.4],
        [math.nan, 0.2, 0.3, 0.4],
        [0.1, math.inf, 0.3, 0.4],
        [[0.1], 0.2, 0.3, 0.4],
        {"x1": 0.1},
        [None, None, None, None],
        [10**400, 0, 1, 1],
        [0.8, 0.8, 0.2, 0.2],  # inverted beyond what the padding covers
    ],
)
def test_crop_invalid_bbox_is_tool_error(bbox: Any) -> None:
    with pytest.raises(ToolError, match="^Execution Error: `bbox_2d`"):
        crop_image_normalized(gradient(640, 480), bbox)


@pytest.mark.parametrize("extra", [0.5, "car", None, [1, 2]])
def test_crop_longer_bbox_uses_first_four(extra: Any) -> None:
    # released crop_image_normalized indexes bbox_2d[0..3], so a fifth element is ignored
    img = gradient(640, 480)
    assert (
        crop_image_normalized(img, [0.1, 0.2, 0.3, 0.4, extra])[1]
        == crop_image_normalized(img, [0.1, 0.2, 0.3, 0.4])[1]
    )


# -- select_frames ------------------------------------------------------------------------------

FRAMES = [solid(32, 32, v) for v in range(0, 160, 10)]  # 16 frames, frame k has value 10*(k-1)


@pytest.mark.parametrize(("target", "values"), [([1], [0]), ([16, 1, 8], [150, 0, 70]), ([3, 3], [20, 20])])
def test_select_frames_one_based(target: list[int], values: list[int]) -> None:
    out = select_frames(FRAMES, target)
    assert [f.getpixel((0, 0)) for f in out] == [(v, v, v) for v in values]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            [17],
            "Execution Error: There are 16 frames numbered in range [1,16]. "
            "Your selection `target_frames=[17]` is out of range.",
        ),
        (
            [0, 2],
            "Execution Error: There are 16 frames numbered in range [1,16]. "
            "Your selection `target_frames=[0, 2]` is out of range.",
        ),
        (
            list(range(1, 10)),
            "Execution Error: You have selected 9 frames in total. Think again which frames you need "
            "to check in details (no more than 8 frames)",
        ),
        ([], "Execution Error: `target_frames` is empty; select at least one frame."),
        ([1.0], "Execution Error: `target_frames` must be a list of integer frame indices, got [1.0]."),
        ("1,2", "Execution Error: `target_frames` must be a list of integer frame indices, got '1,2'."),
        ([True], "Execution Error: `target_frames` must be a list of integer frame indices, got [True]."),
        (3, "Execution Error: `target_frames` must be a list of integer frame indices, got 3."),
    ],
)
def test_select_frames_errors(target: Any, message: str) -> None:
    with pytest.raises(ToolError) as err:
        select_frames(FRAMES, target)
    assert str(err.value) == message


# -- tools through ToolContext ------------------------------------------------------------------


def image_ctx(*images: Image.Image) -> ToolContext:
    seen = tuple(
        SeenImage(im, "input", (0.0, 0.0, 1.0, 1.0) if k == 0 else None) for k, im in enumerate(images)
    )
    return ToolContext(images=seen, media_kind="image", limits=Limits())


def video_ctx(added: int = 0) -> ToolContext:
    seen = tuple(SeenImage(solid(200, 200, 250), "frames", frame=1) for _ in range(added))
    return ToolContext(images=seen, frames=tuple(FRAMES), media_kind="video", limits=Limits())


@pytest.mark.parametrize(
    ("ctx", "args", "message"),
    [
        (
            image_ctx(gradient(640, 480)),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 2},
            "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
            "You can only pick an image within [1,1]",
        ),
        (
            image_ctx(gradient(640, 480), gradient(640, 480)),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 0},
            "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
            "You can only pick an image within [1,2]",
        ),
        (
            video_ctx(),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 17},
            "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
            "You can only pick an image **from** the video within [1,16], but the current argument "
            "`target_image=17`.",
        ),
        (
            video_ctx(added=3),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 1},
            "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
            "You can only pick an image within range [2,4], but the current argument `target_image=1`.",
        ),
        (
            video_ctx(added=3),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 5},
            "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. "
            "You can only pick an image within range [2,4], but the current argument `target_image=5`.",
        ),
        (
            image_ctx(gradient(640, 480)),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5]},
            "Execution Error: `crop_image_normalized` requires the argument `target_image`.",
        ),
        (
            image_ctx(gradient(640, 480)),
            {"target_image": 1},
            "Execution Error: `crop_image_normalized` requires the argument `bbox_2d`.",
        ),
        (
            image_ctx(gradient(640, 480)),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": "1"},
            "Execution Error: `target_image` must be an integer image index, got '1'.",
        ),
        (
            image_ctx(gradient(640, 480)),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 1.5},
            "Execution Error: `target_image` must be an integer image index, got 1.5.",
        ),
        (
            image_ctx(gradient(640, 480)),
            {"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": True},
            "Execution Error: `target_image` must be an integer image index, got True.",
        ),
    ],
)
def test_crop_tool_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError) as err:
        CROP_TOOL.run(args, ctx)
    assert str(err.value) == message


def test_crop_tool_result_and_observation() -> None:
    img = resize_to_budget(gradient(640, 480), MIN, MAX)  # 756x560, as the model sees it
    res = CROP_TOOL.run({"bbox_2d": [0.4, 0.4, 0.6, 0.6], "target_image": 1.0}, image_ctx(img))
    assert res.text == "\nHere is the cropped image (Image Size: 532x392):"
    assert [im.size for im in res.images] == [(532, 392)]
    obs = res.observation
    assert (obs.kind, obs.tool, obs.source_image, obs.size) == (
        "crop",
        "crop_image_normalized",
        1,
        (532, 392),
    )
    assert obs.box == (227, 168, 529, 392)
    assert obs.box_norm == pytest.approx((227 / 756, 0.3, 529 / 756, 0.7))
    assert obs.box_in_original == pytest.approx(obs.box_norm)
    assert obs.images == () and obs.saved == () and obs.text == res.text


def test_crop_tool_on_video_frame_records_the_frame() -> None:
    frames = tuple(gradient(308, 252) for _ in range(16))
    ctx = ToolContext(images=(), frames=frames, media_kind="video")
    res = CROP_TOOL.run({"bbox_2d": [0.2, 0.2, 0.6, 0.6], "target_image": 3}, ctx)
    assert res.observation.frames == (3,)
    assert res.observation.box_in_original is None
    assert res.observation.box == (31, 25, 216, 176)


def test_crop_of_second_image_has_no_box_in_original() -> None:
    ctx = image_ctx(gradient(640, 480), gradient(800, 600))
    res = CROP_TOOL.run({"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 2}, ctx)
    assert res.observation.box_in_original is None
    assert res.observation.box == (0, 0, 480, 360)


@pytest.mark.parametrize(
    ("added", "target", "text"),
    [
        (0, [2, 5], "\nHere are the selected frames (Frame Size: 32x32, Numbered 1 to 2):"),
        (2, [1, 2, 3], "\nHere are the selected frames (Frame Size: 32x32, Numbered 3 to 5):"),
        (8, [16], "\nHere are the selected frames (Frame Size: 32x32, Numbered 9 to 9):"),
    ],
)
def test_select_frames_numbering_is_released_convention(added: int, target: list[int], text: str) -> None:
    res = SELECT_FRAMES_TOOL.run({"target_frames": target}, video_ctx(added))
    assert res.text == text
    assert res.observation.frames == tuple(target)
    assert len(res.images) == len(target)


def test_select_frames_on_image_uses_released_text() -> None:
    expected = (
        "Execution Error: You attempted to `select_frames` from **image** not **video**. "
        "You should use `crop_image_normalized` instead for inspecting **image**."
    )
    with pytest.raises(ToolError) as err:
        SELECT_FRAMES_TOOL.run({"target_frames": [1]}, image_ctx(gradient(640, 480)))
    assert str(err.value) == expected
    assert SELECT_FRAMES_TOOL.wrong_media("image") == expected


def test_generic_wrong_media_text() -> None:
    spec = ToolSpec("zoom", {"name": "zoom"}, ("image",), CROP_TOOL.run)
    assert (
        spec.wrong_media("video")
        == "Execution Error: `zoom` cannot be used on **video** (it applies to image)."
    )


def test_select_frames_missing_argument() -> None:
    with pytest.raises(ToolError, match="requires the argument `target_frames`"):
        SELECT_FRAMES_TOOL.run({"frames": [1]}, video_ctx())


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ((0.0, 0.0, 1.0, 1.0), (0.1, 0.2, 0.3, 0.4), (0.1, 0.2, 0.3, 0.4)),
        ((0.4, 0.4, 0.8, 0.8), (0.5, 0.5, 1.0, 1.0), (0.6, 0.6, 0.8, 0.8)),
        ((0.2, 0.0, 0.6, 0.5), (0.0, 0.0, 0.5, 0.5), (0.2, 0.0, 0.4, 0.25)),
    ],
)
def test_compose_box(outer: tuple[float, ...], inner: tuple[float, ...], expected: tuple[float, ...]) -> None:
    assert compose_box(outer, inner) == pytest.approx(expected)  # type: ignore[arg-type]


def test_builtin_specs_and_hook() -> None:
    assert [t.name for t in BUILTIN_TOOLS] == ["crop_image_normalized", "select_frames"]
    assert harness_register_tools() == [CROP_TOOL, SELECT_FRAMES_TOOL]
    assert CROP_TOOL.media == ("image", "video") and SELECT_FRAMES_TOOL.media == ("video",)
    for spec in BUILTIN_TOOLS:
        assert spec.schema["name"] == spec.name
        assert list(spec.schema) == ["name", "description", "parameters"]
