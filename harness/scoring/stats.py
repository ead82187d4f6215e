"""Standard errors from lm-eval's statistics (``lm_eval.api.metrics``), for values that are not
means: lm-eval bootstraps those, and so do we, with its seeded resampling."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

BOOTSTRAP_ITERS = 1000


def bootstrap_stderr(
    statistic: Callable[[Sequence[T]], float], items: Sequence[T], iters: int = BOOTSTRAP_ITERS
) -> float:
    """Standard error of ``statistic(items)`` by lm-eval's bootstrap (``lm_eval.api.metrics``).

    ``iters`` resamples with replacement in chunks of up to 1000, chunk ``i`` drawn with
    ``random.Random(i)``, then the sample standard deviation of the statistic over them: the
    same draws and numbers as ``lm_eval.api.metrics.bootstrap_stderr``, run in this process
    (lm-eval's entry point starts a process pool and prints). Deterministic; NaN for fewer than
    two items. lm-eval bootstraps only statistics that are not means; so do we (a mean gets
    the closed form, :func:`aggregate`).
    """
    if len(items) < 2:
        return math.nan
    from lm_eval.api.metrics import _bootstrap_internal, sample_stddev

    chunk = min(1000, iters)
    draws: list[float] = []
    for i in range(max(iters // chunk, 1)):
        draws.extend(_bootstrap_internal(statistic, chunk)((i, list(items))))
    return float(sample_stddev(draws))
