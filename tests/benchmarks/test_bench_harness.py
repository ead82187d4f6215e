"""Harness overhead benchmarks (run: ``python -m pytest tests/benchmarks --benchmark-only``).

The scripted oracle costs nothing, so these time the harness alone: opening V*-sized images,
resizing them to the pixel budget, running the crop tool, rendering messages, scoring.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from harness.loop.limits import Limits
from harness.loop.policy import Policy
from harness.loop.rollout import RolloutConfig, rollout
from harness.plugins import Harness
from harness.records import Sample
from harness.tools import CROP_TOOL, SeenImage, ToolContext

N_SAMPLES = 16


def test_overhead_per_sample_vstar(
    benchmark: pytest.FixtureRequest,
    harness_instance: Harness,
    make_samples: Callable[..., list[Sample]],
    scripted_policy: Callable[[str], Policy],
) -> None:
    samples = make_samples("vstar", N_SAMPLES)
    spec = harness_instance.task("vstar")
    policy = scripted_policy("oracle")

    def run() -> int:
        items = [(spec, s) for s in samples]
        return sum(r.score.score for r in rollout(items, policy, harness_instance.tools, RolloutConfig()))

    total = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)  # type: ignore[attr-defined]
    assert total == N_SAMPLES
    benchmark.extra_info["samples_per_second"] = N_SAMPLES / benchmark.stats.stats.mean  # type: ignore[attr-defined]


def test_one_crop_on_4000x3000(benchmark: pytest.FixtureRequest) -> None:
    image = Image.radial_gradient("L").resize((4000, 3000)).convert("RGB")
    ctx = ToolContext(images=(SeenImage(image, "input", (0.0, 0.0, 1.0, 1.0)),), limits=Limits())
    args = {"bbox_2d": [0.41, 0.2, 0.55, 0.38], "target_image": 1}
    result = benchmark(CROP_TOOL.run, args, ctx)  # type: ignore[operator]
    assert result.images and result.observation.kind == "crop"
