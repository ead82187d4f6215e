"""Video frames for the video tasks: the official MVBench sampling on mp4/webm/avi/gif files and
frame folders, decoded with PyAV (FFmpeg) and Pillow.

The rule (``get_index`` of MVBench's evaluation code): without a bound, start/end are
-100000/100000 s; ``start = max(first_idx, round(start_s * fps))``, ``end = min(round(end_s *
fps), max_frame)``, ``seg = (end - start) / n``, frame ``k = int(start + seg / 2 + round(seg *
k))`` (``round`` is half-to-even, as ``np.round``). Per source, as the official readers do:

- video files: 0-based frame numbers, ``max_frame = number of frames - 1``, fps = the stream's
  average frame rate (decord's ``get_avg_fps``);
- gif files: 0-based, ``max_frame = frames - 1``, fps fixed at 25 (official ``read_gif``);
- frame folders: 1-based file numbers ``{k:05d}.jpg``, ``max_frame`` = number of (non-hidden)
  files, fps 3 (official ``read_frame``).

A bound that lies partly outside the video gives indices outside it; they are clamped to the
first / last frame when read (the official code would fail there). The frame count of a file
is the stream's ``frames`` field when the container has it, else the number of video packets.
If decoding yields fewer frames than that, indices past the end show the last decoded frame.
A frame file of a folder is opened only after it resolves inside the data root (or, without one,
the folder itself): a symlink out of it is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.confine import confined

if TYPE_CHECKING:
    from PIL.Image import Image

NUM_SEGMENTS = 16
GIF_FPS = 25.0
FOLDER_FPS = 3.0
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".gif"})


class VideoError(Exception):
    """A video or frame folder cannot be read (the message says why)."""


@dataclass(frozen=True)
class Frames:
    """Sampled frames: the images, the frame numbers they came from, the rate and the count."""

    images: list[Image]
    indices: list[int]
    fps: float
    total: int


def segment_indices(
    max_frame: int,
    num_segments: int = NUM_SEGMENTS,
    bound: tuple[float, float] | None = None,
    fps: float = FOLDER_FPS,
    first_idx: int = 1,
) -> list[int]:
    """The official MVBench frame numbers (see the module docstring); not clamped."""
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    start_s, end_s = bound if bound is not None else (-100000.0, 100000.0)
    start = max(first_idx, round(start_s * fps))
    end = min(round(end_s * fps), max_frame)
    seg = (end - start) / num_segments
    return [int(start + seg / 2 + round(seg * k)) for k in range(num_segments)]


def _clamp(indices: Sequence[int], lo: int, hi: int) -> list[int]:
    return [min(max(i, lo), hi) for i in indices]


def _check_size(width: int, height: int, max_pixels: int, where: str) -> None:
    if width * height > max_pixels:
        raise VideoError(
            f"{where}: frame of {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}"
        )


def read_frames(
    path: Path,
    num_segments: int = NUM_SEGMENTS,
    bound: tuple[float, float] | None = None,
    *,
    max_pixels: int,
    root: Path | None = None,
) -> Frames:
    """Sample ``num_segments`` frames of a video file, gif or frame folder (official rule).

    With ``root``, every frame file of a folder is resolved (symlinks followed) and one that
    leads out of ``root`` raises :class:`harness.data.confine.PathEscape` before it is opened.
    """
    if path.is_dir():
        return _read_folder(path, num_segments, bound, max_pixels, root or path)
    if not path.exists():
        raise FileNotFoundError(str(path))
    if path.suffix.lower() == ".gif":
        return _read_gif(path, num_segments, bound, max_pixels)
    return _read_av(path, num_segments, bound, max_pixels)


def _read_folder(
    path: Path, num_segments: int, bound: tuple[float, float] | None, max_pixels: int, root: Path
) -> Frames:
    from PIL import Image as PILImage

    total = sum(not name.startswith(".") for name in os.listdir(path))
    if total == 0:
        raise VideoError(f"{path}: empty frame folder")
    indices = _clamp(segment_indices(total, num_segments, bound, FOLDER_FPS, first_idx=1), 1, total)
    images = []
    for k in indices:
        frame = confined(root, path / f"{k:05d}.jpg")
        with PILImage.open(frame) as im:
            _check_size(im.width, im.height, max_pixels, str(frame))
            images.append(im.convert("RGB"))
    return Frames(images, indices, FOLDER_FPS, total)


def _read_gif(path: Path, num_segments: int, bound: tuple[float, float] | None, max_pixels: int) -> Frames:
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        _check_size(im.width, im.height, max_pixels, str(path))
        total = int(getattr(im, "n_frames", 1))
        indices = _clamp(segment_indices(total - 1, num_segments, bound, GIF_FPS, first_idx=0), 0, total - 1)
        images = []
        for k in indices:
            im.seek(k)
            images.append(im.convert("RGB"))
    return Frames(images, indices, GIF_FPS, total)


def _to_pil(frame: Any) -> Image:
    image: Image = frame.to_image()
    return image


def _read_av(path: Path, num_segments: int, bound: tuple[float, float] | None, max_pixels: int) -> Frames:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            _check_size(stream.codec_context.width, stream.codec_context.height, max_pixels, str(path))
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            total = int(stream.frames or 0)
            if total <= 0:
                total = sum(1 for packet in container.demux(stream) if packet.size)
        if fps <= 0 or total <= 0:
            raise VideoError(f"{path}: cannot tell the frame rate or frame count")
        indices = _clamp(segment_indices(total - 1, num_segments, bound, fps, first_idx=0), 0, total - 1)
        wanted, last = set(indices), max(indices)
        got: dict[int, Image] = {}
        tail: tuple[int, Any] | None = None
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for number, frame in enumerate(container.decode(stream)):
                tail = (number, frame)
                if number in wanted:
                    got[number] = _to_pil(frame)
                if number >= last:
                    break
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: cannot decode: {exc}") from exc
    if tail is None:
        raise VideoError(f"{path}: no frame could be decoded")
    if tail[0] not in got:  # the stream ended early: later indices show its last frame
        got[tail[0]] = _to_pil(tail[1])
    decoded = sorted(got)
    images = []
    for k in indices:
        earlier = [i for i in decoded if i <= k]
        image = got[earlier[-1] if earlier else decoded[0]]
        images.append(image if image.mode == "RGB" else image.convert("RGB"))
    return Frames(images, indices, fps, total)
