"""Helpers of the model-backend tests (a module, so test files can import them by name)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import pytest

from harness.loop.policy import Policy, Reply, Request

HAVE_HF = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "torchvision"))
HF_REASON = "needs torch, torchvision and transformers: pip install -e '.[hf]'"
needs_hf = pytest.mark.skipif(not HAVE_HF, reason=HF_REASON)
HAVE_OPENAI = importlib.util.find_spec("openai") is not None
needs_openai = pytest.mark.skipif(
    not HAVE_OPENAI, reason="needs the openai client: pip install -e '.[openai]'"
)


class ScriptedFirstTurn:
    """Turn 0 from the scripted oracle (a tool call), later turns from ``inner``: every compared
    trajectory then carries crops or selected frames into the model's second turn."""

    def __init__(self, inner: Policy, oracle: Policy) -> None:
        self.inner, self.oracle, self.name = inner, oracle, f"first-turn-oracle+{inner.name}"

    def generate(self, requests: Sequence[Request]) -> list[Reply]:
        out: dict[int, Reply] = {}
        first = [i for i, r in enumerate(requests) if r.turn == 0]
        later = [i for i, r in enumerate(requests) if r.turn > 0]
        out.update(zip(first, self.oracle.generate([requests[i] for i in first]), strict=True))
        if later:
            out.update(zip(later, self.inner.generate([requests[i] for i in later]), strict=True))
        return [out[i] for i in range(len(requests))]
