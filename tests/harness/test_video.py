"""Video frames: the official MVBench sampling on small mp4/webm/gif files and frame folders that
the tests encode here (frame ``k`` is painted with grey level ``8 * k``, so a decoded frame tells
which frame it is)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from mvbench_reference import official_get_index
from PIL import Image

from harness.data.video import VideoError, read_frames, segment_indices

BIG = 10**9
STEP = 8  # grey level per frame number


def encode(path: Path, n: int, fps: int, codec: str = "libx264", size: tuple[int, int] = (64, 48)) -> Path:
    """Write an ``n``-frame video (n <= 32) whose frame ``k`` is uniformly grey ``STEP * k``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "0"} if codec == "libx264" else {"b": "2000000"}
        for k in range(n):
            frame = np.full((size[1], size[0], 3), STEP * k, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_number(image: Image.Image) -> int:
    return round(np.asarray(image.convert("L"), dtype=float).mean() / STEP)


@pytest.mark.parametrize(
    ("n", "fps", "bound"),
    [(30, 10, None), (31, 10, (0.5, 2.0)), (25, 25, (0.0, 0.6)), (31, 30, (0.2, 0.9)), (17, 5, None)],
)
def test_mp4_frames_at_segment_middles(
    tmp_path: Path, n: int, fps: int, bound: tuple[float, float] | None
) -> None:
    path = encode(tmp_path / "v.mp4", n, fps)
    frames = read_frames(path, 16, bound, max_pixels=BIG)
    expected = official_get_index(bound, float(fps), n - 1, first_idx=0)
    assert frames.indices == expected and frames.total == n and frames.fps == pytest.approx(fps)
    assert [frame_number(im) for im in frames.images] == expected
    assert all(im.mode == "RGB" and im.size == (64, 48) for im in frames.images)


def test_webm_without_a_frame_count_is_counted(tmp_path: Path) -> None:
    path = encode(tmp_path / "v.webm", 20, 10, codec="libvpx-vp9")
    frames = read_frames(path, 16, None, max_pixels=BIG)
    assert frames.total == 20 and frames.indices == official_get_index(None, 10.0, 19, 0)
    assert [frame_number(im) for im in frames.images] == pytest.approx(frames.indices, abs=1)


def test_gif_uses_the_official_25_fps(tmp_path: Path) -> None:
    images = [Image.new("RGB", (32, 24), (STEP * k,) * 3) for k in range(32)]
    path = tmp_path / "v.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=100)
    frames = read_frames(path, 16, (0.2, 1.2), max_pixels=BIG)
    expected = official_get_index((0.2, 1.2), 25.0, 31, first_idx=0)
    assert frames.indices == expected and frames.fps == 25.0
    assert [frame_number(im) for im in frames.images] == expected


def test_frame_folder_is_one_based_at_3_fps(tmp_path: Path) -> None:
    for k in range(1, 33):
        Image.new("RGB", (16, 16), (STEP * k,) * 3).save(tmp_path / f"{k:05d}.jpg", quality=100)
    (tmp_path / ".DS_Store").write_bytes(b"")
    frames = read_frames(tmp_path, 16, None, max_pixels=BIG)
    assert frames.indices == official_get_index(None, 3.0, 32, first_idx=1) == segment_indices(32)
    assert [frame_number(im) for im in frames.images] == frames.indices


def test_a_bound_past_the_end_is_clamped(tmp_path: Path) -> None:
    path = encode(tmp_path / "v.mp4", 20, 10)
    frames = read_frames(path, 16, (1.5, 9.0), max_pixels=BIG)
    assert max(frames.indices) == 19 and len(frames.images) == 16


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda p: p.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video"), VideoError),
        (lambda p: None, FileNotFoundError),
    ],
)
def test_broken_or_missing_video(tmp_path: Path, setup: object, error: type[Exception]) -> None:
    path = tmp_path / "v.mp4"
    setup(path)  # type: ignore[operator]
    with pytest.raises(error):
        read_frames(path, 16, None, max_pixels=BIG)


def test_oversized_frames_are_refused_before_decoding(tmp_path: Path) -> None:
    path = encode(tmp_path / "v.mp4", 4, 10)
    with pytest.raises(VideoError, match="exceeds the limit"):
        read_frames(path, 16, None, max_pixels=64 * 48 - 1)
