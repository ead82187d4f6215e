"""Fixtures of the trainer tests: the tiny model (built once per session) and small episode limits.

Tests that need torch/transformers/trl skip with the reason when they are missing
(``pip install -e '.[hf,train]'``); the reward and config tests run everywhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

HAVE_TRAIN = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "trl", "yaml"))
TRAIN_REASON = "needs the train extra: pip install -e '.[hf,train]'"
# Small images keep a CPU step in the seconds (64 image tokens per input, at most 64 per crop).
SMALL_LIMITS = (
    "min_pixels=12544,max_pixels=50176,crop_min_pixels=3136,crop_max_pixels=50176,max_new_tokens=12"
)

needs_train = pytest.mark.skipif(not HAVE_TRAIN, reason=TRAIN_REASON)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The embedded tiny model, built once into this session's ``$HARNESS_CACHE_DIR``."""
    if not HAVE_TRAIN:
        pytest.skip(TRAIN_REASON)
    from harness.tiny import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def tiny_policy(tiny_model: Path) -> Any:
    """One loaded hf policy on the tiny model (CPU, float32), as the trainers load it."""
    from harness.backends.hf import HFOptions, HFPolicy

    return HFPolicy(str(tiny_model), HFOptions(device="cpu", dtype="float32"))
