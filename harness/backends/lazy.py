"""Heavy libraries imported on call, shared by the backends and the tiny model builder."""

from __future__ import annotations

from typing import Any


def transformers_module() -> Any:
    """``transformers``, imported now (typed loosely: its API is only partly annotated)."""
    import transformers

    return transformers
