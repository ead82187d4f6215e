"""Metrics: an extracted answer compared with the gold(s). Empty answers are never correct.

Pure functions; aggregation over samples is :mod:`harness.scoring.aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from rapidfuzz.distance import Levenshtein

from harness.scoring.extract import normalize_text

AnlsRule = Literal["rrc_script", "paper"]


def anls(
    prediction: str | None,
    golds: Sequence[str],
    *,
    tau: float = 0.5,
    rule: AnlsRule = "rrc_script",
) -> float:
    """Average Normalized Levenshtein Similarity of one prediction: the max over ``golds``.

    ``rrc_script`` (default, the organisers' script): distance between the normalised strings
    (``normalize_text``), divided by the longer *raw* length (as the script, ``len(s.upper())``);
    similarity ``1 - NL`` is kept when ``>= tau`` (so exactly ``tau`` survives), else 0.
    ``paper`` (Biten et al. 2019): NL over the normalised strings, ``1 - NL`` if ``NL < tau``
    else 0. ``None`` prediction scores 0.0; empty ``golds`` or ``tau`` outside [0, 1] raise
    ``ValueError``.
    """
    if not golds:
        raise ValueError("anls needs at least one gold answer")
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if rule not in ("rrc_script", "paper"):
        raise ValueError(f"unknown ANLS rule {rule!r}")
    if prediction is None:
        return 0.0
    pred = normalize_text(prediction)
    best = 0.0
    for gold in golds:
        norm_gold = normalize_text(gold)
        dist = Levenshtein.distance(norm_gold, pred)
        if rule == "rrc_script":
            length = max(len(gold.upper()), len(prediction.upper()))
            similarity = 1.0 - (dist / length if length else 0.0)
            score = similarity if similarity >= tau else 0.0
        else:
            length = max(len(norm_gold), len(pred))
            nl = dist / length if length else 0.0
            score = 1.0 - nl if nl < tau else 0.0
        best = max(best, score)
    return min(best, 1.0)


def exact_match(pred: str | None, gold: str) -> float:
    """1.0 when ``pred`` equals ``gold`` after ``normalize_text``; ``None``/empty pred is 0.0."""
    if pred is None or not pred.strip():
        return 0.0
    return 1.0 if normalize_text(pred) == normalize_text(gold) else 0.0


def choice_accuracy(pred_letter: str | None, gold_letter: str) -> float:
    """1.0 when the letters match (case and spaces ignored). An empty or ``None`` prediction is
    always 0.0, never counted correct; an empty gold raises ``ValueError``."""
    if not gold_letter.strip():
        raise ValueError("empty gold letter")
    if pred_letter is None or not pred_letter.strip():
        return 0.0
    return 1.0 if pred_letter.strip().upper() == gold_letter.strip().upper() else 0.0


def count_accuracy(pred: int | None, gold: int) -> float:
    """1.0 when the extracted count equals ``gold``; ``None`` is 0.0."""
    return 1.0 if pred is not None and pred == gold else 0.0


def rmse(preds: Sequence[int | None], golds: Sequence[int]) -> float:
    """Root mean squared error of counts. A ``None`` prediction (no count found) is scored as
    0, so failures stay in the denominator; empty input is NaN; unequal lengths raise."""
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} golds")
    if not golds:
        return math.nan
    total = sum(((p or 0) - g) ** 2 for p, g in zip(preds, golds, strict=True))
    return math.sqrt(total / len(golds))
