"""The pixels each backend sends the model: what the released vLLM engine showed.

The released evaluation's engine resized every image (input, crop, selected frame, video frame)
into [512, 5120] * 28*28 (MIN_PIXELS / MAX_PIXELS). Here the episode does that resize; these tests
check that each backend hands those sizes to the model unchanged: the hf processor's grids, the
images of vLLM's ``multi_modal_data`` (and that vLLM's processor bounds, default or the released
ones, leave them as they are), and the data URLs of the OpenAI backend. Expected sizes come from
the independent transcription in ``tests/pixel_reasoner_reference.py``.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pixel_reasoner_reference as ref
import pytest
from backend_support import needs_hf
from PIL import Image

from harness.backends.chat import to_openai_messages
from harness.backends.vllm_engine import VLLMOptions, build_prompt
from harness.loop.episode import Episode
from harness.loop.policy import Reply, Request, Sampling
from harness.records import Sample
from harness.tools import BUILTIN_TOOLS


def gradient(w: int, h: int) -> Image.Image:
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, w)[None, :].round().astype(np.uint8)
    arr[..., 1] = np.linspace(0, 255, h)[:, None].round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def call(name: str, **arguments: Any) -> Reply:
    return Reply(f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>")


def vstar_episode() -> Episode:
    sample = Sample(task="vstar", id="8mp", question="Q?", answer="A", media=("x",))
    ep = Episode(sample, [gradient(3840, 2160)], mode="vcot", question="Q?", tools=BUILTIN_TOOLS)
    ep.step(call("crop_image_normalized", bbox_2d=[0.45, 0.45, 0.5, 0.5], target_image=1))
    return ep


def video_episode() -> Episode:
    sample = Sample(task="mvbench", id="v", question="Q?", answer="A", media=("x",), media_kind="video")
    ep = Episode(
        sample, [gradient(640, 360) for _ in range(16)], mode="vcot", question="Q?", tools=BUILTIN_TOOLS
    )
    ep.step(call("select_frames", target_frames=[3, 4]))
    return ep


def released_sizes() -> list[tuple[int, int]]:
    """(w, h) the released engine showed: the 3840x2160 input and its [0.45, 0.45, 0.5, 0.5] crop."""
    source = ref.input_source((3840, 2160))
    crop = ref.crop_text_size(ref.released_crop(source, [0.45, 0.45, 0.5, 0.5]))
    return [ref.engine_shown(source), ref.engine_shown(crop)]


def test_released_sizes() -> None:
    assert released_sizes() == [(2660, 1484), (868, 504)]


def test_openai_sends_the_released_sizes() -> None:
    ep = vstar_episode()
    sent = []
    for message in to_openai_messages(ep.messages):
        for part in message["content"] if isinstance(message["content"], list) else ():
            if part["type"] == "image_url":
                data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as im:
                    sent.append(im.size)
    assert sent == released_sizes()


@pytest.mark.parametrize("bounds", [VLLMOptions(), VLLMOptions(min_pixels=401408, max_pixels=4014080)])
def test_vllm_sends_the_released_sizes(bounds: VLLMOptions) -> None:
    ep = vstar_episode()
    images = build_prompt("prompt", ep.messages, bounds)["multi_modal_data"]["image"]
    assert [im.size for im in images] == released_sizes()
    # vLLM's processor resizes again with its mm_processor_kwargs bounds: a no-op on these sizes
    lo, hi = bounds.min_pixels or 0, bounds.max_pixels or 10**12
    for w, h in released_sizes():
        assert ref.engine_smart_resize(h, w, lo, hi) == (h, w)


def test_vllm_video_frames_at_the_released_size() -> None:
    ep = video_episode()
    data = build_prompt("prompt", ep.messages, VLLMOptions())["multi_modal_data"]
    shown = ref.engine_shown(ref.frame_size((640, 360)))
    assert data["video"][0].shape == (16, shown[1], shown[0], 3)
    assert [im.size for im in data["image"]] == [shown, shown]


@needs_hf
def test_hf_processor_sees_the_released_sizes(hf_policy: Any) -> None:
    for ep in (vstar_episode(), video_episode()):
        sample = ep.sample
        inputs = hf_policy._encode([Request(list(ep.messages), Sampling(), sample, turn=1, seed=0)])
        if sample.media_kind == "image":
            grids = [tuple(int(v) for v in g) for g in inputs["image_grid_thw"]]
            assert grids == [(1, h // 14, w // 14) for w, h in released_sizes()]
        else:
            w, h = ref.engine_shown(ref.frame_size((640, 360)))
            assert [tuple(int(v) for v in g) for g in inputs["video_grid_thw"]] == [(8, h // 14, w // 14)]
            assert [tuple(int(v) for v in g) for g in inputs["image_grid_thw"]] == [(1, h // 14, w // 14)] * 2
