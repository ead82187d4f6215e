"""Pure scoring functions: answer extraction (:mod:`.extract`), metrics (:mod:`.metrics`) and
aggregation (:mod:`.aggregate`); this package re-exports their public names.

Extraction is kept apart from comparison: ``extract_*`` turn a final reply into an answer or
``None`` and never raise on arbitrary text; metrics compare answers with golds. Every extractor
reads the last ``\\boxed{...}`` first. Each public docstring states the rules it applies (choice
tiers and ambiguity, number parsing); empty answers are never correct, and aggregates of nothing
are NaN with ``n == 0``.
"""

from __future__ import annotations

from harness.scoring.aggregate import aggregate, breakdown
from harness.scoring.extract import (
    extract_answer_span,
    extract_boxed,
    extract_choice,
    extract_count,
    normalize_text,
    strip_latex,
)
from harness.scoring.metrics import AnlsRule, anls, choice_accuracy, count_accuracy, exact_match, rmse

__all__ = [
    "AnlsRule",
    "aggregate",
    "anls",
    "breakdown",
    "choice_accuracy",
    "count_accuracy",
    "exact_match",
    "extract_answer_span",
    "extract_boxed",
    "extract_choice",
    "extract_count",
    "normalize_text",
    "rmse",
    "strip_latex",
]
