"""Training logs for the report's training plots: reward parts and accuracy over steps.

Accepted files: a transformers / TRL ``trainer_state.json`` (its ``log_history`` list), a JSON
list of log dicts, or JSON lines, one log dict per line. Each dict needs a ``step`` (or
``global_step``); the series kept are numeric keys naming a reward (``reward``,
``rewards/curiosity/mean``; standard deviations are left out) or an accuracy (``accuracy``,
``correct``, ``score``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

Series = dict[str, list[tuple[float, float]]]
ACCURACY_WORDS = ("accuracy", "correct", "score")


def _wanted(key: str) -> bool:
    low = key.lower()
    if low.endswith("std") or "/std" in low:
        return False
    return "reward" in low or any(w in low for w in ACCURACY_WORDS)


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
        raise ValueError(f"{path}: no step with a reward or accuracy value in this training log")
    return {k: sorted(v) for k, v in sorted(series.items())}
