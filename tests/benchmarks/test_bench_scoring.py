"""Scoring throughput; runs only with ``pytest tests/benchmarks --benchmark-only``."""

from __future__ import annotations

import random
import string
from typing import Any

from harness.scoring import anls

ALPHABET = string.ascii_letters + string.digits + "  ,.%"


def _pairs(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """``n`` deterministic (prediction, golds) pairs: golds of 1-3 answers, predictions that are
    copies, typo'd copies or unrelated strings."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24)))

    pairs = []
    for _ in range(n):
        golds = [word() for _ in range(rng.randint(1, 3))]
        kind = rng.random()
        if kind < 0.4:
            pred = rng.choice(golds).upper()
        elif kind < 0.7:
            chars = list(rng.choice(golds))
            chars[rng.randrange(len(chars))] = rng.choice(ALPHABET)
            pred = "".join(chars)
        else:
            pred = word()
        pairs.append((pred, golds))
    return pairs


def test_anls_10k_pairs(benchmark: Any) -> None:
    pairs = _pairs(10_000)

    def run() -> float:
        return sum(anls(pred, golds) for pred, golds in pairs) / len(pairs)

    mean = benchmark(run)
    assert 0.0 <= mean <= 1.0
