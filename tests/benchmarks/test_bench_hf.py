"""``harness eval`` with the tiny hf model on synthetic V* (run: ``python -m pytest
tests/benchmarks --benchmark-only``): samples per second, and the share of wall time spent
outside the model.

Two shares are reported in ``extra_info``: outside the backend's ``generate`` (the harness itself:
data, episodes, resizing, tools, scoring, writing nothing) and outside transformers'
``model.generate`` (the harness plus the backend's prompt rendering and the processor's image
preprocessing). The tiny model makes the model's share small, so these shares are an upper
bound of the harness's overhead next to a real model.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from typing import Any

import pytest

from harness.data import load_samples
from harness.loop.limits import Limits
from harness.plugins import Harness
from harness.run.evaluate import EvalConfig, evaluate

N_SAMPLES = 8
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="needs the hf extra: pip install -e '.[hf]'"
)


class Clock:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


@pytest.fixture(scope="module")
def tiny_policy() -> Any:
    from harness.backends.hf import HFOptions, HFPolicy
    from harness.backends.tiny import ensure_tiny_model

    return HFPolicy(str(ensure_tiny_model()), HFOptions(device="cpu"))


@pytest.mark.parametrize(
    ("max_new_tokens", "rounds"),
    [(64, 3), (2048, 2)],
    ids=["demo-64-tokens", "published-2048-tokens"],  # the embedded demo's limit; the published one
)
def test_eval_tiny_hf_on_synthetic_vstar(
    benchmark: Any, harness_instance: Harness, tiny_policy: Any, max_new_tokens: int, rounds: int
) -> None:
    limits = Limits(max_new_tokens=max_new_tokens)
    config = EvalConfig(tasks="vstar", model="hf:@tiny", limit=N_SAMPLES, limits=limits)
    shares: list[tuple[float, float]] = []

    def run() -> int:
        backend, model = Clock(tiny_policy.generate), Clock(tiny_policy.model.generate)
        tiny_policy.generate, tiny_policy.model.generate = backend, model
        try:
            start = time.perf_counter()
            result = evaluate(config, harness_instance, show_progress=False, policy=tiny_policy)
            wall = time.perf_counter() - start
        finally:
            del tiny_policy.generate, tiny_policy.model.generate  # back to the class methods
        shares.append((1 - backend.seconds / wall, 1 - model.seconds / wall))
        return result.results["vstar"].n

    n = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    assert n == N_SAMPLES
    outside_backend = statistics.median(s[0] for s in shares)
    outside_model = statistics.median(s[1] for s in shares)
    benchmark.extra_info["samples_per_second"] = round(N_SAMPLES / benchmark.stats.stats.median, 3)
    benchmark.extra_info["share_outside_backend_generate"] = round(outside_backend, 4)
    benchmark.extra_info["share_outside_model_generate"] = round(outside_model, 4)
    print(
        f"\nhf tiny, {N_SAMPLES} synthetic V* samples, max_new_tokens={max_new_tokens}: "
        f"{N_SAMPLES / benchmark.stats.stats.median:.2f} samples/s; "
        f"outside the backend's generate {outside_backend:.1%}, outside model.generate {outside_model:.1%}"
    )
    assert 0 <= outside_backend <= outside_model < 1


@pytest.mark.parametrize("batch_size", [1, 4], ids=["one-by-one", "padded-batch-of-4"])
def test_cpu_padded_batch_vs_one_by_one(
    benchmark: Any, harness_instance: Harness, tiny_policy: Any, batch_size: int
) -> None:
    """4 V* first turns (16 new tokens each) through the hf backend with the given batch size:
    why the CPU default is 1."""
    from harness.loop.policy import Request, Sampling
    from harness.loop.rollout import RolloutConfig, make_episode

    spec = harness_instance.task("vstar")
    samples = load_samples(spec, "synthetic", 4)
    requests = [
        Request(
            make_episode(spec, s, harness_instance.tools, RolloutConfig()).messages,
            Sampling(max_new_tokens=16),
            s,
            0,
            0,
        )
        for s in samples
    ]
    saved = tiny_policy.batch_size
    tiny_policy.batch_size = batch_size
    try:
        replies = benchmark.pedantic(
            tiny_policy.generate, args=(requests,), rounds=3, iterations=1, warmup_rounds=1
        )
    finally:
        tiny_policy.batch_size = saved
    assert len(replies) == 4
