"""Fixtures of the model-backend tests: the tiny model, built once per session, and helpers.

Every test here that needs torch/transformers skips with the reason when they are missing
(``pip install -e '.[hf]'``); the tests of pure functions run everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_support import HAVE_HF, HF_REASON, ScriptedFirstTurn

from harness.loop.limits import Limits
from harness.loop.policy import Policy, Request, Sampling
from harness.loop.rollout import RolloutConfig, make_episode
from harness.plugins import Harness
from harness.records import Sample


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The embedded tiny model, built once into this session's ``$HARNESS_CACHE_DIR``."""
    if not HAVE_HF:
        pytest.skip(HF_REASON)
    from harness.backends.tiny import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def hf_policy(tiny_model: Path) -> Any:
    """One loaded hf policy on the tiny model (CPU), shared by the tests that only generate."""
    from harness.backends.hf import HFOptions, HFPolicy

    return HFPolicy(str(tiny_model), HFOptions(device="cpu"))


@pytest.fixture(scope="session")
def backend_harness() -> Harness:
    from harness.plugins import make_plugin_manager

    return Harness(make_plugin_manager(autoload=False))


@pytest.fixture
def requests_for(
    backend_harness: Harness, make_samples: Callable[..., list[Sample]]
) -> Callable[..., list[Request]]:
    """First-turn requests of real episodes of ``task`` (synthetic samples), as the rollout builds them."""

    def make(task: str, n: int, max_new_tokens: int = 16, **sampling: Any) -> list[Request]:
        spec = backend_harness.task(task)
        config = RolloutConfig(limits=Limits(max_new_tokens=max_new_tokens))
        out = []
        for k, sample in enumerate(make_samples(task, n)):
            episode = make_episode(spec, sample, backend_harness.tools, config)
            out.append(
                Request(episode.messages, Sampling(max_new_tokens=max_new_tokens, **sampling), sample, 0, k)
            )
        return out

    return make


@pytest.fixture
def first_turn_oracle(scripted_policy: Callable[[str], Policy]) -> Iterator[Callable[[Policy], Policy]]:
    yield lambda inner: ScriptedFirstTurn(inner, scripted_policy("oracle"))
