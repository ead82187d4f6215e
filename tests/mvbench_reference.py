"""MVBench's official frame sampling (``get_index`` in its evaluation notebook), transcribed
independently of :mod:`harness.data.video` so that tests can compare the two (numpy rounding)."""

from __future__ import annotations

import numpy as np


def official_get_index(
    bound: tuple[float, float] | None, fps: float, max_frame: int, first_idx: int
) -> list[int]:
    """The 16 frame indices MVBench's ``get_index`` picks (segment middles within ``bound``)."""
    start, end = bound if bound else (-100000, 100000)
    start_idx = max(first_idx, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    seg_size = float(end_idx - start_idx) / 16
    return [int(start_idx + (seg_size / 2) + np.round(seg_size * idx)) for idx in range(16)]
