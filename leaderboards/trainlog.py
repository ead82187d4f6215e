"""Training logs for the report's training plots: loss, reward parts, RaPR, accuracy and
learning rate over steps.

Accepted files: a transformers / TRL ``trainer_state.json`` (its ``log_history`` list), a JSON
list of log dicts, or JSON lines, one log dict per line (``curiosity_grpo``'s ``train_log.jsonl``).
Each dict needs a ``step`` (or ``global_step``); the series kept are numeric keys that
:func:`panel_of` places in a panel: a loss (``loss``, ``eval_loss``), a reward (``reward``,
``rewards/curiosity/mean``), RaPR (``pixel_reasoning_rate``), an accuracy (``accuracy``,
``mean_token_accuracy``, ``correct``, ``score``) or the learning rate (``learning_rate``, ``lr``).
Standard deviations are left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

Series = dict[str, list[tuple[float, float]]]
ACCURACY_WORDS = ("accuracy", "correct", "score")


def panel_of(key: str) -> str | None:
    """The training-plot panel of a log key (titles of ``plots.TRAINING_PANELS``), or ``None``."""
    low = key.lower()
    if low.endswith("std") or "/std" in low:
        return None
    if low in ("learning_rate", "lr"):
        return "learning rate"
    if "loss" in low:
        return "loss"
    if low in ("pixel_reasoning_rate", "rapr") or low.endswith("/rapr"):
        return "RaPR"
    if "reward" in low:
        return "reward parts"
    if any(w in low for w in ACCURACY_WORDS):
        return "accuracy"
    return None


def _wanted(key: str) -> bool:
    return panel_of(key) is not None


def by_panel(series: Series) -> dict[str, Series]:
    """Group a log's series by panel (``{"loss": {"loss": [...]}, "RaPR": {...}, ...}``)."""
    panels: dict[str, Series] = {}
    for key, values in series.items():
        panel = panel_of(key)
        if panel is not None:
            panels.setdefault(panel, {})[key] = values
    return panels


def _entries(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        history = data.get("log_history")
        return list(history) if isinstance(history, list) else [data]
    return list(data) if isinstance(data, list) else []


def read_training_log(path: Path) -> Series:
    """``{series name: [(step, value), ...]}`` sorted by step; raises ``ValueError`` if unusable."""
    try:
        entries = _entries(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable training log ({exc})") from exc
    series: Series = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        step = entry.get("step", entry.get("global_step"))
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            continue
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _wanted(key):
                continue
            if math.isfinite(value):
                series.setdefault(key, []).append((float(step), float(value)))
    if not series:
        raise ValueError(
            f"{path}: no step with a loss, reward, RaPR, accuracy or learning-rate value in this training log"
        )
    return {k: sorted(v) for k, v in sorted(series.items())}
