"""Fixtures of the trainer tests: the tiny model (built once per session) and its loaded policy.

Tests that need torch/transformers/trl skip with the reason when they are missing
(``pip install -e '.[hf,train]'``); the reward and config tests run everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from train_support import HAVE_TRAIN, TRAIN_REASON


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The embedded tiny model, built once into this session's ``$HARNESS_CACHE_DIR``."""
    if not HAVE_TRAIN:
        pytest.skip(TRAIN_REASON)
    from harness.backends.tiny import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def tiny_policy(tiny_model: Path) -> Any:
    """One loaded hf policy on the tiny model (CPU, float32), as the trainers load it."""
    from harness.backends.hf import HFOptions, HFPolicy

    return HFPolicy(str(tiny_model), HFOptions(device="cpu", dtype="float32"))
