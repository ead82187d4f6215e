"""Shared by the trainer tests (imported by name; ``conftest`` is ambiguous when several test
folders run in one pytest command): the train-extra skip mark and small episode limits."""

from __future__ import annotations

import importlib.util

import pytest

HAVE_TRAIN = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "trl", "yaml"))
TRAIN_REASON = "needs the train extra: pip install -e '.[hf,train]'"
# Small images keep a CPU step in the seconds (64 image tokens per input, at most 64 per crop).
SMALL_LIMITS = (
    "min_pixels=12544,max_pixels=50176,crop_min_pixels=3136,crop_max_pixels=50176,max_new_tokens=12"
)

needs_train = pytest.mark.skipif(not HAVE_TRAIN, reason=TRAIN_REASON)
