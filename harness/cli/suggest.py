"""``(did you mean X?)`` for a mistyped name: flags, choices, tasks, backends, trainers."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggestion(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
